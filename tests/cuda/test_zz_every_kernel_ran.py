"""Every declared CUDA kernel ran under the simulator in this session (this file sorts last).

Each launch is already checked against the kernel's declared signatures (an undeclared argument
type raises, since tests/cuda_ptx compiles only what is declared); this closes the loop: no
kernel is declared, compiled to PTX and yet never executed against the CPU result.
"""

from __future__ import annotations

import importlib
import pathlib
import pkgutil

import pytest


def test_every_declared_kernel_was_launched(request):
    from tinycnn.ops.cuda._cuda import SIMULATOR

    if not SIMULATOR:
        pytest.skip("launches are recorded under the simulator only")
    here = pathlib.Path(__file__).parent
    wanted = {p.name for p in here.glob("test_*.py")}
    ran = {pathlib.Path(str(item.fspath)).name for item in request.session.items}
    if not wanted <= ran:
        pytest.skip("only meaningful when the whole tests/cuda directory runs")
    import tinycnn.ops.cuda as pkg
    from tinycnn.ops.cuda._cuda import LAUNCHED, REGISTRY

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"tinycnn.ops.cuda.{info.name}")
    never = sorted(set(REGISTRY) - set(LAUNCHED))
    assert not never, f"declared CUDA kernels never run under the simulator: {never}"
