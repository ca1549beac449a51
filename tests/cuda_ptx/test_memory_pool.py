"""The caching device allocator (``tinycnn/ops/cuda/memory.py``), without a GPU.

The bookkeeping (:class:`BlockCache`) runs over a fake driver; the numba plugin runs over the
real numba-cuda classes with ``cuMemAlloc`` / ``cuMemFree`` replaced, so the ownership chain
(array -> owned pointer -> views) is numba's own; installation is checked in fresh processes.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinycnn.ops.cuda import memory
from tinycnn.ops.cuda.memory import MIN_BLOCK, BlockCache, size_class


@given(st.integers(0, 1 << 40))
def test_size_class_covers_the_request_with_at_most_an_eighth_more(n):
    block = size_class(n)
    assert block >= max(n, 1)
    assert block % MIN_BLOCK == 0
    assert block <= max(MIN_BLOCK, n + n // 8 + MIN_BLOCK - 1)
    if n > 4096:
        assert block <= n * 1.125
    assert size_class(block) == block  # a class is its own class
    assert size_class(n + 1) >= block  # monotonic


def test_size_classes_are_eight_per_octave():
    classes = sorted({size_class(n) for n in range((1 << 16) + 1, (1 << 17) + 1)})
    assert classes == [(1 << 16) + i * (1 << 13) for i in range(1, 9)]
    assert size_class(1) == size_class(512) == 512 and size_class(513) == 1024


class FakeDriver:
    def __init__(self, capacity: int = 1 << 30):
        self.capacity, self.used, self.next = capacity, 0, 0x1000
        self.sizes: dict[int, int] = {}
        self.allocs = self.frees = 0

    def allocate(self, nbytes: int) -> int:
        if self.used + nbytes > self.capacity:
            raise MemoryError("out of device memory")
        self.allocs += 1
        self.used += nbytes
        self.next += 1 << 32
        self.sizes[self.next] = nbytes
        return self.next

    def free(self, ptr: int) -> None:
        self.frees += 1
        self.used -= self.sizes.pop(ptr)


def test_a_freed_block_is_reused_without_a_driver_call():
    drv = FakeDriver()
    cache = BlockCache(drv.allocate, drv.free)
    ptr, block = cache.take(1000)
    assert block == 1024 and drv.allocs == 1
    cache.give(ptr, block)
    assert cache.stats()["cached_bytes"] == 1024 and cache.stats()["in_use_bytes"] == 0
    again, block2 = cache.take(900)  # same class
    assert (again, block2) == (ptr, 1024) and drv.allocs == 1
    other, _ = cache.take(900)  # the cached one is taken: a new block
    assert other != ptr and drv.allocs == 2
    assert cache.stats() == {
        "in_use_bytes": 2048,
        "cached_bytes": 0,
        "peak_bytes": 2048,
        "driver_allocs": 2,
        "reuses": 1,
    }


def test_a_training_loop_allocates_from_the_driver_only_in_its_first_step():
    drv = FakeDriver()
    cache = BlockCache(drv.allocate, drv.free)
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in rng.integers(1, 1 << 22, 60)]
    for step in range(5):
        live = [cache.take(n) for n in sizes]
        for ptr, block in reversed(live):
            cache.give(ptr, block)
        if step == 0:
            first = drv.allocs
    assert drv.allocs == first <= len(sizes)
    assert cache.stats()["reuses"] == 4 * len(sizes)
    assert drv.used == cache.stats()["cached_bytes"] <= sum(sizes) * 1.125 + 512 * len(sizes)


def test_out_of_memory_empties_the_cache_and_retries():
    drv = FakeDriver(capacity=8 << 20)
    cache = BlockCache(drv.allocate, drv.free)
    blocks = [cache.take(2 << 20) for _ in range(3)]
    for ptr, block in blocks:
        cache.give(ptr, block)  # 6 MiB cached, 2 MiB free on the device
    ptr, block = cache.take(5 << 20)  # fits only once the cache is given back
    assert block == 5 << 20 and drv.frees == 3 and cache.stats()["cached_bytes"] == 0
    with pytest.raises(MemoryError):  # nothing left to give back: the driver's error
        cache.take(4 << 20)


def test_other_driver_errors_pass_through_untouched():
    drv = FakeDriver()
    cache = BlockCache(drv.allocate, drv.free)
    ptr, block = cache.take(4096)
    cache.give(ptr, block)

    def broken(nbytes):
        raise RuntimeError("driver failure")

    cache._allocate = broken
    with pytest.raises(RuntimeError, match="driver failure"):
        cache.take(1 << 20)
    assert cache.stats()["cached_bytes"] == 4096  # not emptied for an unrelated error


def test_blocks_freed_under_defer_cleanup_wait_until_it_ends():
    drv = FakeDriver()
    cache = BlockCache(drv.allocate, drv.free)
    ptr, block = cache.take(4096)
    cache.defer += 1
    cache.give(ptr, block)
    other, _ = cache.take(4096)
    assert other != ptr  # not reused while deferred
    cache.defer -= 1
    again, _ = cache.take(4096)
    assert again == ptr


def test_release_gives_every_cached_block_back():
    drv = FakeDriver()
    cache = BlockCache(drv.allocate, drv.free)
    live = [cache.take(n) for n in (100, 5000, 1 << 20)]
    for ptr, block in live[:2]:
        cache.give(ptr, block)
    assert cache.release() == 512 + size_class(5000)
    assert drv.frees == 2 and drv.used == 1 << 20  # the live block stays


# ------------------------------------------------------------------------------ numba plugin
@pytest.fixture
def plugin(monkeypatch):
    pytest.importorskip("numba.cuda.cudadrv.driver")
    from numba.cuda.cudadrv import driver as drv

    fake = FakeDriver()
    # the lazy driver object: instance attributes shadow its __getattr__ (no GPU touched)
    monkeypatch.setitem(
        drv.driver.__dict__, "cuMemAlloc", lambda n: drv.binding.CUdeviceptr(fake.allocate(n))
    )
    monkeypatch.setitem(drv.driver.__dict__, "cuMemFree", lambda p: fake.free(int(p)))

    class Context:  # the manager keeps only a weak proxy of it
        pass

    context = Context()
    manager = memory._plugin_class()(context=context)
    yield manager, fake
    memory._CACHES.remove(manager.cache)


def test_the_plugin_gives_a_block_back_when_its_last_view_is_gone(plugin):
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    manager, fake = plugin
    owned = manager.memalloc(4000)
    array = DeviceNDArray((1000,), (4,), np.float32, gpu_data=owned)
    view = array.gpu_data.view(400, 800)  # what slicing an array holds
    assert int(view.device_pointer) - int(owned.device_pointer) == 400
    start = int(owned.device_pointer)
    del owned, array
    assert manager.cache.stats()["in_use_bytes"] == 4096  # the view keeps it
    del view
    assert manager.cache.stats()["cached_bytes"] == 4096
    again = manager.memalloc(3900)
    assert int(again.device_pointer) == start and fake.allocs == 1
    assert manager.cache.stats()["reuses"] == 1
    del again
    manager.reset()
    assert fake.used == 0 and fake.frees == 1


def test_the_plugin_defers_reuse_inside_defer_cleanup(plugin):
    manager, fake = plugin
    with manager.defer_cleanup():
        owned = manager.memalloc(1 << 20)
        start = int(owned.device_pointer)
        del owned
        fresh = manager.memalloc(1 << 20)
        assert int(fresh.device_pointer) != start
    del fresh
    assert int(manager.memalloc(1 << 20).device_pointer) == start


def _run(code: str, **env) -> str:
    import os

    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


PROBE = (
    "import tinycnn as tc; tc.cuda.is_available(); "
    "from numba.cuda.cudadrv import driver as d; "
    "print(tc.cuda.memory_stats()['active'], getattr(d._memory_manager, '__name__', None))"
)


def test_asking_for_cuda_installs_the_cache():
    assert _run(PROBE) == "True CachingMemoryManager"


def test_the_cache_can_be_turned_off():
    assert _run(PROBE, TINYCNN_CUDA_POOL="0") == "False None"  # numba picks its own later


def test_per_thread_default_streams_keep_numbas_manager():
    assert _run(PROBE, NUMBA_CUDA_PER_THREAD_DEFAULT_STREAM="1") == "False None"


def test_a_context_made_before_tinycnn_keeps_numbas_manager():
    code = (
        "from numba.cuda.cudadrv import driver as d; d._ensure_memory_manager(); " + PROBE
    )  # what creating a CUDA context does first
    assert _run(code) == "False NumbaCUDAMemoryManager"
