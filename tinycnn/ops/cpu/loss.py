"""CPU kernels of the losses.  Per-sample (or per-element) losses are written to ``loss``; the
reduction (mean over the weights, sum) is done by the op.

Cross-entropy is fused: one pass per row computes ``log_softmax`` (kept for the backward) and
the loss; the backward is ``g * (softmax * Q - q)`` where ``q`` is the row's weighted target
distribution and ``Q = sum(q)`` (for a plain one-hot target: ``softmax - onehot``).

Bad targets (class index outside ``[0, C)``, not ``ignore_index``) are skipped and counted into
``bad[0]``; the op raises a clear error from that count, so no kernel ever indexes out of range.

Gradient arrays ``g`` have either one entry per sample (reduction ``"none"``) or a single entry
(``"mean"``/``"sum"``, already divided by the normaliser): ``gstride`` is 1 or 0.
"""

from __future__ import annotations

import math

import numpy as np

from ._numba import njit, prange
from ._vmath import exp as _exp
from .softmax import _log_shift

# Rows x classes (or elements) below which a kernel runs on the calling thread: a parallel launch
# on Numba's workqueue layer costs ~20 us, more than LeNet's whole (100, 10) loss.
PARALLEL_MIN = 1 << 15
# PyTorch's EPSILON (the float 1e-12f) keeps the BCE gradient finite at p = 0 or 1
_BCE_EPSILON = 9.999999960041972e-13


# --------------------------------------------------------------------------- fused cross-entropy
@njit(inline="always")
def _log_softmax_row(z, logp, n):
    zr = z[n]
    lr = logp[n]
    m = -np.inf
    for c in range(zr.shape[0]):
        if zr[c] > m:
            m = zr[c]
    total = 0.0
    for c in range(zr.shape[0]):
        total += _exp(zr[c] - m)
    _log_shift(zr, m, math.log(total), lr)


@njit(inline="always")
def _ce_row(z, target, weight, ignore_index, smoothing, loss, wn, logp, n):
    """Returns 1 if the target is out of range (the row is then left at zero loss)."""
    n_cls = z.shape[1]
    _log_softmax_row(z, logp, n)
    t = target[n]
    if t == ignore_index:
        loss[n] = 0.0
        wn[n] = 0.0
        return 0
    if t < 0 or t >= n_cls:
        loss[n] = 0.0
        wn[n] = 0.0
        return 1
    wt = weight[t]
    value = -(1.0 - smoothing) * wt * logp[n, t]
    if smoothing > 0.0:
        smooth = 0.0
        for c in range(n_cls):
            smooth -= weight[c] * logp[n, c]
        value += smoothing / n_cls * smooth
    loss[n] = value
    wn[n] = wt
    return 0


@njit(parallel=True)
def _ce_forward_par(z, target, weight, ignore_index, smoothing, loss, wn, logp, bad):
    nbad = 0
    for n in prange(z.shape[0]):
        nbad += _ce_row(z, target, weight, ignore_index, smoothing, loss, wn, logp, n)
    bad[0] = nbad


@njit
def _ce_forward_ser(z, target, weight, ignore_index, smoothing, loss, wn, logp, bad):
    nbad = 0
    for n in range(z.shape[0]):
        nbad += _ce_row(z, target, weight, ignore_index, smoothing, loss, wn, logp, n)
    bad[0] = nbad


def softmax_cross_entropy_forward(z, target, weight, ignore_index, smoothing, loss, wn, logp, bad):
    """Logits ``z`` (N, C), class indices ``target`` (N,) int64, class ``weight`` (C,).

    Writes the per-sample ``loss`` (N,) (PyTorch's label-smoothed, weighted form), the weight of
    each sample's target ``wn`` (N,) (0 if ignored: the "mean" denominator is ``sum(wn)``),
    ``logp = log_softmax(z)`` (N, C) and the number of out-of-range targets into ``bad[0]``.
    """
    fn = _ce_forward_par if z.size >= PARALLEL_MIN else _ce_forward_ser
    fn(z, target, weight, ignore_index, smoothing, loss, wn, logp, bad)


@njit(inline="always")
def _ce_backward_row(logp, target, weight, ignore_index, smoothing, wsum, g, gstride, out, n):
    n_cls = logp.shape[1]
    t = target[n]
    if t == ignore_index or t < 0 or t >= n_cls:
        out[n, :] = 0.0
        return
    gn = g[n * gstride]
    hard = (1.0 - smoothing) * weight[t]  # the one-hot part of q
    big_q = hard + smoothing / n_cls * wsum
    soft = gn * smoothing / n_cls
    for c in range(n_cls):
        out[n, c] = gn * big_q * _exp(logp[n, c]) - soft * weight[c]
    out[n, t] -= gn * hard


@njit(parallel=True)
def _ce_backward_par(logp, target, weight, ignore_index, smoothing, wsum, g, gstride, out):
    for n in prange(logp.shape[0]):
        _ce_backward_row(logp, target, weight, ignore_index, smoothing, wsum, g, gstride, out, n)


@njit
def _ce_backward_ser(logp, target, weight, ignore_index, smoothing, wsum, g, gstride, out):
    for n in range(logp.shape[0]):
        _ce_backward_row(logp, target, weight, ignore_index, smoothing, wsum, g, gstride, out, n)


def softmax_cross_entropy_backward(logp, target, weight, ignore_index, smoothing, g, out):
    """Gradient w.r.t. the logits into ``out`` (N, C); ``g`` holds N or 1 upstream values."""
    wsum = float(weight.sum()) if smoothing > 0.0 else 0.0
    gstride = 1 if g.shape[0] == logp.shape[0] and logp.shape[0] != 1 else 0
    fn = _ce_backward_par if logp.size >= PARALLEL_MIN else _ce_backward_ser
    fn(logp, target, weight, ignore_index, smoothing, wsum, g, gstride, out)


@njit(inline="always")
def _ce_prob_row(z, target, weight, smoothing, loss, logp, n):
    n_cls = z.shape[1]
    _log_softmax_row(z, logp, n)
    value = 0.0
    for c in range(n_cls):
        q = weight[c] * ((1.0 - smoothing) * target[n, c] + smoothing / n_cls)
        value -= q * logp[n, c]
    loss[n] = value


@njit(parallel=True)
def _ce_prob_forward_par(z, target, weight, smoothing, loss, logp):
    for n in prange(z.shape[0]):
        _ce_prob_row(z, target, weight, smoothing, loss, logp, n)


@njit
def _ce_prob_forward_ser(z, target, weight, smoothing, loss, logp):
    for n in range(z.shape[0]):
        _ce_prob_row(z, target, weight, smoothing, loss, logp, n)


def softmax_cross_entropy_prob_forward(z, target, weight, smoothing, loss, logp):
    """Cross-entropy with class-probability targets (N, C): ``loss[n] = -sum_c q_c logp_c``,
    ``q = weight * ((1 - smoothing) * target + smoothing / C)``."""
    fn = _ce_prob_forward_par if z.size >= PARALLEL_MIN else _ce_prob_forward_ser
    fn(z, target, weight, smoothing, loss, logp)


@njit(inline="always")
def _ce_prob_backward_row(logp, target, weight, smoothing, g, gstride, need_t, gz, gt, n):
    n_cls = logp.shape[1]
    gn = g[n * gstride]
    big_q = 0.0
    for c in range(n_cls):
        big_q += weight[c] * ((1.0 - smoothing) * target[n, c] + smoothing / n_cls)
    for c in range(n_cls):
        q = weight[c] * ((1.0 - smoothing) * target[n, c] + smoothing / n_cls)
        gz[n, c] = gn * (big_q * _exp(logp[n, c]) - q)
    if need_t:
        for c in range(n_cls):
            gt[n, c] = -gn * (1.0 - smoothing) * weight[c] * logp[n, c]


@njit(parallel=True)
def _ce_prob_backward_par(logp, target, weight, smoothing, g, gstride, need_t, gz, gt):
    for n in prange(logp.shape[0]):
        _ce_prob_backward_row(logp, target, weight, smoothing, g, gstride, need_t, gz, gt, n)


@njit
def _ce_prob_backward_ser(logp, target, weight, smoothing, g, gstride, need_t, gz, gt):
    for n in range(logp.shape[0]):
        _ce_prob_backward_row(logp, target, weight, smoothing, g, gstride, need_t, gz, gt, n)


def softmax_cross_entropy_prob_backward(logp, target, weight, smoothing, g, need_t, gz, gt):
    """Gradients w.r.t. the logits (``gz``) and, if ``need_t``, the target probabilities
    (``gt``; a dummy (N, C) array otherwise)."""
    gstride = 1 if g.shape[0] == logp.shape[0] and logp.shape[0] != 1 else 0
    fn = _ce_prob_backward_par if logp.size >= PARALLEL_MIN else _ce_prob_backward_ser
    fn(logp, target, weight, smoothing, g, gstride, need_t, gz, gt)


# --------------------------------------------------------------------------- nll
@njit
def nll_loss_forward(logp, target, weight, ignore_index, loss, wn, bad):
    """``loss[n] = -weight[t] * logp[n, t]`` for ``t = target[n]`` (0 where ignored)."""
    nbad = 0
    for n in range(logp.shape[0]):
        t = target[n]
        if t == ignore_index or t < 0 or t >= logp.shape[1]:
            if t != ignore_index:
                nbad += 1
            loss[n] = 0.0
            wn[n] = 0.0
        else:
            loss[n] = -weight[t] * logp[n, t]
            wn[n] = weight[t]
    bad[0] = nbad


@njit
def nll_loss_backward(target, weight, ignore_index, g, out):
    """``out`` (N, C), zero except ``-g * weight[t]`` at each sample's target."""
    gstride = 1 if g.shape[0] == out.shape[0] and out.shape[0] != 1 else 0
    out[:] = 0.0
    for n in range(out.shape[0]):
        t = target[n]
        if t != ignore_index and 0 <= t < out.shape[1]:
            out[n, t] = -g[n * gstride] * weight[t]


# --------------------------------------------------------------------------- mse
@njit
def _mse_range(x, y, loss, lo, hi):
    for i in range(lo, hi):
        d = x[i] - y[i]
        loss[i] = d * d


@njit(parallel=True)
def _mse_forward_par(x, y, loss):
    step = 4096
    for b in prange((x.size + step - 1) // step):
        lo = b * step
        hi = min(x.size, lo + step)
        _mse_range(x[lo:hi], y[lo:hi], loss[lo:hi], 0, hi - lo)  # slices: see activation.py


def mse_loss_forward(x, y, loss):
    """Element-wise ``(x - y)**2`` of flat arrays into ``loss``."""
    if x.size >= PARALLEL_MIN:
        _mse_forward_par(x, y, loss)
    else:
        _mse_range(x, y, loss, 0, x.size)


@njit
def _mse_backward_range(x, y, g, gstride, out, lo, hi):
    for i in range(lo, hi):
        out[i] = 2.0 * (x[i] - y[i]) * g[i * gstride]


@njit(parallel=True)
def _mse_backward_par(x, y, g, gstride, out):
    step = 4096
    for b in prange((x.size + step - 1) // step):
        lo = b * step
        hi = min(x.size, lo + step)
        gb = g[lo:hi] if gstride else g  # one upstream value for all, or one per element
        _mse_backward_range(x[lo:hi], y[lo:hi], gb, gstride, out[lo:hi], 0, hi - lo)


def mse_loss_backward(x, y, g, out):
    """``out = 2 (x - y) g`` (flat); the target's gradient is its negative."""
    gstride = 1 if g.size == x.size and x.size != 1 else 0
    if x.size >= PARALLEL_MIN:
        _mse_backward_par(x, y, g, gstride, out)
    else:
        _mse_backward_range(x, y, g, gstride, out, 0, x.size)


# --------------------------------------------------------------------------- binary cross-entropy
@njit
def _bce_range(x, y, w, wstride, loss, lo, hi):
    nbad = 0
    for i in range(lo, hi):
        p = x[i]
        t = y[i]
        if not (0.0 <= p <= 1.0 and 0.0 <= t <= 1.0):  # NaN counts as bad, as in PyTorch
            nbad += 1
            loss[i] = 0.0
            continue
        # PyTorch clamps each log at -100 so that p = 0 or 1 gives a finite loss
        log_p = max(math.log(p), -100.0)
        log_1mp = max(math.log1p(-p), -100.0)
        loss[i] = -w[i * wstride] * (t * log_p + (1.0 - t) * log_1mp)
    return nbad


@njit(parallel=True)
def _bce_forward_par(x, y, w, wstride, loss, bad):
    step = 4096
    nbad = 0
    for b in prange((x.size + step - 1) // step):
        nbad += _bce_range(x, y, w, wstride, loss, b * step, min(x.size, (b + 1) * step))
    bad[0] = nbad


@njit
def _bce_forward_ser(x, y, w, wstride, loss, bad):
    bad[0] = _bce_range(x, y, w, wstride, loss, 0, x.size)


def binary_cross_entropy_forward(x, y, w, loss, bad):
    """Element-wise ``-w (y log x + (1-y) log(1-x))`` (logs clamped at -100) of flat arrays;
    ``w`` has one entry per element or a single one.  Counts elements of ``x`` or ``y``
    outside ``[0, 1]`` (or NaN) into ``bad[0]``."""
    wstride = 1 if w.size == x.size and x.size != 1 else 0
    fn = _bce_forward_par if x.size >= PARALLEL_MIN else _bce_forward_ser
    fn(x, y, w, wstride, loss, bad)


@njit
def _bce_backward_range(x, y, w, wstride, g, gstride, need_x, need_y, gx, gy, lo, hi):
    for i in range(lo, hi):
        p = x[i]
        gw = g[i * gstride] * w[i * wstride]
        if need_x:
            gx[i] = gw * (p - y[i]) / max((1.0 - p) * p, _BCE_EPSILON)
        if need_y:
            gy[i] = -gw * math.log(p / (1.0 - p))


@njit(parallel=True)
def _bce_backward_par(x, y, w, wstride, g, gstride, need_x, need_y, gx, gy):
    step = 4096
    for b in prange((x.size + step - 1) // step):
        lo, hi = b * step, min(x.size, (b + 1) * step)
        _bce_backward_range(x, y, w, wstride, g, gstride, need_x, need_y, gx, gy, lo, hi)


@njit
def _bce_backward_ser(x, y, w, wstride, g, gstride, need_x, need_y, gx, gy):
    _bce_backward_range(x, y, w, wstride, g, gstride, need_x, need_y, gx, gy, 0, x.size)


def binary_cross_entropy_backward(x, y, w, g, need_x, need_y, gx, gy):
    """Gradients of BCE w.r.t. the input (``gx``) and the target (``gy``, ``-logit(x) g w``),
    each only when needed (otherwise a dummy array of the same rank)."""
    wstride = 1 if w.size == x.size and x.size != 1 else 0
    gstride = 1 if g.size == x.size and x.size != 1 else 0
    fn = _bce_backward_par if x.size >= PARALLEL_MIN else _bce_backward_ser
    fn(x, y, w, wstride, g, gstride, need_x, need_y, gx, gy)
