"""A caching allocator for device memory: freed blocks are kept and handed out again.

numba's own memory manager calls ``cuMemAlloc`` for every new device array and queues every
free, flushing the queue (``cuMemFree``, which waits for the whole device) every ten frees.  A
training step creates and drops dozens to thousands of arrays -- a LeNet-5 step 58, each step
the same sizes -- so without a cache the step pays a driver call per array and a device-wide
wait every ten, and the GPU idles while Python waits.  Deep-learning frameworks keep freed
blocks for reuse instead; this module does the same for numba, through its External Memory
Management plugin interface (``numba.cuda.set_memory_manager``).

* A request is rounded up to a *size class*: 512 bytes at least, then 8 classes per power of
  two (at most 12.5 % over the request).  A freed block goes back to its class's free list;
  the next request of that class takes it without a driver call.
* Blocks are reused in the order of the default stream.  tinycnn launches every kernel on that
  stream, and the stream runs them in order.  So a block that a later kernel takes over is
  written only after every earlier kernel that used it has finished.
* When ``cuMemAlloc`` runs out of memory, every cached block is freed and the allocation
  tried again: the cache never makes a program fail that would run without it.
  :func:`empty_cache` frees the cached blocks on demand (``tinycnn.cuda.empty_cache``).
* ``TINYCNN_CUDA_POOL=0`` keeps numba's own manager, and so does a program that has set its
  own EMM plugin (``NUMBA_CUDA_MEMORY_MANAGER``) or created a CUDA context before tinycnn was
  asked for ``"cuda"`` (the plugin applies to contexts created after it is installed), or that
  runs with per-thread default streams (``NUMBA_CUDA_PER_THREAD_DEFAULT_STREAM=1``: the
  kernels of two host threads are then not ordered, and neither would be a block's reuse).

:class:`BlockCache` holds the bookkeeping, over any pair of ``allocate(nbytes)`` and
``free(pointer)`` functions, so it is tested without a GPU; :class:`CachingMemoryManager` binds
it to the driver.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

MIN_BLOCK = 512  # bytes: the smallest size class
# the counters of a cache (attributes of BlockCache, keys of stats())
COUNTERS = ("in_use_bytes", "cached_bytes", "peak_bytes", "driver_allocs", "reuses")
CLASSES_PER_OCTAVE = 8  # size classes per power of two above MIN_BLOCK (a power of two)
_CLASS_BITS = CLASSES_PER_OCTAVE.bit_length() - 1


def size_class(nbytes: int) -> int:
    """The block size a request of ``nbytes`` gets: >= nbytes, at most 12.5 % more above 4 KiB."""
    n = max(int(nbytes), 1)
    if n <= MIN_BLOCK:
        return MIN_BLOCK
    octave = (n - 1).bit_length() - 1  # 2**octave < n <= 2**(octave + 1)
    step = max(MIN_BLOCK, 1 << max(octave - _CLASS_BITS, 0))
    return -(-n // step) * step


class BlockCache:
    """Free lists of device blocks by size class, over a driver's ``allocate`` and ``free``.

    ``allocate(nbytes)`` returns a pointer or raises; ``is_oom(exc)`` says whether an
    exception means out of memory (then the cache is emptied and the allocation retried once).
    """

    def __init__(
        self,
        allocate: Callable[[int], object],
        free: Callable[[object], None],
        is_oom: Callable[[BaseException], bool] = lambda exc: isinstance(exc, MemoryError),
    ):
        self._allocate = allocate
        self._free_fn = free
        self._is_oom = is_oom
        self._free: dict[int, list] = {}
        self._lock = threading.RLock()  # finalizers may run inside a garbage collection
        self._held_back: list[tuple[object, int]] = []  # given back under defer_cleanup
        self.defer = 0
        self.in_use_bytes = 0
        self.cached_bytes = 0
        self.driver_allocs = 0
        self.reuses = 0
        self.peak_bytes = 0

    def take(self, nbytes: int) -> tuple[object, int]:
        """A block of at least ``nbytes``: ``(pointer, block_size)``."""
        block = size_class(nbytes)
        with self._lock:
            if self._held_back and not self.defer:
                for ptr, size in self._held_back:
                    self._cache(ptr, size)
                self._held_back.clear()
            free = self._free.get(block)
            if free:
                ptr = free.pop()
                self.cached_bytes -= block
                self.reuses += 1
            else:
                ptr = self._allocate_or_release(block)
                self.driver_allocs += 1
            self.in_use_bytes += block
            self.peak_bytes = max(self.peak_bytes, self.in_use_bytes + self.cached_bytes)
            return ptr, block

    def give(self, ptr, block: int) -> None:
        """Return a block from :meth:`take` (called when its last array is gone)."""
        with self._lock:
            self.in_use_bytes -= block
            if self.defer:  # reused (and counted as cached) once defer_cleanup ends
                self._held_back.append((ptr, block))
            else:
                self._cache(ptr, block)

    def _cache(self, ptr, block: int) -> None:
        self._free.setdefault(block, []).append(ptr)
        self.cached_bytes += block

    def _allocate_or_release(self, block: int):
        try:
            return self._allocate(block)
        except BaseException as exc:
            if not self._is_oom(exc) or not self.cached_bytes:
                raise
        self.release()
        return self._allocate(block)

    def release(self) -> int:
        """Free every cached block to the driver; returns the bytes freed."""
        with self._lock:
            freed = 0
            for block, ptrs in self._free.items():
                for ptr in ptrs:
                    self._free_fn(ptr)
                    freed += block
            self._free.clear()
            self.cached_bytes = 0
            return freed

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {key: getattr(self, key) for key in COUNTERS}


# ------------------------------------------------------------------------------ the plugin
_CACHES: list[BlockCache] = []  # one per CUDA context that uses the plugin


def _plugin_class():
    from numba.cuda.cudadrv import driver as drv

    def is_oom(exc: BaseException) -> bool:
        oom = drv.binding.CUresult.CUDA_ERROR_OUT_OF_MEMORY
        return isinstance(exc, drv.CudaAPIError) and exc.code == oom

    class CachingMemoryManager(drv.NumbaCUDAMemoryManager):
        """numba's memory manager with :class:`BlockCache` behind ``memalloc``; pinned and
        mapped host memory, IPC handles and memory info are numba's own."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # the driver starts on first use: not here, where numba checks the plugin
            self.cache = BlockCache(
                lambda nbytes: drv.driver.cuMemAlloc(nbytes),
                lambda ptr: drv.driver.cuMemFree(ptr),
                is_oom,
            )
            if self.context is not None:  # numba builds one without a context to check it
                _CACHES.append(self.cache)

        def memalloc(self, size):
            cache, allocations = self.cache, self.allocations
            ptr, block = cache.take(size)
            key = int(ptr)

            def give_back():
                allocations.pop(key, None)
                cache.give(ptr, block)

            # the numba manager's ownership: views of the array keep the block alive, and the
            # block goes back when the last of them is gone
            mem = drv.AutoFreePointer(weakref.proxy(self.context), ptr, size, finalizer=give_back)
            allocations[key] = mem
            return mem.own()

        def reset(self):
            super().reset()
            self.cache.release()

        def defer_cleanup(self):
            return _deferred(self.cache, super().defer_cleanup())

    return CachingMemoryManager


class _deferred:
    """``defer_cleanup``: blocks freed meanwhile are reused only after it ends."""

    def __init__(self, cache: BlockCache, inner):
        self._cache, self._inner = cache, inner

    def __enter__(self):
        self._inner.__enter__()
        self._cache.defer += 1

    def __exit__(self, *exc):
        self._cache.defer -= 1
        return self._inner.__exit__(*exc)


_INSTALLED: bool | None = None


def install() -> bool:
    """Make numba allocate through the cache, unless told not to or already too late.

    Called by ``tinycnn.cuda`` before its first CUDA call; returns whether the cache is used.
    """
    global _INSTALLED
    if _INSTALLED is not None:
        return _INSTALLED
    _INSTALLED = False
    if os.environ.get("TINYCNN_CUDA_POOL", "1") == "0":
        return False
    from numba import config

    if config.ENABLE_CUDASIM or config.CUDA_MEMORY_MANAGER != "default":
        return False
    if getattr(config, "CUDA_PER_THREAD_DEFAULT_STREAM", 0):
        # every host thread launches on a stream of its own: a block one thread frees while
        # its kernels still run could go to another thread's kernels, unordered with them
        return False
    from numba.cuda.cudadrv import driver as drv

    if getattr(drv, "_memory_manager", None) is not None:  # a context exists already
        return False
    drv.set_memory_manager(_plugin_class())
    _INSTALLED = True
    return True


def stats() -> dict[str, int | bool]:
    """The cache's counters, summed over contexts, and whether the cache is in use."""
    per_cache = [cache.stats() for cache in _CACHES]
    return {"active": bool(_INSTALLED), **{k: sum(s[k] for s in per_cache) for k in COUNTERS}}


def empty_cache() -> int:
    """Free every cached (unused) block to the driver; returns the bytes freed."""
    return sum(cache.release() for cache in _CACHES)
