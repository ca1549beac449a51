"""Reusable scratch buffers for big temporaries, one implementation for every device; each
device module (``ops/cpu/workspace.py``, ``ops/cuda/workspace.py``) binds it to its allocator.

A fresh array larger than glibc's mmap threshold is new pages on every call: 51 MB of im2col
columns cost 8-10 ms of page faults, as much as the GEMM that reads them (on a GPU a fresh
allocation is a driver call).  So an op asks for a *named* buffer: a view of one flat,
per-thread allocation that only grows, valid until the next ``get`` of the same name -- ops use
it only inside one forward or backward, never return it or save it for later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


def _count(shape) -> int:
    count = 1
    for s in shape:
        count *= int(s)
    return count


class Workspace:
    """Named grow-only buffers, per thread, over ``allocate(shape, dtype)``."""

    def __init__(self, allocate: Callable):
        self._allocate = allocate
        self._local = threading.local()

    def functions(self) -> tuple:
        """``(get, nbytes, clear)``: what a device's workspace module exports."""
        return self.get, self.nbytes, self.clear

    def _pool(self) -> dict:
        local = self._local
        if not hasattr(local, "pool"):
            local.pool = {}
        return local.pool

    def get(self, name: str, shape: tuple[int, ...], dtype):
        """A C-contiguous, uninitialised ``shape`` array of ``dtype`` backed by buffer ``name``."""
        dtype, count = np.dtype(dtype), _count(shape)
        pool = self._pool()
        key = (name, dtype)
        buf = pool.get(key)
        if buf is None or buf.size < count:
            pool.pop(key, None)  # free the old buffer before allocating the larger one
            buf = pool[key] = self._allocate((max(count, 1),), dtype)
        return buf[:count].reshape(tuple(int(s) for s in shape))

    def nbytes(self) -> int:
        """Bytes held by this thread's buffers."""
        return sum(a.size * np.dtype(a.dtype).itemsize for a in self._pool().values())

    def clear(self) -> None:
        """Free this thread's buffers."""
        self._pool().clear()
