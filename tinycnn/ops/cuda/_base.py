"""Shared host-side helpers of the CUDA array back end: dtypes, layouts, creation and copies.

``array.py`` re-exports the public names; ``array_shape.py`` builds on them.
"""

from __future__ import annotations

from functools import reduce as _reduce_fn

import numpy as np
from numba import cuda

from . import _elementwise as E
from ._cuda import blocks, elem_strides, flat_buffer, is_dense, to_host
from .config import MAX_DIMS, THREADS

SUPPORTED = tuple(np.dtype(d) for d in ("float32", "float64", "int64", "bool", "uint8", "int32"))
_NUMERIC = SUPPORTED[:3]
_FLOAT = SUPPORTED[:2]


def _prod(shape) -> int:
    return _reduce_fn(lambda x, y: x * int(y), shape, 1)


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def _check_dtype(dtype, allowed=SUPPORTED, what: str = "cuda arrays") -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise TypeError(
            f"{what}: dtype {dtype} is not supported on device 'cuda' ({names}); cast first"
        )
    return dtype


def _is_device(a) -> bool:
    return hasattr(a, "copy_to_host")


def _flat(a):
    """The flat buffer of ``a`` (copied first unless dense) and its element strides."""
    if not is_dense(a):
        a = from_numpy(to_host(a))
    return flat_buffer(a), elem_strides(a)


def _launch(kern, n: int, *args) -> None:
    if n:
        kern[blocks(n), THREADS](*args)


def _layout(shape, operands) -> tuple[tuple, list]:
    """Pad ``shape`` and each operand's (shape, element strides), broadcast to it, to MAX_DIMS,
    dropping size-1 dims and merging dims that are contiguous in every operand."""
    nd = len(shape)
    per_op = []
    for oshape, ostrides in operands:
        lead = nd - len(oshape)
        per_op.append([0] * lead + [0 if n == 1 else s for n, s in zip(oshape, ostrides)])
    merged: list[tuple[int, list]] = []
    for d, n in enumerate(shape):
        if n == 1:
            continue
        sts = [st[d] for st in per_op]
        if merged and all(ps == s * n for ps, s in zip(merged[-1][1], sts)):
            merged[-1] = (merged[-1][0] * n, sts)
        else:
            merged.append((n, sts))
    if len(merged) > MAX_DIMS:
        raise ValueError(
            f"cuda: shape {tuple(shape)} has {len(merged)} dims that cannot be merged; "
            f"at most {MAX_DIMS} are supported"
        )
    pad = MAX_DIMS - len(merged)
    out_shape = (1,) * pad + tuple(n for n, _ in merged)
    strides = [(0,) * pad + tuple(sts[k] for _, sts in merged) for k in range(len(operands))]
    return out_shape, strides


def _broadcast_shape(op: str, *shapes) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(
            f"{op}: operands could not be broadcast together with shapes "
            + " ".join(str(tuple(s)) for s in shapes)
        ) from None


def _operands(op: str, a, b, allowed=_NUMERIC):
    """Device arrays of one dtype (NumPy's promotion; Python numbers are weak, as in NumPy 2)."""
    da = a.dtype if _is_device(a) else None
    db = b.dtype if _is_device(b) else None
    args = [x if _is_device(x) else (x if np.isscalar(x) else np.asarray(x)) for x in (a, b)]
    for x, given in zip(args, (a, b)):  # np.result_type reads a string as a dtype ("f", "?")
        if not _is_device(x) and np.asarray(x).dtype.kind not in "biuf":
            raise TypeError(
                f"{op}: the other operand must be a number or an array of numbers, got "
                f"{given!r} ({np.asarray(x).dtype}) with a tensor on device 'cuda'"
            )
    dtype = np.result_type(*(d if d is not None else x for d, x in zip((da, db), args)))
    dtype = _check_dtype(dtype, allowed, op)
    return tuple(_to_dtype(x, dtype) for x in args)


def _to_dtype(x, dtype):
    if _is_device(x):
        return x if x.dtype == dtype else astype(x, dtype)
    return from_numpy(np.asarray(x, dtype=dtype))


# ------------------------------------------------------------------------------ creation
def from_numpy(a: np.ndarray):
    a = np.asarray(a, order="C")
    _check_dtype(a.dtype, SUPPORTED, "from_numpy")
    return cuda.to_device(a)


def to_numpy(a) -> np.ndarray:
    return to_host(a)


def empty(shape, dtype):
    return cuda.device_array(_shape(shape), dtype=_check_dtype(dtype))


def zeros(shape, dtype):
    return full(shape, 0, dtype)


def full(shape, value, dtype):
    out = empty(shape, dtype)
    _launch(E.fill, out.size, flat_buffer(out), out.dtype.type(value))
    return out


def scalar(value, dtype):
    return full((), value, dtype)


def astype(a, dtype):
    dtype = _check_dtype(dtype)
    if dtype == a.dtype:
        return copy(a)
    a = contiguous(a)
    out = empty(a.shape, dtype)
    _launch(E.cast, a.size, flat_buffer(a), flat_buffer(out))
    return out


def _gather(src_flat, out_shape, strides, base: int = 0, dtype=None):
    out = empty(out_shape, dtype or src_flat.dtype)
    if out.size:
        shape, (st,) = _layout(out_shape, [(out_shape, strides)])
        _launch(E.gather, out.size, src_flat, flat_buffer(out), shape, st, int(base))
    return out


def copy(a):
    flat, strides = _flat(a)
    return _gather(flat, _shape(a.shape), strides)


def contiguous(a):
    return a if a.is_c_contiguous() else copy(a)


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted({int(ax) % max(ndim, 1) for ax in axes}))
