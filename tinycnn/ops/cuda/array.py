"""The CUDA array back end: the functions of ``cpu/array.py``, by name, over numba device arrays.

Arrays are numba ``DeviceNDArray``\\ s (``FakeCUDAArray`` under the simulator) holding float32,
float64, int64 or bool.  Every function returns a C-contiguous array except ``transpose``, which
returns a view with permuted strides (as on the CPU, where BLAS reads transposed operands in
place): the GEMM and every gather-based kernel read such views directly; ``contiguous`` copies.
Nothing here synchronises with the host except ``to_numpy``, ``isfinite_all``, the bounds check
of ``take`` indices and the (host) fallback of advanced indexing.

This module holds creation, elementwise ops and reductions; the shape and data-movement half
(reshape, transpose, matmul, indexing, ...) lives in ``array_shape.py`` and is re-exported here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from . import _elementwise as E
from . import _reduce as R
from ._base import (  # noqa: F401 - public names of the back end
    _FLOAT,
    _NUMERIC,
    SUPPORTED,
    _axes,
    _broadcast_shape,
    _check_dtype,
    _flat,
    _is_device,
    _launch,
    _layout,
    _operands,
    _prod,
    _shape,
    _to_dtype,
    astype,
    contiguous,
    copy,
    empty,
    from_numpy,
    full,
    scalar,
    to_numpy,
    zeros,
)
from ._cuda import flat_buffer
from .array_shape import (  # noqa: F401 - the shape half of this back end
    broadcast_to,
    concatenate,
    getitem,
    getitem_backward,
    matmul,
    reshape,
    slice_axis,
    take,
    take_backward,
    transpose,
)
from .config import REDUCE_CHUNK, REDUCE_THREADS

_COMPARE = {"eq": E.EQ, "ne": E.NE, "lt": E.LT, "le": E.LE, "gt": E.GT, "ge": E.GE}


# ------------------------------------------------------------------------------ elementwise
def _binary(name: str, op: int, a, b):
    a, b = _operands(name, a, b)
    shape = _broadcast_shape(name, a.shape, b.shape)
    out = empty(shape, a.dtype)
    if out.size == 0:
        return out
    flat_ok = all(x.is_c_contiguous() and (x.shape == shape or x.size == 1) for x in (a, b))
    if flat_ok:
        sa, sb = int(a.size != 1), int(b.size != 1)
        args = (flat_buffer(a), flat_buffer(b), flat_buffer(out), op, sa, sb)
        _launch(E.binary_flat, out.size, *args)
        return out
    (fa, sta), (fb, stb) = _flat(a), _flat(b)
    nd_shape, (sa, sb) = _layout(shape, [(a.shape, sta), (b.shape, stb)])
    _launch(E.binary_nd, out.size, fa, fb, flat_buffer(out), op, nd_shape, sa, sb)
    return out


def add(a, b):
    return _binary("add", E.ADD, a, b)


def sub(a, b):
    return _binary("sub", E.SUB, a, b)


def mul(a, b):
    return _binary("mul", E.MUL, a, b)


def div(a, b):
    if not (_is_device(a) and a.dtype in _FLOAT) and not (_is_device(b) and b.dtype in _FLOAT):
        a = astype(a, np.float64) if _is_device(a) else np.asarray(a, dtype=np.float64)
    return _binary("div", E.DIV, a, b)


def maximum(a, b):
    return _binary("maximum", E.MAXIMUM, a, b)


def _unary(name: str, op: int, a, p: float = 0.0):
    _check_dtype(a.dtype, _FLOAT, name)
    a = contiguous(a)
    out = empty(a.shape, a.dtype)
    _launch(E.unary, a.size, flat_buffer(a), flat_buffer(out), op, a.dtype.type(p))
    return out


def neg(a):
    return _unary("neg", E.NEG, a)


def exp(a):
    return _unary("exp", E.EXP, a)


def log(a):
    return _unary("log", E.LOG, a)


def sqrt(a):
    return _unary("sqrt", E.SQRT, a)


def power(a, exponent: float):
    return _unary("power", E.POW, a, float(exponent))


def compare(a, b, op: str):
    a, b = _operands(f"compare {op}", a, b, SUPPORTED)
    shape = _broadcast_shape(f"compare {op}", a.shape, b.shape)
    out = empty(shape, np.bool_)
    if out.size:
        (fa, sta), (fb, stb) = _flat(a), _flat(b)
        nd_shape, (sa, sb) = _layout(shape, [(a.shape, sta), (b.shape, stb)])
        _launch(E.compare_nd, out.size, fa, fb, flat_buffer(out), _COMPARE[op], nd_shape, sa, sb)
    return out


def where(cond, a, b):
    cond = _to_dtype(cond, np.dtype(np.bool_))
    a, b = _operands("where", a, b, SUPPORTED)
    shape = _broadcast_shape("where", cond.shape, a.shape, b.shape)
    out = empty(shape, a.dtype)
    if out.size:
        (fc, stc), (fa, sta), (fb, stb) = _flat(cond), _flat(a), _flat(b)
        ops = [(cond.shape, stc), (a.shape, sta), (b.shape, stb)]
        nd_shape, (sc, sa, sb) = _layout(shape, ops)
        _launch(E.where_nd, out.size, fc, fa, fb, flat_buffer(out), nd_shape, sc, sa, sb)
    return out


# ------------------------------------------------------------------------------ reductions
def _runs(axes: tuple[int, ...]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive axes, as (start, stop)."""
    runs: list[list[int]] = []
    for ax in axes:
        if runs and runs[-1][1] == ax:
            runs[-1][1] = ax + 1
        else:
            runs.append([ax, ax + 1])
    return [(s, e) for s, e in runs]


def _sum_run(a, start: int, stop: int):
    """Sum contiguous ``a`` over axes start..stop-1, keeping them as size 1."""
    shape = tuple(a.shape)
    outer, mid, inner = _prod(shape[:start]), _prod(shape[start:stop]), _prod(shape[stop:])
    out_shape = shape[:start] + (1,) * (stop - start) + shape[stop:]
    if inner == 1 and mid >= 4 * REDUCE_THREADS and 0 < outer <= 65535:
        chunks = min(math.ceil(mid / REDUCE_CHUNK), 65535)
        chunk = math.ceil(mid / chunks)
        part = empty((outer, chunks), a.dtype)
        R.sum_rows[(chunks, outer), REDUCE_THREADS](flat_buffer(a), flat_buffer(part), mid, chunk)
        return reshape(_sum_run(part, 1, 2) if chunks > 1 else part, out_shape)
    out = empty(out_shape, a.dtype)
    if mid == 0:
        return zeros(out_shape, a.dtype)
    _launch(R.sum_mid, outer * inner, flat_buffer(a), flat_buffer(out), outer, mid, inner)
    return out


def sum(a, axis=None, keepdims: bool = False):  # noqa: A001 - mirrors NumPy
    if a.dtype == np.bool_:
        a = astype(a, np.int64)
    _check_dtype(a.dtype, _NUMERIC, "sum")
    axes = _axes(axis, a.ndim)
    cur = contiguous(a)
    if not axes:
        cur = copy(cur)
    for start, stop in reversed(_runs(axes)):
        cur = _sum_run(cur, start, stop)
    if keepdims:
        return cur
    return reshape(cur, tuple(n for d, n in enumerate(a.shape) if d not in axes))


def sum_to_shape(a, shape: tuple[int, ...]):
    """Sum a broadcast result back to ``shape`` (the gradient of broadcasting)."""
    shape = _shape(shape)
    if tuple(a.shape) == shape:
        return a
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and a.shape[i + lead] != 1
    )
    return reshape(sum(a, axis=axes, keepdims=True), shape)


def argmax(a, axis=None):
    if a.dtype in SUPPORTED and a.dtype not in _NUMERIC:  # bool, uint8, int32: exact in int64
        a = astype(a, np.int64)
    _check_dtype(a.dtype, _NUMERIC, "argmax")
    a = contiguous(a)
    if axis is None:
        outer, mid, inner, out_shape = 1, a.size, 1, ()
    else:
        ax = int(axis) % a.ndim
        shape = tuple(a.shape)
        outer, mid, inner = _prod(shape[:ax]), shape[ax], _prod(shape[ax + 1 :])
        out_shape = shape[:ax] + shape[ax + 1 :]
    if mid == 0:
        raise ValueError("argmax: attempt to get argmax of an empty sequence")
    out = empty(out_shape, np.int64)
    _launch(R.argmax_mid, outer * inner, flat_buffer(a), flat_buffer(out), outer, mid, inner)
    return out


def isfinite_all(a) -> bool:
    if a.dtype not in _FLOAT or a.size == 0:
        return True
    flag = cuda.to_device(np.zeros(1, np.int32))
    fa, _ = _flat(a)
    _launch(R.nonfinite, a.size, fa, flag)
    return bool(flag.copy_to_host()[0] == 0)
