"""Reusable scratch buffers for big temporaries, one implementation for every device; each
device module (``ops/cpu/workspace.py``, ``ops/cuda/workspace.py``) binds it to its allocator.

A fresh array larger than glibc's mmap threshold is new pages on every call: 51 MB of im2col
columns cost 8-10 ms of page faults, as much as the GEMM that reads them (on a GPU a fresh
allocation is a driver call).  So an op asks for a *named* buffer: a view of one flat,
per-thread allocation that only grows, valid until the next ``get`` of the same name -- ops use
it only inside one forward or backward, never return it or save it for later.

Data an op keeps from its forward for its backward (a convolution's columns) comes from
``take`` instead and goes back with ``give`` once used: a per-thread free list by shape, so the
next step reuses the same pages.  An array never given back is simply garbage-collected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

# Free arrays kept per (shape, dtype): enough for the layers of one step that keep data.
FREE_PER_SHAPE = 4


def _count(shape) -> int:
    count = 1
    for s in shape:
        count *= int(s)
    return count


class Workspace:
    """Named grow-only buffers and a free list, per thread, over ``allocate(shape, dtype)``."""

    def __init__(self, allocate: Callable):
        self._allocate = allocate
        self._local = threading.local()

    def functions(self) -> tuple:
        """``(get, take, give, nbytes, clear)``: what a device's workspace module exports."""
        return self.get, self.take, self.give, self.nbytes, self.clear

    def _state(self) -> tuple[dict, dict]:
        local = self._local
        if not hasattr(local, "pool"):
            local.pool, local.free = {}, {}
        return local.pool, local.free

    def get(self, name: str, shape: tuple[int, ...], dtype):
        """A C-contiguous, uninitialised ``shape`` array of ``dtype`` backed by buffer ``name``."""
        dtype, count = np.dtype(dtype), _count(shape)
        pool, _ = self._state()
        key = (name, dtype)
        buf = pool.get(key)
        if buf is None or buf.size < count:
            pool.pop(key, None)  # free the old buffer before allocating the larger one
            buf = pool[key] = self._allocate((max(count, 1),), dtype)
        return buf[:count].reshape(tuple(int(s) for s in shape))

    def take(self, shape: tuple[int, ...], dtype):
        """An uninitialised ``shape`` array of ``dtype`` that may outlive the op (see ``give``)."""
        key = (tuple(int(s) for s in shape), np.dtype(dtype))
        free = self._state()[1].get(key)
        return free.pop() if free else self._allocate(key[0], key[1])

    def give(self, a) -> None:
        """Return an array from ``take`` for reuse; the caller must not use it afterwards."""
        key = (tuple(int(s) for s in a.shape), np.dtype(a.dtype))
        free = self._state()[1].setdefault(key, [])
        if len(free) < FREE_PER_SHAPE:
            free.append(a)

    def nbytes(self) -> int:
        """Bytes held by this thread's buffers."""
        pool, free = self._state()
        arrays = [*pool.values(), *(a for kept in free.values() for a in kept)]
        return sum(a.size * np.dtype(a.dtype).itemsize for a in arrays)

    def clear(self) -> None:
        """Free this thread's buffers."""
        pool, free = self._state()
        pool.clear()
        free.clear()
