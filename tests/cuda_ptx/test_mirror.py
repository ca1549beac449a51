"""The CUDA back end mirrors the CPU one file for file and name for name: every public function
of ``tinycnn/ops/cpu/<family>.py`` exists in ``tinycnn/ops/cuda/<family>.py`` with the same
parameter names, so ``get_kernels(device, family).<name>(...)`` works on both devices."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

try:
    import numba.cuda  # noqa: F401

    MISSING = None
except Exception as exc:  # pragma: no cover - depends on the machine
    MISSING = f"numba's CUDA target cannot be imported ({exc})"

import tinycnn.ops.cpu as cpu_pkg

FAMILIES = sorted(
    m.name for m in pkgutil.iter_modules(cpu_pkg.__path__) if not m.name.startswith("_")
)


def _public(module) -> dict:
    out = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj) or inspect.isclass(obj):
            continue
        fn = getattr(obj, "py_func", obj)  # a Numba dispatcher: its Python function
        if inspect.isfunction(fn) and fn.__module__ == module.__name__:
            out[name] = fn
    return out


@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
@pytest.mark.parametrize("family", FAMILIES)
def test_cuda_module_mirrors_cpu(family):
    cpu = importlib.import_module(f"tinycnn.ops.cpu.{family}")
    gpu = importlib.import_module(f"tinycnn.ops.cuda.{family}")
    cpu_fns, gpu_fns = _public(cpu), _public(gpu)
    # the CUDA array back end re-exports its shape half and its helpers from sibling modules
    gpu_all = {n for n in dir(gpu) if not n.startswith("_") and callable(getattr(gpu, n))}
    missing = sorted(set(cpu_fns) - gpu_all)
    assert not missing, f"tinycnn/ops/cuda/{family}.py lacks {missing}"
    for name, fn in cpu_fns.items():
        other = gpu_fns.get(name) or getattr(getattr(gpu, name), "py_func", getattr(gpu, name))
        want = list(inspect.signature(fn).parameters)
        got = list(inspect.signature(other).parameters)
        assert got == want, f"{family}.{name}: cuda parameters {got} != cpu {want}"
    for name in ("INDEX_DTYPE",):
        if hasattr(cpu, name):
            assert getattr(gpu, name) == getattr(cpu, name)
