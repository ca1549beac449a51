"""CUDA kernels of the losses: the functions of ``cpu/loss.py``, by name and semantics.

Per-sample (or per-element) losses go to ``loss``; the op reduces them on the device.  The
cross-entropy is fused: one thread per row computes the row's log-softmax (kept for the
backward) and its loss; the backward is ``g * (softmax * Q - q)`` (``softmax - onehot`` for a
plain target).  Out-of-range targets are skipped and counted into ``bad[0]`` with an atomic add,
so no kernel indexes out of range and the op raises a clear error from the count.
``g`` holds one upstream value per sample, or a single one (``gstride`` 1 or 0).
"""

from __future__ import annotations

import math

from numba import cuda

from ._cuda import blocks, each, kernel
from .config import THREADS

# PyTorch's EPSILON (the float 1e-12f) keeps the BCE gradient finite at p = 0 or 1
_BCE_EPSILON = 9.999999960041972e-13


def _flat(a):
    return a.reshape((a.size,))


def _go(k, n: int, *args) -> None:
    if n:
        k[blocks(n), THREADS](*args)


@cuda.jit(device=True)
def _log_softmax_row(z, logp, base, n_cls):
    m = z[base]
    for c in range(1, n_cls):
        if z[base + c] > m:
            m = z[base + c]
    total = 0.0
    for c in range(n_cls):
        total += math.exp(z[base + c] - m)
    log_total = math.log(total)
    for c in range(n_cls):
        logp[base + c] = (z[base + c] - m) - log_total


_CE_FWD = "{T}[::1], int64[::1], {T}[::1], int64, {T}, {T}[::1], {T}[::1], {T}[::1], int64[::1], "


@kernel(*each(_CE_FWD + "int64"))
def _ce_forward(z, target, weight, ignore_index, smoothing, loss, wn, logp, bad, n_cls):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for n in range(start, target.size, step):
        base = n * n_cls
        _log_softmax_row(z, logp, base, n_cls)
        t = target[n]
        if t == ignore_index or t < 0 or t >= n_cls:
            loss[n] = 0
            wn[n] = 0
            if t != ignore_index:
                cuda.atomic.add(bad, 0, 1)
            continue
        wt = weight[t]
        value = -(1 - smoothing) * wt * logp[base + t]
        if smoothing > 0:
            smooth = 0.0
            for c in range(n_cls):
                smooth -= weight[c] * logp[base + c]
            value += smoothing / n_cls * smooth
        loss[n] = value
        wn[n] = wt


@kernel(*each("{T}[::1], int64[::1], {T}[::1], int64, {T}, {T}[::1], int64, {T}[::1], int64"))
def _ce_backward(logp, target, weight, ignore_index, smoothing, g, gstride, out, n_cls):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for n in range(start, target.size, step):
        base = n * n_cls
        t = target[n]
        if t == ignore_index or t < 0 or t >= n_cls:
            for c in range(n_cls):
                out[base + c] = 0
            continue
        wsum = 0.0
        if smoothing > 0:
            for c in range(n_cls):
                wsum += weight[c]
        gn = g[n * gstride]
        hard = (1 - smoothing) * weight[t]  # the one-hot part of q
        big_q = hard + smoothing / n_cls * wsum
        soft = gn * smoothing / n_cls
        for c in range(n_cls):
            out[base + c] = gn * big_q * math.exp(logp[base + c]) - soft * weight[c]
        out[base + t] -= gn * hard


@kernel(*each("{T}[::1], {T}[::1], {T}[::1], {T}, {T}[::1], {T}[::1], int64"))
def _ce_prob_forward(z, target, weight, smoothing, loss, logp, n_cls):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for n in range(start, loss.size, step):
        base = n * n_cls
        _log_softmax_row(z, logp, base, n_cls)
        value = 0.0
        for c in range(n_cls):
            q = weight[c] * ((1 - smoothing) * target[base + c] + smoothing / n_cls)
            value -= q * logp[base + c]
        loss[n] = value


_CE_PROB_BWD = "{T}[::1], {T}[::1], {T}[::1], {T}, {T}[::1], int64, boolean, {T}[::1], {T}[::1], "


@kernel(*each(_CE_PROB_BWD + "int64, int64"))
def _ce_prob_backward(logp, target, weight, smoothing, g, gstride, need_t, gz, gt, n_rows, n_cls):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for n in range(start, n_rows, step):
        base = n * n_cls
        gn = g[n * gstride]
        big_q = 0.0
        for c in range(n_cls):
            big_q += weight[c] * ((1 - smoothing) * target[base + c] + smoothing / n_cls)
        for c in range(n_cls):
            q = weight[c] * ((1 - smoothing) * target[base + c] + smoothing / n_cls)
            gz[base + c] = gn * (big_q * math.exp(logp[base + c]) - q)
        if need_t:
            for c in range(n_cls):
                gt[base + c] = -gn * (1 - smoothing) * weight[c] * logp[base + c]


@kernel(*each("{T}[::1], int64[::1], {T}[::1], int64, {T}[::1], {T}[::1], int64[::1], int64"))
def _nll_forward(logp, target, weight, ignore_index, loss, wn, bad, n_cls):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for n in range(start, target.size, step):
        t = target[n]
        if t == ignore_index or t < 0 or t >= n_cls:
            if t != ignore_index:
                cuda.atomic.add(bad, 0, 1)
            loss[n] = 0
            wn[n] = 0
        else:
            loss[n] = -weight[t] * logp[n * n_cls + t]
            wn[n] = weight[t]


@kernel(*each("int64[::1], {T}[::1], int64, {T}[::1], int64, {T}[::1], int64"))
def _nll_backward(target, weight, ignore_index, g, gstride, out, n_cls):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for k in range(start, out.size, step):
        n = k // n_cls
        t = target[n]
        if t != ignore_index and t == k - n * n_cls:
            out[k] = -g[n * gstride] * weight[t]
        else:
            out[k] = 0


@kernel(*each("{T}[::1], {T}[::1], {T}[::1]"))
def _mse_forward(x, y, loss):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        d = x[i] - y[i]
        loss[i] = d * d


@kernel(*each("{T}[::1], {T}[::1], {T}[::1], int64, {T}[::1]"))
def _mse_backward(x, y, g, gstride, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        out[i] = 2 * (x[i] - y[i]) * g[i * gstride]


@kernel(*each("{T}[::1], {T}[::1], {T}[::1], int64, {T}[::1], int64[::1]"))
def _bce_forward(x, y, w, wstride, loss, bad):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        p = x[i]
        t = y[i]
        if not (0 <= p <= 1 and 0 <= t <= 1):  # NaN counts as bad, as in PyTorch
            cuda.atomic.add(bad, 0, 1)
            loss[i] = 0
            continue
        # PyTorch clamps each log at -100 so that p = 0 or 1 gives a finite loss
        log_p = max(math.log(p), -100.0)
        log_1mp = max(math.log1p(-p), -100.0)
        loss[i] = -w[i * wstride] * (t * log_p + (1 - t) * log_1mp)


_BCE_BWD = "{T}[::1], {T}[::1], {T}[::1], int64, {T}[::1], int64, boolean, boolean, {T}[::1], "


@kernel(*each(_BCE_BWD + "{T}[::1]"))
def _bce_backward(x, y, w, wstride, g, gstride, need_x, need_y, gx, gy):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        p = x[i]
        gw = g[i * gstride] * w[i * wstride]
        if need_x:
            gx[i] = gw * (p - y[i]) / max((1 - p) * p, _BCE_EPSILON)
        if need_y:
            gy[i] = -gw * math.log(p / (1 - p))


def _stride(g, n: int) -> int:
    return 1 if g.size == n and n != 1 else 0


def softmax_cross_entropy_forward(z, target, weight, ignore_index, smoothing, loss, wn, logp, bad):
    """Logits ``z`` (N, C), class indices ``target`` (N,) int64, class ``weight`` (C,); writes
    ``loss`` (N,), ``wn`` (N,), ``logp`` (N, C) and adds the out-of-range count to ``bad[0]``."""
    n_cls = int(z.shape[1])
    s = z.dtype.type(smoothing)
    args = (_flat(z), _flat(target), weight, int(ignore_index), s, loss, wn, _flat(logp), bad)
    _go(_ce_forward, target.size, *args, n_cls)


def softmax_cross_entropy_backward(logp, target, weight, ignore_index, smoothing, g, out):
    """Gradient w.r.t. the logits into ``out`` (N, C); ``g`` holds N or 1 upstream values."""
    n_cls = int(logp.shape[1])
    s = logp.dtype.type(smoothing)
    gstride = _stride(g, int(logp.shape[0]))
    args = (_flat(logp), _flat(target), weight, int(ignore_index), s, g, gstride, _flat(out))
    _go(_ce_backward, target.size, *args, n_cls)


def softmax_cross_entropy_prob_forward(z, target, weight, smoothing, loss, logp):
    """Cross-entropy with class-probability targets (N, C)."""
    s = z.dtype.type(smoothing)
    args = (_flat(z), _flat(target), weight, s, loss, _flat(logp), int(z.shape[1]))
    _go(_ce_prob_forward, loss.size, *args)


def softmax_cross_entropy_prob_backward(logp, target, weight, smoothing, g, need_t, gz, gt):
    """Gradients w.r.t. the logits (``gz``) and, if ``need_t``, the target probabilities."""
    n_rows, n_cls = int(logp.shape[0]), int(logp.shape[1])
    s = logp.dtype.type(smoothing)
    args = (_flat(logp), _flat(target), weight, s, g, _stride(g, n_rows), bool(need_t))
    _go(_ce_prob_backward, n_rows, *args, _flat(gz), _flat(gt), n_rows, n_cls)


def nll_loss_forward(logp, target, weight, ignore_index, loss, wn, bad):
    """``loss[n] = -weight[t] * logp[n, t]`` for ``t = target[n]`` (0 where ignored)."""
    args = (_flat(logp), _flat(target), weight, int(ignore_index), loss, wn, bad)
    _go(_nll_forward, target.size, *args, int(logp.shape[1]))


def nll_loss_backward(target, weight, ignore_index, g, out):
    """``out`` (N, C), zero except ``-g * weight[t]`` at each sample's target."""
    gstride = _stride(g, int(out.shape[0]))
    args = (_flat(target), weight, int(ignore_index), g, gstride, _flat(out), int(out.shape[1]))
    _go(_nll_backward, out.size, *args)


def mse_loss_forward(x, y, loss):
    """Element-wise ``(x - y)**2`` of flat arrays into ``loss``."""
    _go(_mse_forward, x.size, x, y, loss)


def mse_loss_backward(x, y, g, out):
    """``out = 2 (x - y) g`` (flat); the target's gradient is its negative."""
    _go(_mse_backward, x.size, x, y, g, _stride(g, x.size), out)


def binary_cross_entropy_forward(x, y, w, loss, bad):
    """Element-wise BCE (logs clamped at -100); counts elements outside ``[0, 1]`` into bad."""
    _go(_bce_forward, x.size, x, y, w, _stride(w, x.size), loss, bad)


def binary_cross_entropy_backward(x, y, w, g, need_x, need_y, gx, gy):
    """Gradients of BCE w.r.t. the input (``gx``) and the target (``gy``), when needed."""
    args = (x, y, w, _stride(w, x.size), g, _stride(g, x.size), bool(need_x), bool(need_y))
    _go(_bce_backward, x.size, *args, gx, gy)
