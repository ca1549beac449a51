"""The CPU array back end: device-neutral array functions over NumPy.

The ops in ``tinycnn/ops/`` call only these names (and the per-family kernels), so the CUDA
back end (``tinycnn/ops/cuda/array.py``) provides the same functions over device arrays.
"""

from __future__ import annotations

import operator

import numpy as np

_COMPARE = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def _c(a) -> np.ndarray:
    """C-contiguous, keeping 0-d arrays 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    return np.asarray(a, order="C")


def from_numpy(a: np.ndarray) -> np.ndarray:
    return _c(a)


def to_numpy(a: np.ndarray) -> np.ndarray:
    return a


def empty(shape, dtype) -> np.ndarray:
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def full(shape, value, dtype) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


def scalar(value, dtype) -> np.ndarray:
    return np.asarray(value, dtype=dtype)


def astype(a, dtype) -> np.ndarray:
    return a.astype(dtype)


def copy(a) -> np.ndarray:
    return np.array(a, copy=True, order="C")


def contiguous(a) -> np.ndarray:
    return _c(a)


# add, sub and mul of at least this many values run on tinycnn's threads (_binary.py);
# below it one NumPy thread is as fast (a parallel loop costs a few microseconds)
PARALLEL_MIN = 1 << 18


def _parallel(a, b) -> bool:
    """Large C-contiguous float32/float64 operands of one shape and dtype: ``_binary.py``
    (imported on first use, so small arrays never load Numba)."""
    return (
        isinstance(a, np.ndarray)
        and isinstance(b, np.ndarray)
        and a.size >= PARALLEL_MIN
        and a.shape == b.shape
        and a.dtype == b.dtype
        and a.dtype in (np.float32, np.float64)
        and a.flags.c_contiguous
        and b.flags.c_contiguous
    )


def add(a, b):
    if _parallel(a, b):
        from ._binary import binary

        return binary("add", a, b)
    return np.add(a, b)


def sub(a, b):
    if _parallel(a, b):
        from ._binary import binary

        return binary("sub", a, b)
    return np.subtract(a, b)


def mul(a, b):
    if _parallel(a, b):
        from ._binary import binary

        return binary("mul", a, b)
    return np.multiply(a, b)


def div(a, b):
    return np.divide(a, b)


def neg(a):
    return np.negative(a)


def exp(a):
    return np.exp(a)


def log(a):
    return np.log(a)


def sqrt(a):
    return np.sqrt(a)


def power(a, exponent: float):
    return np.power(a, a.dtype.type(exponent))


def sum(a, axis=None, keepdims: bool = False):  # noqa: A001 - mirrors NumPy
    return np.asarray(np.sum(a, axis=axis, keepdims=keepdims))


def sum_to_shape(a, shape: tuple[int, ...]):
    """Sum a broadcast result back to ``shape`` (the gradient of broadcasting)."""
    if tuple(a.shape) == tuple(shape):
        return a
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and a.shape[i + lead] != 1
    )
    return np.sum(a, axis=axes, keepdims=True).reshape(shape)


def broadcast_to(a, shape):
    return _c(np.broadcast_to(a, shape))


def matmul(a, b):
    from . import _blas as blas  # loads Numba: not at ``import tinycnn``

    return blas.matmul(a, b)


def reshape(a, shape):
    return np.reshape(_c(a), shape)


def transpose(a, axes):
    """A view: BLAS reads transposed operands in place; call ``contiguous`` before a kernel."""
    return np.transpose(a, axes)


def concatenate(arrays, axis: int):
    return np.concatenate(arrays, axis=axis)


def slice_axis(a, axis: int, start: int, stop: int):
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return _c(a[tuple(index)])


def getitem(a, index):
    return _c(a[index])


def getitem_backward(grad, index, shape):
    out = np.zeros(shape, dtype=grad.dtype)
    np.add.at(out, index, grad)
    return out


def take(a, indices, axis: int):
    return np.take(a, indices, axis=axis)


def take_backward(grad, indices, axis: int, size: int):
    """Gradient of ``take(a, indices, axis)`` w.r.t. ``a`` (repeated indices add up)."""
    moved = np.moveaxis(grad, axis, 0)
    out = np.zeros((size,) + moved.shape[1:], dtype=grad.dtype)
    np.add.at(out, indices, moved)
    return _c(np.moveaxis(out, 0, axis))


def compare(a, b, op: str):
    return _COMPARE[op](a, b)


def where(cond, a, b):
    return np.where(cond, a, b)


def maximum(a, b):
    return np.maximum(a, b)


def argmax(a, axis=None):
    return np.argmax(a, axis=axis)


def isfinite_all(a) -> bool:
    return bool(np.isfinite(a).all())
