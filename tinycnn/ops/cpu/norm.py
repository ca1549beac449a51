"""CPU kernels of batch normalisation and local response normalisation.

Arrays are C-contiguous ``(N, C, S)`` views (``S`` = the spatial size, 1 for a dense layer).

Batch norm: one thread owns one channel, so the statistics are a plain (deterministic) sum per
thread and no reduction across threads is needed.  A channel of a (16, 256, 56, 56) tensor is
200 KB, so after the first pass brings it into L2 the other passes (variance, normalise) re-read
it from cache: three passes cost about one trip to memory.  Sums are accumulated in float64, so
float32 statistics are accurate without Welford's extra divisions.

Every public kernel picks a parallel or a serial driver by size: a parallel launch on Numba's
``workqueue`` layer costs ~20 us (median; 100 us tails), more than the whole job on small tensors
such as LeNet's.
"""

from __future__ import annotations

import math

import numpy as np

from ._numba import njit, prange

# Below this many elements a kernel runs on the calling thread (see the module docstring).
PARALLEL_MIN = 1 << 16


# --------------------------------------------------------------------------- batch norm, train
@njit
def _bn_train_channel(x, c, weight, bias, eps, out, mean, var, invstd):
    n_batch, _, s = x.shape
    count = n_batch * s
    total = 0.0
    for n in range(n_batch):
        row = x[n, c]
        for i in range(s):
            total += row[i]
    mu = total / count
    sq = 0.0
    for n in range(n_batch):
        row = x[n, c]
        for i in range(s):
            d = row[i] - mu
            sq += d * d
    v = sq / count
    mean[c] = mu
    var[c] = v
    invstd[c] = 1.0 / math.sqrt(v + eps)
    # scale and shift in the array dtype so the output loop vectorises in float32
    scale = weight[c] * invstd[c]
    shift = bias[c] - mean[c] * scale
    for n in range(n_batch):
        row = x[n, c]
        orow = out[n, c]
        for i in range(s):
            orow[i] = row[i] * scale + shift


@njit(parallel=True)
def _bn_train_par(x, weight, bias, eps, out, mean, var, invstd):
    for c in prange(x.shape[1]):
        _bn_train_channel(x, c, weight, bias, eps, out, mean, var, invstd)


@njit
def _bn_train_ser(x, weight, bias, eps, out, mean, var, invstd):
    for c in range(x.shape[1]):
        _bn_train_channel(x, c, weight, bias, eps, out, mean, var, invstd)


def batch_norm_forward_train(x, weight, bias, eps, out, mean, var, invstd):
    """Normalise ``x`` (N, C, S) with its per-channel batch statistics.

    Writes ``out`` (N, C, S) and, per channel, ``mean``, the biased ``var`` and
    ``invstd = 1/sqrt(var + eps)`` (all (C,), the dtype of ``x``).
    """
    if x.shape[2] == 1 and x.size >= PARALLEL_MIN:
        x2, out2 = x.reshape(x.shape[:2]), out.reshape(x.shape[:2])
        _bn_dense_train(x2, weight, bias, eps, out2, mean, var, invstd)
        return
    fn = _bn_train_par if x.size >= PARALLEL_MIN else _bn_train_ser
    fn(x, weight, bias, eps, out, mean, var, invstd)


@njit
def batch_norm_update_running(running_mean, running_var, mean, var, momentum, count):
    """In place: ``running = (1 - momentum) * running + momentum * batch``, with the unbiased
    variance ``var * count / (count - 1)`` as PyTorch does."""
    unbias = count / (count - 1.0)
    for c in range(mean.shape[0]):
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var[c] * unbias


# --------------------------------------------------------------------------- batch norm, eval
@njit
def _bn_eval_rows(x, mean, invstd, weight, bias, out, lo, hi):
    n_chan = x.shape[1]
    for r in range(lo, hi):
        n = r // n_chan
        c = r - n * n_chan
        scale = weight[c] * invstd[c]
        shift = bias[c] - mean[c] * scale
        row = x[n, c]
        orow = out[n, c]
        for i in range(row.shape[0]):
            orow[i] = row[i] * scale + shift


@njit
def _bn_invstd(running_var, eps, invstd):
    for c in range(running_var.shape[0]):
        invstd[c] = 1.0 / math.sqrt(running_var[c] + eps)


@njit(parallel=True)
def _bn_eval_par(x, running_mean, running_var, weight, bias, eps, out, invstd):
    _bn_invstd(running_var, eps, invstd)
    rows = x.shape[0] * x.shape[1]
    for r in prange(rows):
        _bn_eval_rows(x, running_mean, invstd, weight, bias, out, r, r + 1)


@njit
def _bn_eval_ser(x, running_mean, running_var, weight, bias, eps, out, invstd):
    _bn_invstd(running_var, eps, invstd)
    _bn_eval_rows(x, running_mean, invstd, weight, bias, out, 0, x.shape[0] * x.shape[1])


def batch_norm_forward_eval(x, running_mean, running_var, weight, bias, eps, out, invstd):
    """Normalise ``x`` (N, C, S) with the running statistics; writes ``out`` and ``invstd``."""
    fn = _bn_eval_par if x.size >= PARALLEL_MIN else _bn_eval_ser
    fn(x, running_mean, running_var, weight, bias, eps, out, invstd)


# --------------------------------------------------------------------------- batch norm, backward
@njit
def _bn_backward_channel(x, g, c, mean, invstd, weight, training, need_dx, gx, gw, gb, coef):
    n_batch, _, s = x.shape
    mu = mean[c]
    sum_g = 0.0
    sum_gx = 0.0  # sum of g * (x - mean)
    for n in range(n_batch):
        row = x[n, c]
        grow = g[n, c]
        for i in range(s):
            sum_g += grow[i]
            sum_gx += grow[i] * (row[i] - mu)
    inv = invstd[c]
    gb[c] = sum_g
    gw[c] = sum_gx * inv
    if not need_dx:
        return
    # dx = a*g + c1*x + c0: the chain rule through the batch mean and variance, folded into
    # one multiply-add per element; coefficients stored in the array dtype (vectorised loop)
    a = weight[c] * inv
    coef[0] = a
    if training:
        count = n_batch * s
        b = inv * inv * sum_gx / count
        coef[1] = -a * b
        coef[2] = a * (b * mu - sum_g / count)
    else:
        coef[1] = 0.0
        coef[2] = 0.0
    ca = coef[0]
    c1 = coef[1]
    c0 = coef[2]
    for n in range(n_batch):
        row = x[n, c]
        grow = g[n, c]
        orow = gx[n, c]
        for i in range(s):
            orow[i] = ca * grow[i] + c1 * row[i] + c0


@njit(parallel=True)
def _bn_backward_par(x, g, mean, invstd, weight, training, need_dx, gx, gw, gb):
    for c in prange(x.shape[1]):
        coef = np.empty(3, gx.dtype)
        _bn_backward_channel(x, g, c, mean, invstd, weight, training, need_dx, gx, gw, gb, coef)


@njit
def _bn_backward_ser(x, g, mean, invstd, weight, training, need_dx, gx, gw, gb):
    coef = np.empty(3, gx.dtype)
    for c in range(x.shape[1]):
        _bn_backward_channel(x, g, c, mean, invstd, weight, training, need_dx, gx, gw, gb, coef)


def batch_norm_backward(x, g, mean, invstd, weight, training, need_dx, gx, gw, gb):
    """Gradients of batch norm: ``gw`` and ``gb`` (C,) always, ``gx`` (N, C, S) if ``need_dx``.

    ``training`` selects the batch-statistics gradient (through the mean and the variance);
    otherwise the statistics are constants (eval mode).  ``gx`` may be a dummy array of the same
    rank and dtype when ``need_dx`` is False.
    """
    if x.shape[2] == 1 and x.size >= PARALLEL_MIN:
        shape = x.shape[:2]
        gx2 = gx.reshape(shape) if need_dx else gx.reshape(gx.shape[:2])
        _bn_dense_backward(
            x.reshape(shape), g.reshape(shape), mean, invstd, weight, training, need_dx, gx2, gw, gb
        )
        return
    fn = _bn_backward_par if x.size >= PARALLEL_MIN else _bn_backward_ser
    fn(x, g, mean, invstd, weight, training, need_dx, gx, gw, gb)


# --------------------------------------------------------------------------- batch norm, dense
# (N, C) input (after a Dense layer): a channel is a strided column, so instead a thread owns a
# block of columns and walks the rows, vectorising across the block's channels.
_DENSE_BLOCK = 256


@njit
def _bn_dense_train_block(x, lo, hi, weight, bias, eps, out, mean, var, invstd):
    n_batch = x.shape[0]
    mu = np.zeros(hi - lo)
    sq = np.zeros(hi - lo)
    for n in range(n_batch):
        row = x[n]
        for c in range(lo, hi):
            mu[c - lo] += row[c]
    mu /= n_batch
    for n in range(n_batch):
        row = x[n]
        for c in range(lo, hi):
            d = row[c] - mu[c - lo]
            sq[c - lo] += d * d
    scale = np.empty(hi - lo, x.dtype)
    shift = np.empty(hi - lo, x.dtype)
    for c in range(lo, hi):
        v = sq[c - lo] / n_batch
        mean[c] = mu[c - lo]
        var[c] = v
        invstd[c] = 1.0 / math.sqrt(v + eps)
        scale[c - lo] = weight[c] * invstd[c]
        shift[c - lo] = bias[c] - mean[c] * scale[c - lo]
    for n in range(n_batch):
        row = x[n]
        orow = out[n]
        for c in range(lo, hi):
            orow[c] = row[c] * scale[c - lo] + shift[c - lo]


@njit(parallel=True)
def _bn_dense_train(x, weight, bias, eps, out, mean, var, invstd):
    n_chan = x.shape[1]
    for b in prange((n_chan + _DENSE_BLOCK - 1) // _DENSE_BLOCK):
        lo, hi = b * _DENSE_BLOCK, min(n_chan, (b + 1) * _DENSE_BLOCK)
        _bn_dense_train_block(x, lo, hi, weight, bias, eps, out, mean, var, invstd)


@njit
def _bn_dense_backward_block(x, g, lo, hi, mean, invstd, weight, training, need_dx, gx, gw, gb):
    n_batch = x.shape[0]
    sum_g = np.zeros(hi - lo)
    sum_gx = np.zeros(hi - lo)
    for n in range(n_batch):
        row = x[n]
        grow = g[n]
        for c in range(lo, hi):
            sum_g[c - lo] += grow[c]
            sum_gx[c - lo] += grow[c] * (row[c] - mean[c])
    ca = np.empty(hi - lo, x.dtype)
    c1 = np.zeros(hi - lo, x.dtype)
    c0 = np.zeros(hi - lo, x.dtype)
    for c in range(lo, hi):
        inv = invstd[c]
        gb[c] = sum_g[c - lo]
        gw[c] = sum_gx[c - lo] * inv
        a = weight[c] * inv
        ca[c - lo] = a
        if training:  # the same folded chain rule as _bn_backward_channel
            b = inv * inv * sum_gx[c - lo] / n_batch
            c1[c - lo] = -a * b
            c0[c - lo] = a * (b * mean[c] - sum_g[c - lo] / n_batch)
    if not need_dx:
        return
    for n in range(n_batch):
        row = x[n]
        grow = g[n]
        orow = gx[n]
        for c in range(lo, hi):
            orow[c] = ca[c - lo] * grow[c] + c1[c - lo] * row[c] + c0[c - lo]


@njit(parallel=True)
def _bn_dense_backward(x, g, mean, invstd, weight, training, need_dx, gx, gw, gb):
    n_chan = x.shape[1]
    for b in prange((n_chan + _DENSE_BLOCK - 1) // _DENSE_BLOCK):
        lo, hi = b * _DENSE_BLOCK, min(n_chan, (b + 1) * _DENSE_BLOCK)
        _bn_dense_backward_block(x, g, lo, hi, mean, invstd, weight, training, need_dx, gx, gw, gb)


# --------------------------------------------------------------------------- local response norm
@njit
def _lrn_forward_sample(x, n, size, alpha, beta, k, out, scale):
    n_chan, s = x.shape[1], x.shape[2]
    before, after = size // 2, (size - 1) // 2
    coef = alpha / size
    for c in range(n_chan):
        sc = scale[n, c]
        sc[:] = 0.0
        for j in range(max(0, c - before), min(n_chan, c + after + 1)):
            row = x[n, j]
            for i in range(s):
                sc[i] += row[i] * row[i]
        row = x[n, c]
        orow = out[n, c]
        for i in range(s):
            v = k + coef * sc[i]
            sc[i] = v
            orow[i] = row[i] * v ** (-beta)


@njit(parallel=True)
def _lrn_forward_par(x, size, alpha, beta, k, out, scale):
    for n in prange(x.shape[0]):
        _lrn_forward_sample(x, n, size, alpha, beta, k, out, scale)


@njit
def _lrn_forward_ser(x, size, alpha, beta, k, out, scale):
    for n in range(x.shape[0]):
        _lrn_forward_sample(x, n, size, alpha, beta, k, out, scale)


def local_response_norm_forward(x, size, alpha, beta, k, out, scale):
    """PyTorch's LRN on ``x`` (N, C, S): ``out = x / scale**beta`` with
    ``scale = k + alpha/size * sum(x[c']**2)`` over channels ``c - size//2 .. c + (size-1)//2``
    (zero outside).  ``scale`` (N, C, S) is written for the backward."""
    fn = _lrn_forward_par if x.size >= PARALLEL_MIN else _lrn_forward_ser
    fn(x, size, alpha, beta, k, out, scale)


@njit
def _lrn_backward_sample(x, g, scale, n, size, alpha, beta, out):
    n_chan, s = x.shape[1], x.shape[2]
    before, after = size // 2, (size - 1) // 2
    t = np.empty((n_chan, s), x.dtype)  # g * x * scale**(-beta-1): this thread's scratch
    u = np.empty((n_chan, s), x.dtype)  # scale**(-beta)
    for c in range(n_chan):
        for i in range(s):
            v = scale[n, c, i]
            p = v ** (-beta - 1.0)
            t[c, i] = g[n, c, i] * x[n, c, i] * p
            u[c, i] = v * p
    coef = 2.0 * alpha * beta / size
    for c in range(n_chan):
        orow = out[n, c]
        orow[:] = 0.0
        # x[c] enters the window of every channel c' with c' - before <= c <= c' + after
        for j in range(max(0, c - after), min(n_chan, c + before + 1)):
            for i in range(s):
                orow[i] += t[j, i]
        for i in range(s):
            orow[i] = g[n, c, i] * u[c, i] - coef * x[n, c, i] * orow[i]


@njit(parallel=True)
def _lrn_backward_par(x, g, scale, size, alpha, beta, out):
    for n in prange(x.shape[0]):
        _lrn_backward_sample(x, g, scale, n, size, alpha, beta, out)


@njit
def _lrn_backward_ser(x, g, scale, size, alpha, beta, out):
    for n in range(x.shape[0]):
        _lrn_backward_sample(x, g, scale, n, size, alpha, beta, out)


def local_response_norm_backward(x, g, scale, size, alpha, beta, out):
    """Gradient of LRN w.r.t. ``x`` (N, C, S) into ``out``, from the saved ``scale``."""
    fn = _lrn_backward_par if x.size >= PARALLEL_MIN else _lrn_backward_ser
    fn(x, g, scale, size, alpha, beta, out)
