"""Every CUDA kernel compiles for a real GPU, for every signature it is launched with.

The simulator runs kernels as Python and checks no types, so these compile each declared
signature to PTX (``numba.cuda.compile_ptx``, needs the numba-cuda package and NVVM, not a GPU).
Under the simulator, every launch is checked against the same declarations
(``tests/cuda/test_launch_signatures.py``), so what runs there is what compiles here.
"""

from __future__ import annotations

import importlib
import pkgutil

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


def test_every_kernel_module_declares_kernels():
    if _MISSING:
        pytest.skip(_MISSING)
    names = {name.rsplit(".", 1)[0].rsplit(".", 1)[-1] for name, _, _ in _CASES}
    assert {"_elementwise", "_reduce", "_gemm", "activation"} <= names
