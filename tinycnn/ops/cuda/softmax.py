"""CUDA kernels of softmax and log_softmax over the middle axis of an ``(outer, C, inner)``
array: the functions of ``cpu/softmax.py``, by name.

One thread owns one (outer, inner) position and walks the C classes three times (max, sum of
exponentials, output); with ``inner > 1`` neighbouring threads read neighbouring addresses.
Stable: ``exp(x - max)``; ``log_softmax = (x - max) - log(sum)``,
in that order: ``x - (max + log(sum))`` loses the low bits of ``x - max`` when ``|max|`` is
large (all of them from ``|max|`` ~ 1e16 in float64).
"""

from __future__ import annotations

import math

from numba import cuda

from ._cuda import blocks, each, kernel
from .config import THREADS


@kernel(*each("{T}[::1], {T}[::1], int64, int64, boolean"))
def _forward(x, out, n_cls, inner, log):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, x.size // n_cls, step):
        o = t // inner
        base = o * n_cls * inner + (t - o * inner)
        m = x[base]
        for c in range(1, n_cls):
            v = x[base + c * inner]
            if v > m:
                m = v
        total = 0.0
        for c in range(n_cls):
            total += math.exp(x[base + c * inner] - m)
        if log:
            log_total = math.log(total)
            for c in range(n_cls):
                out[base + c * inner] = (x[base + c * inner] - m) - log_total
        else:
            inv = 1.0 / total
            for c in range(n_cls):
                out[base + c * inner] = math.exp(x[base + c * inner] - m) * inv


@kernel(*each("{T}[::1], {T}[::1], {T}[::1], int64, int64, boolean"))
def _backward(y, g, out, n_cls, inner, log):
    # softmax:     dx = y * (g - sum_c g*y)
    # log_softmax: dx = g - exp(y) * sum_c g
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, y.size // n_cls, step):
        o = t // inner
        base = o * n_cls * inner + (t - o * inner)
        acc = 0.0
        for c in range(n_cls):
            k = base + c * inner
            acc += g[k] if log else g[k] * y[k]
        for c in range(n_cls):
            k = base + c * inner
            if log:
                out[k] = g[k] - math.exp(y[k]) * acc
            else:
                out[k] = y[k] * (g[k] - acc)


def _run(k, x, *args) -> None:
    n_cls, inner = int(x.shape[1]), int(x.shape[2])
    if x.size:
        flat = [a.reshape((a.size,)) for a in args[:-1]]
        k[blocks(x.size // n_cls), THREADS](*flat, n_cls, inner, args[-1])


def softmax_forward(x, out) -> None:
    """``out = softmax(x)`` along axis 1 of ``x`` (outer, C, inner)."""
    _run(_forward, x, x, out, False)


def log_softmax_forward(x, out) -> None:
    """``out = log_softmax(x)`` along axis 1 of ``x`` (outer, C, inner)."""
    _run(_forward, x, x, out, True)


def softmax_backward(y, g, out) -> None:
    """Gradient of softmax from its output ``y`` and the upstream ``g`` (outer, C, inner)."""
    _run(_backward, y, y, g, out, False)


def log_softmax_backward(y, g, out) -> None:
    """Gradient of log_softmax from its output ``y`` and the upstream ``g``."""
    _run(_backward, y, y, g, out, True)
