"""Reusable scratch buffers for big temporaries (im2col columns, GEMM results).

A fresh array larger than glibc's mmap threshold is new pages on every call: 51 MB of columns
cost 8-10 ms of page faults, as much as the GEMM that reads them.  An op asks for a named
buffer; it is a view of one flat, per-thread allocation that only grows, so after the first
call of the largest layer no step touches fresh memory.  The view is valid until the next
``get`` of the same name: ops use it only inside one forward or backward, never return it or
save it for later.  ``clear()`` gives the memory back.

Data an op keeps from its forward for its backward (a convolution's columns) instead comes from
``take`` and goes back with ``give`` once used: a per-thread free list by shape, so the next
step reuses the same pages.  An array never given back is simply garbage-collected.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def _pool() -> dict:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def get(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A C-contiguous, uninitialised ``shape`` array of ``dtype`` backed by buffer ``name``."""
    dtype = np.dtype(dtype)
    count = 1
    for s in shape:
        count *= int(s)
    key = (name, dtype)
    pool = _pool()
    buf = pool.get(key)
    if buf is None or buf.size < count:
        pool.pop(key, None)  # free the old buffer before allocating the larger one
        buf = pool[key] = np.empty(max(count, 1), dtype=dtype)
    return buf[:count].reshape(shape)


def _free() -> dict:
    free = getattr(_local, "free", None)
    if free is None:
        free = _local.free = {}
    return free


# Free arrays kept per (shape, dtype): enough for the layers of one step that keep data.
FREE_PER_SHAPE = 4


def take(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised ``shape`` array of ``dtype`` that may outlive the op (see ``give``)."""
    key = (tuple(int(s) for s in shape), np.dtype(dtype))
    free = _free().get(key)
    return free.pop() if free else np.empty(key[0], dtype=key[1])


def give(a: np.ndarray) -> None:
    """Return an array from ``take`` for reuse; the caller must not use it afterwards."""
    free = _free().setdefault((tuple(a.shape), a.dtype), [])
    if len(free) < FREE_PER_SHAPE:
        free.append(a)


def nbytes() -> int:
    """Bytes held by this thread's buffers."""
    held = sum(b.nbytes for b in _pool().values())
    return held + sum(a.nbytes for arrays in _free().values() for a in arrays)


def clear() -> None:
    """Free this thread's buffers."""
    _pool().clear()
    _free().clear()
