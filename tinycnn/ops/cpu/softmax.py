"""CPU kernels of softmax and log_softmax over the middle axis of an ``(outer, C, inner)`` array.

Any ``dim`` of any tensor is this layout after a reshape (no transpose).  When ``inner == 1``
(the usual ``dim=-1``) a row is contiguous; otherwise the loops run over ``inner`` innermost
with per-position running max/sum vectors, so memory is still read in order.  One thread owns
one ``outer`` slice.  Stable: ``exp(x - max)``; ``log_softmax = (x - max) - log(sum)``,
in that order: ``x - (max + log(sum))`` loses the low bits of ``x - max`` when ``|max|`` is
large (all of them from ``|max|`` ~ 1e16 in float64).
"""

from __future__ import annotations

import math

import numpy as np

from ._numba import ORDERED_FASTMATH, njit, prange
from ._vmath import exp as _exp

# Below this many elements a kernel runs on the calling thread: a parallel launch on Numba's
# workqueue layer costs ~20 us, more than a (100, 10) softmax.
PARALLEL_MIN = 1 << 15


@njit(fastmath=ORDERED_FASTMATH)  # not inlined: the caller's 'reassoc' would undo the order
def _log_shift(x, m, log_total, out):
    """``out = (x - m) - log_total`` for 1-d ``x``, ``out``, in that order."""
    for c in range(x.shape[0]):
        out[c] = (x[c] - m) - log_total


@njit(fastmath=ORDERED_FASTMATH)
def _log_shift_columns(x, m, log_total, out):
    """``out[c, i] = (x[c, i] - m[i]) - log_total[i]``, in that order."""
    for c in range(x.shape[0]):
        for i in range(x.shape[1]):
            out[c, i] = (x[c, i] - m[i]) - log_total[i]


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
            _log_shift(row, m, math.log(total), orow)
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
            total[i] = math.log(total[i])
        _log_shift_columns(xs, m, total, os)
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
