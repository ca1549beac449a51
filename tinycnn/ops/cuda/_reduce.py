"""Reduction kernels behind ``array.py``: sum, argmax, the all-finite check.

A reduction over a contiguous run of axes views the array as (outer, mid, inner).  With
``inner > 1`` (or many short rows) one thread owns one output and walks ``mid``: neighbouring
threads read neighbouring addresses, so the loads coalesce.  With ``inner == 1`` and long rows,
a block reduces a chunk of a row through a shared-memory tree and the chunks are reduced again.
"""

from __future__ import annotations

import math

from numba import cuda

from ._cuda import each, kernel
from .config import REDUCE_THREADS

NUMERIC = ("float32", "float64", "int64")


@kernel(*each("{T}[::1], {T}[::1], int64, int64, int64", T=NUMERIC))
def sum_mid(a, out, outer, mid, inner):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, outer * inner, step):
        o = t // inner
        i = t - o * inner
        base = o * mid * inner + i
        s = 0  # unifies with the element type (float32 sums accumulate in float64)
        for m in range(mid):
            s += a[base + m * inner]
        out[t] = s


@kernel(*each("{T}[::1], {T}[::1], int64, int64", T=NUMERIC))
def sum_rows(a, out, length, chunk):
    """Grid (chunks, rows): block (c, r) sums ``a[r, c*chunk:(c+1)*chunk]`` into out[r, c]."""
    buf = cuda.shared.array(REDUCE_THREADS, a.dtype)
    c = cuda.blockIdx.x
    row = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    lo = c * chunk
    hi = min(lo + chunk, length)
    s = 0
    for j in range(lo + tid, hi, REDUCE_THREADS):
        s += a[row * length + j]
    buf[tid] = s
    cuda.syncthreads()
    h = REDUCE_THREADS // 2
    while h > 0:
        if tid < h:
            buf[tid] += buf[tid + h]
        cuda.syncthreads()
        h //= 2
    if tid == 0:
        out[row * cuda.gridDim.x + c] = buf[0]


@kernel(*each("{T}[::1], int64[::1], int64, int64, int64", T=NUMERIC))
def argmax_mid(a, out, outer, mid, inner):
    """First index of the maximum along ``mid``; a NaN counts as the maximum (NumPy's rule)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, outer * inner, step):
        o = t // inner
        i = t - o * inner
        base = o * mid * inner + i
        best = a[base]
        arg = 0
        if best == best:
            for m in range(1, mid):
                v = a[base + m * inner]
                if v != v:
                    arg = m
                    break
                if v > best:
                    best = v
                    arg = m
        out[t] = arg


@kernel(*each("{T}[::1], int32[::1]"))
def nonfinite(a, flag):
    """Set ``flag[0] = 1`` if any element is NaN or +-Inf (every writer writes the same 1)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, a.size, step):
        v = a[i]
        if math.isnan(v) or math.isinf(v):
            flag[0] = 1
