"""CPU kernels of softmax and log_softmax over the middle axis of an ``(outer, C, inner)`` array.

Any ``dim`` of any tensor is this layout after a reshape (no transpose).  When ``inner == 1``
(the usual ``dim=-1``) a row is contiguous; otherwise the loops run over ``inner`` innermost
with per-position running max/sum vectors, so memory is still read in order.  One thread owns
one ``outer`` slice.  Stable: ``exp(x - max)``; ``log_softmax = x - max - log(sum)``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._numba import njit, prange

# Below this many elements a kernel runs on the calling thread: a parallel launch on Numba's
# workqueue layer costs ~20 us, more than a (100, 10) softmax.
PARALLEL_MIN = 1 << 15


# --------------------------------------------------------------------------- vectorisable exp
# Numba has no vector math library here (no SVML): math.exp is a scalar libm call, 2-10 ns per
# element.  This exp is plain arithmetic (Cody-Waite range reduction, degree-13 Taylor, 2**k built
# from its bits), so LLVM vectorises the loops that call it: ~0.6-1 ns per element.  On
# [-708, 0], the range softmax needs (arguments are x - max <= 0), the relative error is below
# 3e-16 + 4e-17 * |x| (fastmath may merge the two-constant reduction); results below exp(-708)
# flush to 0 and NaN propagates.
@intrinsic
def _f64_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(inline="always")
def _exp(x):
    y = min(max(x, -708.0), 709.0)
    k = math.floor(y * 1.4426950408889634 + 0.5)
    r = (y - k * 0.6931471803691238) - k * 1.9082149292705877e-10
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    v = p * _f64_from_bits((np.int64(k) + 1023) << 52)
    if x < -708.0:
        v = 0.0
    if x != x:
        v = x
    return v


@njit(inline="always")
def _softmax_slice(x, o, log, out):
    n_cls, inner = x.shape[1], x.shape[2]
    if inner == 1:
        row = x[o].reshape(n_cls)  # contiguous 1-d views: the loops vectorise
        orow = out[o].reshape(n_cls)
        m = -np.inf
        for c in range(n_cls):
            if row[c] > m:
                m = row[c]
        total = 0.0
        for c in range(n_cls):
            total += _exp(row[c] - m)
        if log:
            shift = m + math.log(total)
            for c in range(n_cls):
                orow[c] = row[c] - shift
        else:
            inv = 1.0 / total
            for c in range(n_cls):
                orow[c] = _exp(row[c] - m) * inv
        return
    xs = x[o]
    os = out[o]
    m = np.full(inner, -np.inf)
    for c in range(n_cls):
        for i in range(inner):
            if xs[c, i] > m[i]:
                m[i] = xs[c, i]
    total = np.zeros(inner)
    for c in range(n_cls):
        for i in range(inner):
            total[i] += _exp(xs[c, i] - m[i])
    if log:
        for i in range(inner):
            m[i] += math.log(total[i])
        for c in range(n_cls):
            for i in range(inner):
                os[c, i] = xs[c, i] - m[i]
    else:
        for i in range(inner):
            total[i] = 1.0 / total[i]
        for c in range(n_cls):
            for i in range(inner):
                os[c, i] = _exp(xs[c, i] - m[i]) * total[i]


@njit(parallel=True)
def _forward_par(x, log, out):
    for o in prange(x.shape[0]):
        _softmax_slice(x, o, log, out)


@njit
def _forward_ser(x, log, out):
    for o in range(x.shape[0]):
        _softmax_slice(x, o, log, out)


def softmax_forward(x, out):
    """``out = softmax(x)`` along axis 1 of ``x`` (outer, C, inner)."""
    (_forward_par if x.size >= PARALLEL_MIN else _forward_ser)(x, False, out)


def log_softmax_forward(x, out):
    """``out = log_softmax(x)`` along axis 1 of ``x`` (outer, C, inner)."""
    (_forward_par if x.size >= PARALLEL_MIN else _forward_ser)(x, True, out)


@njit(inline="always")
def _backward_slice(y, g, o, log, out):
    # softmax:     dx = y * (g - sum_c g*y)
    # log_softmax: dx = g - exp(y) * sum_c g
    n_cls, inner = y.shape[1], y.shape[2]
    acc = np.zeros(inner)
    ys = y[o]
    gs = g[o]
    os = out[o]
    if log:
        for c in range(n_cls):
            for i in range(inner):
                acc[i] += gs[c, i]
        for c in range(n_cls):
            for i in range(inner):
                os[c, i] = gs[c, i] - _exp(ys[c, i]) * acc[i]
    else:
        for c in range(n_cls):
            for i in range(inner):
                acc[i] += gs[c, i] * ys[c, i]
        for c in range(n_cls):
            for i in range(inner):
                os[c, i] = ys[c, i] * (gs[c, i] - acc[i])


@njit(parallel=True)
def _backward_par(y, g, log, out):
    for o in prange(y.shape[0]):
        _backward_slice(y, g, o, log, out)


@njit
def _backward_ser(y, g, log, out):
    for o in range(y.shape[0]):
        _backward_slice(y, g, o, log, out)


def softmax_backward(y, g, out):
    """Gradient of softmax from its output ``y`` and the upstream ``g`` (outer, C, inner)."""
    (_backward_par if y.size >= PARALLEL_MIN else _backward_ser)(y, g, False, out)


def log_softmax_backward(y, g, out):
    """Gradient of log_softmax from its output ``y`` and the upstream ``g``."""
    (_backward_par if y.size >= PARALLEL_MIN else _backward_ser)(y, g, True, out)
