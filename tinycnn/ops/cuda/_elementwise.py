"""Elementwise and data-movement kernels behind ``array.py``.

Arrays arrive as flat 1-d buffers; shapes and element strides as tuples padded to
``config.MAX_DIMS`` (leading size-1 dims), so one compiled kernel per dtype serves every rank,
every broadcast and every transposed view.  All loops are grid-stride: any grid covers any size.
"""

from __future__ import annotations

import math

from numba import cuda

from ._cuda import each, kernel
from .config import MAX_DIMS

ADD, SUB, MUL, DIV, MAXIMUM = 0, 1, 2, 3, 4
NEG, EXP, LOG, SQRT, POW = 0, 1, 2, 3, 4
EQ, NE, LT, LE, GT, GE = 0, 1, 2, 3, 4, 5

_TUP = f"UniTuple(int64, {MAX_DIMS})"
ALL = ("float32", "float64", "int64", "int32", "boolean", "uint8")
NUMERIC = ("float32", "float64", "int64")


@cuda.jit(device=True)
def _offset(i, shape, strides):
    """Element offset of linear output index ``i`` in an operand with ``strides``."""
    off = 0
    for d in range(MAX_DIMS - 1, -1, -1):
        n = shape[d]
        q = i // n
        off += (i - q * n) * strides[d]
        i = q
    return off


@cuda.jit(device=True)
def _binary(op, x, y):
    if op == ADD:
        return x + y
    if op == SUB:
        return x - y
    if op == MUL:
        return x * y
    if op == DIV:
        return x / y
    if x != x:  # maximum: NaN wins, as np.maximum
        return x
    if y != y:
        return y
    return x if x >= y else y


@cuda.jit(device=True)
def _compare(op, x, y):
    if op == EQ:
        return x == y
    if op == NE:
        return x != y
    if op == LT:
        return x < y
    if op == LE:
        return x <= y
    if op == GT:
        return x > y
    return x >= y


@kernel(*each("{T}[::1], {T}", T=ALL))
def fill(out, value):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = value


@kernel(*each("{T}[::1], {T}[::1], int64, {T}"))
def unary(x, out, op, p):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        v = x[i]
        if op == NEG:
            out[i] = -v
        elif op == EXP:
            out[i] = math.exp(v)
        elif op == LOG:
            out[i] = math.log(v)
        elif op == SQRT:
            out[i] = math.sqrt(v)
        else:
            out[i] = math.pow(v, p)


@kernel(*each("{T}[::1], {T}[::1], {T}[::1], int64, int64, int64", T=NUMERIC))
def binary_flat(a, b, out, op, sa, sb):
    """Same-shape operands (``sa = sb = 1``) or one of them a single value (its step 0)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = _binary(op, a[i * sa], b[i * sb])


@kernel(*each(f"{{T}}[::1], {{T}}[::1], {{T}}[::1], int64, {_TUP}, {_TUP}, {_TUP}", T=NUMERIC))
def binary_nd(a, b, out, op, shape, sa, sb):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = _binary(op, a[_offset(i, shape, sa)], b[_offset(i, shape, sb)])


@kernel(*each(f"{{T}}[::1], {{T}}[::1], boolean[::1], int64, {_TUP}, {_TUP}, {_TUP}", T=ALL))
def compare_nd(a, b, out, op, shape, sa, sb):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = _compare(op, a[_offset(i, shape, sa)], b[_offset(i, shape, sb)])


@kernel(*each(f"boolean[::1], {{T}}[::1], {{T}}[::1], {{T}}[::1], {_TUP}, {_TUP}, {_TUP}, {_TUP}"))
def where_nd(cond, a, b, out, shape, sc, sa, sb):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        if cond[_offset(i, shape, sc)]:
            out[i] = a[_offset(i, shape, sa)]
        else:
            out[i] = b[_offset(i, shape, sb)]


@kernel(*each(f"{{T}}[::1], {{T}}[::1], {_TUP}, {_TUP}, int64", T=ALL))
def gather(src, out, shape, strides, base):
    """``out[i] = src[base + offset(i)]``: copies, broadcasts, transposes, basic slices."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = src[base + _offset(i, shape, strides)]


@kernel(*each(f"{{T}}[::1], {{T}}[::1], {_TUP}, {_TUP}, int64"))
def scatter(src, out, shape, strides, base):
    """``out[base + offset(i)] = src[i]`` (the backward of a basic slice: no index repeats)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, src.size, step):
        out[base + _offset(i, shape, strides)] = src[i]


@kernel(*each("{S}[::1], {D}[::1]", S=ALL, D=ALL))
def cast(x, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = x[i]


@kernel(*each("{T}[::1], {T}[::1], int64, int64, int64, int64, int64, int64, int64", T=ALL))
def slab_copy(src, dst, outer, src_mid, dst_mid, inner, src_off, dst_off, mid):
    """Copy ``mid`` slabs between (outer, *_mid, inner) arrays: concatenate and slice_axis."""
    n = outer * mid * inner
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, n, step):
        o = t // (mid * inner)
        r = t - o * mid * inner
        m = r // inner
        i = r - m * inner
        dst[(o * dst_mid + dst_off + m) * inner + i] = src[(o * src_mid + src_off + m) * inner + i]


@kernel(*each("{T}[::1], int64[::1], {T}[::1], int64, int64, int64", T=ALL))
def take(src, idx, out, n_src, n_idx, inner):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        o = t // (n_idx * inner)
        r = t - o * n_idx * inner
        j = r // inner
        i = r - j * inner
        k = idx[j]
        if k < 0:
            k += n_src
        out[t] = src[(o * n_src + k) * inner + i]


@kernel(*each("{T}[::1], int64[::1], {T}[::1], int64, int64, int64"))
def take_backward(grad, idx, out, n_src, n_idx, inner):
    """Scatter-add: repeated indices add up (atomics: two threads may hit one element)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, grad.size, step):
        o = t // (n_idx * inner)
        r = t - o * n_idx * inner
        j = r // inner
        i = r - j * inner
        k = idx[j]
        if k < 0:
            k += n_src
        cuda.atomic.add(out, (o * n_src + k) * inner + i, grad[t])
