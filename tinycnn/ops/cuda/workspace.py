"""Reusable device scratch buffers for big temporaries (im2col columns, GEMM results): the
functions of ``cpu/workspace.py``.  On a GPU a fresh allocation is a driver call (and memory
that only numba's deallocation queue gives back), so each named buffer only grows.  A view is
valid until the next ``get`` of the same name."""

from __future__ import annotations

import threading

import numpy as np
from numba import cuda

_local = threading.local()


def _pool() -> dict:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def get(name: str, shape: tuple[int, ...], dtype):
    """A C-contiguous, uninitialised ``shape`` device array of ``dtype`` backed by ``name``."""
    dtype = np.dtype(dtype)
    count = 1
    for s in shape:
        count *= int(s)
    key = (name, dtype)
    pool = _pool()
    buf = pool.get(key)
    if buf is None or buf.size < count:
        pool.pop(key, None)  # drop the old buffer before allocating the larger one
        buf = pool[key] = cuda.device_array(max(count, 1), dtype=dtype)
    return buf[:count].reshape(tuple(int(s) for s in shape))


def nbytes() -> int:
    """Bytes held by this thread's buffers."""
    return sum(b.size * b.dtype.itemsize for b in _pool().values())


def clear() -> None:
    """Free this thread's buffers."""
    _pool().clear()
