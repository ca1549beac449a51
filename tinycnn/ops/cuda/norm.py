"""CUDA kernels of batch normalisation and local response normalisation: the functions of
``cpu/norm.py``, by name.  Arrays are C-contiguous ``(N, C, S)``.

Batch norm, training: one block per channel makes two passes over the channel's N*S values
with a shared-memory tree reduction in float64 (the mean, then the sum of squared deviations
from it: the two-pass variance, no cancellation), then a third pass writes the output.  The
backward reduces ``sum(g)`` and ``sum(g * (x - mean))`` the same way and writes ``dx`` as one
multiply-add per element.  Eval mode and LRN are one thread per element.
"""

from __future__ import annotations

import math

from numba import cuda, float64

from ._cuda import blocks, each, kernel
from .config import MAX_BLOCKS, REDUCE_THREADS, THREADS


@cuda.jit(device=True)
def _block_sum(buf, tid, value):
    """Sum of ``value`` over the block (every thread gets it); ``buf`` is float64 shared."""
    buf[tid] = value
    cuda.syncthreads()
    h = REDUCE_THREADS // 2
    while h > 0:
        if tid < h:
            buf[tid] += buf[tid + h]
        cuda.syncthreads()
        h //= 2
    total = buf[0]
    cuda.syncthreads()  # buf is reused by the next reduction
    return total


_TRAIN = "{T}[::1], {T}[::1], {T}[::1], float64, {T}[::1], {T}[::1], {T}[::1], {T}[::1], "


@kernel(*each(_TRAIN + "int64, int64, int64"))
def _train(x, weight, bias, eps, out, mean, var, invstd, n_batch, n_chan, s):
    """Grid: one block per channel (``cuda.gridDim.x`` may be fewer: blocks stride)."""
    buf = cuda.shared.array(REDUCE_THREADS, float64)
    tid = cuda.threadIdx.x
    count = n_batch * s
    for c in range(cuda.blockIdx.x, n_chan, cuda.gridDim.x):
        total = 0.0
        for e in range(tid, count, REDUCE_THREADS):
            n = e // s
            total += x[(n * n_chan + c) * s + (e - n * s)]
        mu = _block_sum(buf, tid, total) / count
        sq = 0.0
        for e in range(tid, count, REDUCE_THREADS):
            n = e // s
            d = x[(n * n_chan + c) * s + (e - n * s)] - mu
            sq += d * d
        v = _block_sum(buf, tid, sq) / count
        inv = 1.0 / math.sqrt(v + eps)
        if tid == 0:
            mean[c] = mu
            var[c] = v
            invstd[c] = inv
        scale = weight[c] * inv
        shift = bias[c] - mu * scale
        for e in range(tid, count, REDUCE_THREADS):
            n = e // s
            k = (n * n_chan + c) * s + (e - n * s)
            out[k] = x[k] * scale + shift


@kernel(*each("{T}[::1], {T}[::1], {T}[::1], {T}[::1], {T}, float64"))
def _update_running(running_mean, running_var, mean, var, momentum, unbias):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for c in range(start, mean.size, step):
        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c] = (1 - momentum) * running_var[c] + momentum * var[c] * unbias


_EVAL = "{T}[::1], {T}[::1], {T}[::1], {T}[::1], {T}[::1], float64, {T}[::1], {T}[::1], "


@kernel(*each(_EVAL + "int64, int64"))
def _eval(x, running_mean, running_var, weight, bias, eps, out, invstd, n_chan, s):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for k in range(start, x.size, step):
        c = (k // s) % n_chan
        inv = 1.0 / math.sqrt(running_var[c] + eps)
        if k < n_chan:
            invstd[k] = 1.0 / math.sqrt(running_var[k] + eps)
        scale = weight[c] * inv
        out[k] = x[k] * scale + (bias[c] - running_mean[c] * scale)


_BWD = "{T}[::1], {T}[::1], {T}[::1], {T}[::1], {T}[::1], boolean, boolean, {T}[::1], {T}[::1], "


@kernel(*each(_BWD + "{T}[::1], int64, int64, int64"))
def _backward(x, g, mean, invstd, weight, training, need_dx, gx, gw, gb, n_batch, n_chan, s):
    buf = cuda.shared.array(REDUCE_THREADS, float64)
    tid = cuda.threadIdx.x
    count = n_batch * s
    for c in range(cuda.blockIdx.x, n_chan, cuda.gridDim.x):
        mu = mean[c]
        sum_g = 0.0
        sum_gx = 0.0  # sum of g * (x - mean)
        for e in range(tid, count, REDUCE_THREADS):
            n = e // s
            k = (n * n_chan + c) * s + (e - n * s)
            sum_g += g[k]
            sum_gx += g[k] * (x[k] - mu)
        sum_g = _block_sum(buf, tid, sum_g)
        sum_gx = _block_sum(buf, tid, sum_gx)
        inv = invstd[c]
        if tid == 0:
            gb[c] = sum_g
            gw[c] = sum_gx * inv
        if need_dx:
            # dx = a*g + c1*x + c0: the chain rule through the batch mean and variance
            a = weight[c] * inv
            c1 = 0.0
            c0 = 0.0
            if training:
                b = inv * inv * sum_gx / count
                c1 = -a * b
                c0 = a * (b * mu - sum_g / count)
            for e in range(tid, count, REDUCE_THREADS):
                n = e // s
                k = (n * n_chan + c) * s + (e - n * s)
                gx[k] = a * g[k] + c1 * x[k] + c0


@kernel(*each("{T}[::1], int64, {T}, {T}, {T}, {T}[::1], {T}[::1], int64, int64"))
def _lrn_forward(x, size, alpha, beta, k, out, scale, n_chan, s):
    start, step = cuda.grid(1), cuda.gridsize(1)
    before, after = size // 2, (size - 1) // 2
    for t in range(start, x.size, step):
        c = (t // s) % n_chan
        base = t - c * s  # element (n, 0, i)
        sq = 0.0
        for j in range(max(0, c - before), min(n_chan, c + after + 1)):
            v = x[base + j * s]
            sq += v * v
        sc = k + alpha / size * sq
        scale[t] = sc
        out[t] = x[t] * sc ** (-beta)


@kernel(*each("{T}[::1], {T}[::1], {T}[::1], int64, {T}, {T}, {T}[::1], int64, int64"))
def _lrn_backward(x, g, scale, size, alpha, beta, out, n_chan, s):
    start, step = cuda.grid(1), cuda.gridsize(1)
    before, after = size // 2, (size - 1) // 2
    coef = 2 * alpha * beta / size
    for t in range(start, x.size, step):
        c = (t // s) % n_chan
        base = t - c * s
        acc = 0.0
        # x[c] enters the window of every channel c' with c' - before <= c <= c' + after
        for j in range(max(0, c - after), min(n_chan, c + before + 1)):
            q = base + j * s
            acc += g[q] * x[q] * scale[q] ** (-beta - 1)
        out[t] = g[t] * scale[t] ** (-beta) - coef * x[t] * acc


def _flat(a):
    return a.reshape((a.size,))


def _channel_grid(n_chan: int) -> int:
    return max(1, min(n_chan, MAX_BLOCKS))


def batch_norm_forward_train(x, weight, bias, eps, out, mean, var, invstd) -> None:
    """Normalise ``x`` (N, C, S) with its batch statistics; writes out, mean, var, invstd."""
    n, c, s = (int(d) for d in x.shape)
    if c:
        args = (_flat(x), weight, bias, float(eps), _flat(out), mean, var, invstd, n, c, s)
        _train[_channel_grid(c), REDUCE_THREADS](*args)


def batch_norm_update_running(running_mean, running_var, mean, var, momentum, count) -> None:
    """In place: ``running = (1 - momentum) * running + momentum * batch`` (unbiased var)."""
    unbias = count / (count - 1.0)
    m = running_mean.dtype.type(momentum)
    if mean.size:
        _update_running[blocks(mean.size), THREADS](running_mean, running_var, mean, var, m, unbias)


def batch_norm_forward_eval(x, running_mean, running_var, weight, bias, eps, out, invstd) -> None:
    """Normalise ``x`` (N, C, S) with the running statistics; writes ``out`` and ``invstd``."""
    _, c, s = (int(d) for d in x.shape)
    if x.size:
        args = (_flat(x), running_mean, running_var, weight, bias, float(eps), _flat(out), invstd)
        _eval[blocks(x.size), THREADS](*args, c, s)


def batch_norm_backward(x, g, mean, invstd, weight, training, need_dx, gx, gw, gb) -> None:
    """Gradients of batch norm: ``gw`` and ``gb`` (C,) always, ``gx`` (N, C, S) if ``need_dx``."""
    n, c, s = (int(d) for d in x.shape)
    if c:
        args = (_flat(x), _flat(g), mean, invstd, weight, bool(training), bool(need_dx), _flat(gx))
        _backward[_channel_grid(c), REDUCE_THREADS](*args, gw, gb, n, c, s)


def local_response_norm_forward(x, size, alpha, beta, k, out, scale) -> None:
    """PyTorch's LRN on ``x`` (N, C, S); ``scale`` (N, C, S) is written for the backward."""
    _, c, s = (int(d) for d in x.shape)
    t = x.dtype.type
    if x.size:
        args = (_flat(x), int(size), t(alpha), t(beta), t(k), _flat(out), _flat(scale), c, s)
        _lrn_forward[blocks(x.size), THREADS](*args)


def local_response_norm_backward(x, g, scale, size, alpha, beta, out) -> None:
    """Gradient of LRN w.r.t. ``x`` (N, C, S) into ``out``, from the saved ``scale``."""
    _, c, s = (int(d) for d in x.shape)
    t = x.dtype.type
    if x.size:
        args = (_flat(x), _flat(g), _flat(scale), int(size), t(alpha), t(beta), _flat(out), c, s)
        _lrn_backward[blocks(x.size), THREADS](*args)
