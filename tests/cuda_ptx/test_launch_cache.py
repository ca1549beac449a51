"""A kernel's launch configuration is built once per (grid, block) and reused (no GPU needed:
numba's dispatcher is replaced by a stand-in that counts how often it is configured)."""

from __future__ import annotations

import threading
import warnings

import pytest

pytest.importorskip("numba.cuda")

from numba.core.errors import NumbaPerformanceWarning  # noqa: E402

from tinycnn.ops.cuda import _cuda  # noqa: E402


class FakeDispatcher:
    def __init__(self):
        self.configured, self.launched = [], []

    def __getitem__(self, launch):
        self.configured.append(launch)
        warnings.warn(
            "Grid size 1 will likely result in GPU under-utilization",
            NumbaPerformanceWarning,
            stacklevel=2,
        )
        return lambda *args: self.launched.append((launch, args))


@pytest.fixture
def probe():
    def body(x):  # pragma: no cover - never compiled here
        pass

    k = _cuda.Kernel(body, ["float32[::1]"], name="tests.launch_cache_probe")
    k.dispatcher = FakeDispatcher()
    yield k
    del _cuda.REGISTRY[k.name]


def test_each_launch_shape_is_configured_once(probe):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numba's low-occupancy warning must not escape
        for _ in range(3):
            probe[1, 256]("a")
            probe[(2, 3, 1), (16, 16)]("b")
    assert probe.dispatcher.configured == [(1, 256), ((2, 3, 1), (16, 16))]
    assert len(probe.dispatcher.launched) == 6
    assert probe.dispatcher.launched[-1] == (((2, 3, 1), (16, 16)), ("b",))


def test_the_cache_is_per_thread_and_bounded(probe, monkeypatch):
    monkeypatch.setattr(_cuda, "MAX_LAUNCHERS", 4)
    for grid in range(10):
        probe[grid + 1, 32]()
    assert len(_cuda._LAUNCHERS.__dict__[probe.name]) <= 4
    done = []
    thread = threading.Thread(target=lambda: done.append(probe[1, 32]()))
    thread.start()
    thread.join()
    assert done and probe.dispatcher.configured.count((1, 32)) == 2  # its own configuration


@pytest.mark.parametrize(
    "grid,block",
    [(0, 256), ((1, 65536), 256), ((1, 1, 70000), (16, 16)), (1, 2048), (1, (16, 16, 8))],
)
def test_a_launch_a_gpu_refuses_raises_before_it_is_configured(probe, grid, block):
    with pytest.raises(ValueError, match="tests.launch_cache_probe: a GPU cannot launch"):
        probe[grid, block]("a")
    assert probe.dispatcher.configured == []


@pytest.mark.parametrize("m,n,batch", [(10**7, 10, 1), (100, 3 * 10**7, 1), (10**5, 9, 10**6)])
def test_the_gemm_grid_fits_a_gpu_for_any_shape(m, n, batch):
    from tinycnn.ops.cuda._gemm import TX, TY
    from tinycnn.ops.cuda.array_shape import gemm_grid

    _cuda.check_launch("gemm", gemm_grid(m, n, batch), (TX, TY))
