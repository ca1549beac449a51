"""CUDA kernels of the pointwise activations: the functions of ``cpu/activation.py``, by name.

Each public function takes flat C-contiguous device arrays (``out`` preallocated) and launches
one grid-stride kernel; the backward reads the saved output (relu, tanh, sigmoid) or input
(leaky_relu), exactly as on the CPU.
"""

from __future__ import annotations

import math

from numba import cuda

from ._cuda import blocks, each, kernel
from .config import THREADS

_UNARY = each("{T}[::1], {T}[::1]")
_BINARY = each("{T}[::1], {T}[::1], {T}[::1]")


@kernel(*_UNARY)
def _relu_forward(x, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        v = x[i]
        out[i] = 0 if v <= 0 else v  # NaN passes through, as in PyTorch


@kernel(*_BINARY)
def _relu_backward(y, grad, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, step):
        out[i] = 0 if y[i] <= 0 else grad[i]  # NaN passes its gradient, as in PyTorch


@kernel(*each("{T}[::1], {T}, {T}[::1]"))
def _leaky_relu_forward(x, slope, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        v = x[i]
        out[i] = v if v > 0 else v * slope


@kernel(*each("{T}[::1], {T}[::1], {T}, {T}[::1]"))
def _leaky_relu_backward(x, grad, slope, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        out[i] = grad[i] if x[i] > 0 else grad[i] * slope


@kernel(*_UNARY)
def _tanh_forward(x, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        out[i] = math.tanh(x[i])


@kernel(*_BINARY)
def _tanh_backward(y, grad, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, step):
        out[i] = grad[i] * (1 - y[i] * y[i])


@kernel(*_UNARY)
def _sigmoid_forward(x, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        v = x[i]
        if v >= 0:  # exp of a non-positive number only: no overflow
            out[i] = 1 / (1 + math.exp(-v))
        else:
            e = math.exp(v)
            out[i] = e / (1 + e)


@kernel(*_BINARY)
def _sigmoid_backward(y, grad, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, step):
        out[i] = grad[i] * y[i] * (1 - y[i])


def _launch(k, n: int, *args) -> None:
    if n:
        k[blocks(n), THREADS](*args)


def relu_forward(x, out) -> None:
    _launch(_relu_forward, x.size, x, out)


def relu_backward(y, grad, out) -> None:
    _launch(_relu_backward, y.size, y, grad, out)


def leaky_relu_forward(x, slope, out) -> None:
    _launch(_leaky_relu_forward, x.size, x, x.dtype.type(slope), out)


def leaky_relu_backward(x, grad, slope, out) -> None:
    _launch(_leaky_relu_backward, x.size, x, grad, x.dtype.type(slope), out)


def tanh_forward(x, out) -> None:
    _launch(_tanh_forward, x.size, x, out)


def tanh_backward(y, grad, out) -> None:
    _launch(_tanh_backward, y.size, y, grad, out)


def sigmoid_forward(x, out) -> None:
    _launch(_sigmoid_forward, x.size, x, out)


def sigmoid_backward(y, grad, out) -> None:
    _launch(_sigmoid_backward, y.size, y, grad, out)
