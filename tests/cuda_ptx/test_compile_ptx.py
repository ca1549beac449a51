"""Every CUDA kernel compiles for a real GPU, for every signature it is launched with.

The simulator runs kernels as Python and checks no types, so these compile each declared
signature to PTX (``numba.cuda.compile_ptx``, needs the numba-cuda package and NVVM, not a GPU).
Under the simulator, every launch is checked against the same declarations
(``tests/cuda/test_launch_signatures.py``), so what runs there is what compiles here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest


def _compiler_missing() -> str | None:
    try:
        from numba import cuda

        def probe(a):
            a[0] = 1.0

        cuda.compile_ptx(probe, "void(float32[::1])", cc=(8, 0))
    except Exception as exc:  # no numba-cuda, or no NVVM: say which
        return f"numba.cuda.compile_ptx is unavailable ({type(exc).__name__}: {exc}); " + (
            "pip install 'numba-cuda[cu13]'"
        )
    return None


_MISSING = _compiler_missing()


def _pretend_device_cc() -> None:
    """Device functions (``cuda.jit(device=True)``) ask the current GPU for its compute
    capability when a kernel calling them is typed; without a GPU, answer with the PTX target."""
    from types import SimpleNamespace

    from numba import cuda
    from numba.cuda import dispatcher

    from tinycnn.ops.cuda.config import PTX_CC

    if not cuda.is_available():
        dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=PTX_CC)


if _MISSING is None:
    _pretend_device_cc()


def _declared() -> list[tuple[str, object, tuple]]:
    if _MISSING:
        return []
    import tinycnn.ops.cuda as pkg
    from tinycnn.ops.cuda._cuda import REGISTRY

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"tinycnn.ops.cuda.{info.name}")
    return [(name, fn, sig) for name, (fn, sigs) in sorted(REGISTRY.items()) for sig in sigs]


_CASES = _declared()


@pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
@pytest.mark.parametrize(
    "name,fn,sig",
    _CASES or [pytest.param(None, None, None, marks=pytest.mark.skip(reason=str(_MISSING)))],
    ids=[f"{n.rsplit('.', 2)[-2]}.{n.rsplit('.', 1)[-1]}{s}" for n, _, s in _CASES] or None,
)
def test_kernel_compiles_to_ptx(name, fn, sig):
    from numba import cuda

    from tinycnn.ops.cuda.config import PTX_CC

    ptx, _ = cuda.compile_ptx(fn, sig, cc=PTX_CC)
    assert f".target sm_{PTX_CC[0]}{PTX_CC[1]}" in ptx
    assert ".entry" in ptx, f"{name}{sig}: no kernel entry point in the PTX"
    shared = sum(map(int, re.findall(r"\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[(\d+)\]", ptx)))
    assert shared <= MAX_STATIC_SHARED, f"{name}{sig}: {shared} B of static shared memory"
    if "float32" in str(sig):  # the float32 variants: what trains on a GPU
        _check_machine_code(name, sig, ptx)


# A block's static shared memory (``cuda.shared.array``) is limited to 48 KiB on every GPU; more
# needs dynamic shared memory and an opt-in, or the launch fails.
MAX_STATIC_SHARED = 48 * 1024

# Machine code for the GPU the benchmarks target (Hopper); PTX of sm_80 runs there as is.
SASS_ARCH = "sm_90"
# 256-thread blocks need <= 255 registers a thread; the GEMM (the most work per thread) must
# leave room for two blocks per SM (65,536 registers / (2 * 256))
MAX_REGISTERS = {"tinycnn.ops.cuda._gemm.gemm": 128}


def _check_machine_code(name: str, sig, ptx: str) -> None:
    """Assemble the PTX to machine code with nvJitLink (no GPU needed) and read ptxas's
    report: no stack frame and no register spills (local memory is slow memory), and
    registers within the kernel's budget."""
    try:
        from cuda.bindings import nvjitlink
    except ImportError:  # pragma: no cover - numba-cuda[cu13] installs it
        pytest.skip("cuda.bindings.nvjitlink is missing: pip install 'numba-cuda[cu13]'")
    options = [f"-arch={SASS_ARCH}", "-verbose"]
    handle = nvjitlink.create(len(options), options)
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel.ptx")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    report = log.decode(errors="replace")
    found = re.search(
        r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", report
    )
    registers = re.search(r"Used (\d+) registers", report)
    assert found and registers, f"{name}{sig}: no ptxas report in\n{report}"
    stack, stores, loads = map(int, found.groups())
    assert (stack, stores, loads) == (0, 0, 0), (
        f"{name}{sig} on {SASS_ARCH}: {stack} B stack, {stores}/{loads} B spilled "
        "(a local array indexed at run time, or too many live values)"
    )
    assert int(registers.group(1)) <= MAX_REGISTERS.get(name, 255), report


def test_every_kernel_module_declares_kernels():
    if _MISSING:
        pytest.skip(_MISSING)
    names = {name.rsplit(".", 1)[0].rsplit(".", 1)[-1] for name, _, _ in _CASES}
    assert {"_elementwise", "_reduce", "_gemm", "activation"} <= names
