"""Reusable device scratch buffers for big temporaries (im2col columns, GEMM results): the
functions of ``cpu/workspace.py``.  On a GPU a fresh allocation is a driver call (and memory
that only numba's deallocation queue gives back), so each named buffer only grows.  A view is
valid until the next ``get`` of the same name; ``take``/``give`` keep a free list by shape for
data kept from a forward for its backward."""

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


def _free() -> dict:
    free = getattr(_local, "free", None)
    if free is None:
        free = _local.free = {}
    return free


FREE_PER_SHAPE = 4


def take(shape: tuple[int, ...], dtype):
    """An uninitialised ``shape`` device array of ``dtype`` that may outlive the op."""
    key = (tuple(int(s) for s in shape), np.dtype(dtype))
    free = _free().get(key)
    return free.pop() if free else cuda.device_array(key[0], dtype=key[1])


def give(a) -> None:
    """Return an array from ``take`` for reuse; the caller must not use it afterwards."""
    free = _free().setdefault((tuple(int(s) for s in a.shape), np.dtype(a.dtype)), [])
    if len(free) < FREE_PER_SHAPE:
        free.append(a)


def nbytes() -> int:
    """Bytes held by this thread's buffers."""
    held = sum(b.size * b.dtype.itemsize for b in _pool().values())
    return held + sum(a.size * a.dtype.itemsize for arrays in _free().values() for a in arrays)


def clear() -> None:
    """Free this thread's buffers."""
    _pool().clear()
    _free().clear()
