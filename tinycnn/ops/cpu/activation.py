"""CPU kernels of the pointwise activations (flat, C-contiguous arrays; ``out`` preallocated).

Forward and backward are one pass each; the backward reads the saved output (relu, tanh,
sigmoid) so no extra temporary is made.
"""

from __future__ import annotations

import math

from ._numba import njit, prange


@njit(parallel=True)
def relu_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = 0.0 if v <= 0 else v  # NaN passes through, as in PyTorch


@njit(parallel=True)
def relu_backward(y, grad, out):
    for i in prange(y.size):
        out[i] = grad[i] if y[i] > 0 else 0.0


@njit(parallel=True)
def leaky_relu_forward(x, slope, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else v * slope


@njit(parallel=True)
def leaky_relu_backward(x, grad, slope, out):
    for i in prange(x.size):
        out[i] = grad[i] if x[i] > 0 else grad[i] * slope


@njit(parallel=True)
def tanh_forward(x, out):
    for i in prange(x.size):
        out[i] = math.tanh(x[i])


@njit(parallel=True)
def tanh_backward(y, grad, out):
    for i in prange(y.size):
        out[i] = grad[i] * (1.0 - y[i] * y[i])


@njit(parallel=True)
def sigmoid_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        if v >= 0:
            out[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            out[i] = e / (1.0 + e)


@njit(parallel=True)
def sigmoid_backward(y, grad, out):
    for i in prange(y.size):
        out[i] = grad[i] * y[i] * (1.0 - y[i])
