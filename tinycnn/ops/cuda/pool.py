"""CUDA kernels of pooling: the functions of ``cpu/pool.py``, by name.

Arrays are C-contiguous ``(P, H, W)`` (P = N*C planes).  Forward: one thread per output, which
walks its window.  Max pooling keeps the first maximum in scan order and the last NaN
(``v > m or v != v``), exactly as the CPU kernel; indices are int32 flat ``h*W + w`` positions
within the plane.  Backward: zero the input gradient, then one thread per output gradient adds
it at its arg-max with an atomic add (overlapping windows may hit one input element).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ._cuda import blocks, each, kernel
from .config import THREADS

INDEX_DTYPE = np.int32

_I = "int64, " * 12


@kernel(*each("{T}[::1], {T}[::1], int32[::1], " + _I[:-2]))
def _max_forward(x, out, indices, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        p = t // (OH * OW)
        r = t - p * OH * OW
        oh = r // OW
        ow = r - oh * OW
        base = p * H * W
        h0 = oh * sh - ph
        w0 = ow * sw - pw
        m = x[base]
        idx = 0
        found = False
        for i in range(kh):
            ih = h0 + i * dh
            if ih < 0 or ih >= H:
                continue
            for j in range(kw):
                iw = w0 + j * dw
                if iw < 0 or iw >= W:
                    continue
                v = x[base + ih * W + iw]
                if not found or v > m or v != v:
                    m = v
                    idx = ih * W + iw
                    found = True
        out[t] = m
        indices[t] = idx


@kernel(*each("{T}[::1], int32[::1], {T}[::1], int64, int64"))
def _max_backward(grad, indices, out, HW, OHW):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, grad.size, step):
        p = t // OHW
        cuda.atomic.add(out, p * HW + indices[t], grad[t])


@kernel(*each("{T}[::1], {T}"))
def _fill(out, value):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = value


_AVG = "{T}[::1], {T}[::1], {T}[::1], " + "int64, " * 9 + "int64"


@kernel(*each(_AVG))
def _avg_forward(x, scale, out, H, W, OH, OW, kh, kw, sh, sw, ph, pw):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        p = t // (OH * OW)
        r = t - p * OH * OW
        oh = r // OW
        ow = r - oh * OW
        base = p * H * W
        h0 = oh * sh - ph
        w0 = ow * sw - pw
        s = 0.0
        for i in range(kh):  # row by row, left to right: the CPU's (and PyTorch's) order
            ih = h0 + i
            if 0 <= ih < H:
                for j in range(kw):
                    iw = w0 + j
                    if 0 <= iw < W:
                        s += x[base + ih * W + iw]
        out[t] = s * scale[r]


@kernel(*each(_AVG))
def _avg_backward(grad, scale, out, H, W, OH, OW, kh, kw, sh, sw, ph, pw):
    """Gather: input pixel (p, h, w) sums ``grad * scale`` of every window that holds it."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        p = t // (H * W)
        r = t - p * H * W
        h = r // W
        w = r - h * W
        oh_lo = max(0, (h + ph - kh + sh) // sh)
        oh_hi = min(OH, (h + ph) // sh + 1)
        ow_lo = max(0, (w + pw - kw + sw) // sw)
        ow_hi = min(OW, (w + pw) // sw + 1)
        acc = 0.0
        for oh in range(oh_lo, oh_hi):
            for ow in range(ow_lo, ow_hi):
                acc += grad[(p * OH + oh) * OW + ow] * scale[oh * OW + ow]
        out[t] = acc


@cuda.jit(device=True)
def _window(o, size, out_size):
    """PyTorch's adaptive window of output ``o``: [floor(o*size/out), ceil((o+1)*size/out))."""
    return (o * size) // out_size, ((o + 1) * size + out_size - 1) // out_size


@kernel(*each("{T}[::1], {T}[::1], int64, int64, int64, int64"))
def _adaptive_forward(x, out, H, W, OH, OW):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        p = t // (OH * OW)
        r = t - p * OH * OW
        oh = r // OW
        ow = r - oh * OW
        h0, h1 = _window(oh, H, OH)
        w0, w1 = _window(ow, W, OW)
        s = 0.0
        for ih in range(h0, h1):
            for iw in range(w0, w1):
                s += x[(p * H + ih) * W + iw]
        out[t] = s / ((h1 - h0) * (w1 - w0))


@kernel(*each("{T}[::1], {T}[::1], int64, int64, int64, int64"))
def _adaptive_backward(grad, out, H, W, OH, OW):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        p = t // (H * W)
        r = t - p * H * W
        ih = r // W
        iw = r - ih * W
        acc = 0.0
        for oh in range(OH):  # windows may overlap: test every output row (OH is small)
            h0, h1 = _window(oh, H, OH)
            if h0 <= ih < h1:
                for ow in range(OW):
                    w0, w1 = _window(ow, W, OW)
                    if w0 <= iw < w1:
                        acc += grad[(p * OH + oh) * OW + ow] / ((h1 - h0) * (w1 - w0))
        out[t] = acc


def _flat(a):
    return a.reshape((a.size,))


def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, indices) -> None:
    """``out[p, oh, ow]`` = max over the window, ``indices`` its flat ``h*W + w`` position.

    Every window must hold at least one input element (the caller checks it)."""
    _, H, W = (int(s) for s in x.shape)
    OH, OW = int(out.shape[1]), int(out.shape[2])
    params = tuple(int(v) for v in (kh, kw, sh, sw, ph, pw, dh, dw))
    if out.size:
        args = (_flat(x), _flat(out), _flat(indices), H, W, OH, OW) + params
        _max_forward[blocks(out.size), THREADS](*args)


def max_pool2d_backward(grad, indices, out) -> None:
    """``out`` (P, H, W) = zeros, then ``grad`` added at ``indices`` plane by plane."""
    if out.size:
        _fill[blocks(out.size), THREADS](_flat(out), out.dtype.type(0))
    if grad.size:
        HW, OHW = int(out.shape[1] * out.shape[2]), int(grad.shape[1] * grad.shape[2])
        args = (_flat(grad), _flat(indices), _flat(out), HW, OHW)
        _max_backward[blocks(grad.size), THREADS](*args)


def _avg_args(in_hw, out_hw, kh, kw, sh, sw, ph, pw):
    return tuple(int(v) for v in (*in_hw, *out_hw, kh, kw, sh, sw, ph, pw))


def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, scale, out) -> None:
    """``out[p, oh, ow]`` = ``scale[oh, ow]`` * sum of the input elements in its window."""
    args = _avg_args(x.shape[1:], out.shape[1:], kh, kw, sh, sw, ph, pw)
    if out.size:
        _avg_forward[blocks(out.size), THREADS](_flat(x), _flat(scale), _flat(out), *args)


def avg_pool2d_backward(grad, kh, kw, sh, sw, ph, pw, scale, out) -> None:
    """``out`` (P, H, W): each ``grad[p, oh, ow] * scale[oh, ow]`` added over its window."""
    args = _avg_args(out.shape[1:], grad.shape[1:], kh, kw, sh, sw, ph, pw)
    if out.size:
        _avg_backward[blocks(out.size), THREADS](_flat(grad), _flat(scale), _flat(out), *args)


def adaptive_avg_pool2d_forward(x, out) -> None:
    """``out[p, oh, ow]`` = mean of the input over PyTorch's adaptive window."""
    hw = tuple(int(v) for v in (*x.shape[1:], *out.shape[1:]))
    if out.size:
        _adaptive_forward[blocks(out.size), THREADS](_flat(x), _flat(out), *hw)


def adaptive_avg_pool2d_backward(grad, out) -> None:
    """``out`` (P, H, W): each ``grad[p, oh, ow] / window size`` added over its window."""
    hw = tuple(int(v) for v in (*out.shape[1:], *grad.shape[1:]))
    if out.size:
        _adaptive_backward[blocks(out.size), THREADS](_flat(grad), _flat(out), *hw)
