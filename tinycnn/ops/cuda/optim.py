"""CUDA kernels of the optimizers: the functions of ``cpu/optim.py``, by name and semantics.

One fused grid-stride pass per parameter updates it and its state buffers in place on the
device (flat C-contiguous arrays of one dtype); scalars arrive cast to the parameter's dtype,
so float32 parameters are updated in float32 arithmetic, as on the CPU and in PyTorch.
"""

from __future__ import annotations

import math

from numba import cuda

from ._cuda import blocks, each, kernel
from .config import THREADS

_SGD = "{T}[::1], {T}[::1], {T}[::1], {T}, {T}, {T}, {T}, boolean, boolean"


@kernel(*each(_SGD))
def _sgd(p, g, buf, lr, momentum, keep, wd, nesterov, first):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, step):
        d = g[i] + wd * p[i]
        if momentum != 0:
            if first:
                b = d
            else:
                b = momentum * buf[i] + keep * d  # keep = 1 - dampening
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] -= lr * d


_ADAM = "{T}[::1], {T}[::1], {T}[::1], {T}[::1], {T}[::1], " + "{T}, " * 8 + "boolean"


@kernel(*each(_ADAM))
def _adam(p, g, m, v, vmax, step_size, omb1, beta2, omb2, bc2_sqrt, eps, wd, decay, amsgrad):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, step):
        pi = p[i]
        if decay != 1:  # decoupled (AdamW): shrink the weight before the step
            pi = pi * decay
        gi = g[i] + wd * pi
        mi = m[i] + omb1 * (gi - m[i])  # torch's lerp, for the same rounding
        vi = beta2 * v[i] + omb2 * gi * gi
        m[i] = mi
        v[i] = vi
        if amsgrad:
            if vi > vmax[i]:
                vmax[i] = vi
            else:
                vi = vmax[i]
        p[i] = pi - step_size * mi / (math.sqrt(vi) / bc2_sqrt + eps)


_RMS = "{T}[::1], {T}[::1], {T}[::1], {T}[::1], {T}[::1], " + "{T}, " * 6 + "boolean"


@kernel(*each(_RMS))
def _rmsprop(p, g, sq, gavg, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, centered):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, step):
        gi = g[i] + wd * p[i]
        s = alpha * sq[i] + one_minus_alpha * gi * gi
        sq[i] = s
        if centered:
            a = gavg[i] + one_minus_alpha * (gi - gavg[i])
            gavg[i] = a
            s = s - a * a
        denom = math.sqrt(s) + eps
        if momentum > 0:
            b = momentum * buf[i] + gi / denom
            buf[i] = b
            p[i] -= lr * b
        else:
            p[i] -= lr * gi / denom


def _go(k, param, *args) -> None:
    if param.size:
        k[blocks(param.size), THREADS](param, *args)


def _scalars(param, *values):
    t = param.dtype.type
    return tuple(t(v) for v in values)


def sgd_step(param, grad, buf, lr, momentum, one_minus_dampening, weight_decay, nesterov, first):
    """SGD with PyTorch's semantics; ``buf`` is the momentum buffer (unused, and may be None,
    when ``momentum == 0``); ``first`` says it is uninitialised (it is then set to the grad)."""
    scalars = _scalars(param, lr, momentum, one_minus_dampening, weight_decay)
    buf = param if buf is None else buf
    _go(_sgd, param, grad, buf, *scalars, bool(nesterov), bool(first))


def adam_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    step_size,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    bias_correction2_sqrt,
    eps,
    weight_decay,
    decay,
    amsgrad,
):
    """Adam / AdamW, as ``cpu/optim.py``: ``max_exp_avg_sq`` is read only when ``amsgrad``."""
    scalars = _scalars(
        param,
        step_size,
        one_minus_beta1,
        beta2,
        one_minus_beta2,
        bias_correction2_sqrt,
        eps,
        weight_decay,
        decay,
    )
    vmax = param if max_exp_avg_sq is None else max_exp_avg_sq
    _go(_adam, param, grad, exp_avg, exp_avg_sq, vmax, *scalars, bool(amsgrad))


def rmsprop_step(
    param,
    grad,
    square_avg,
    grad_avg,
    momentum_buffer,
    lr,
    alpha,
    one_minus_alpha,
    eps,
    weight_decay,
    momentum,
    centered,
):
    """RMSprop with PyTorch's semantics (``grad_avg`` used when ``centered``,
    ``momentum_buffer`` when ``momentum > 0``; either may be None otherwise)."""
    scalars = _scalars(param, lr, alpha, one_minus_alpha, eps, weight_decay, momentum)
    gavg = param if grad_avg is None else grad_avg
    buf = param if momentum_buffer is None else momentum_buffer
    _go(_rmsprop, param, grad, square_avg, gavg, buf, *scalars, bool(centered))
