"""CPU kernels of the pointwise activations (flat, C-contiguous arrays; ``out`` preallocated).

Forward and backward are one pass each; the backward reads the saved output (relu, tanh,
sigmoid) so no extra temporary is made.  Each kernel has a serial and a parallel driver around
one inlined loop body: below ``PARALLEL_MIN`` elements (a Dense layer's activations) the launch
of Numba's thread pool (~20 us on the workqueue layer) costs more than the loop, so it runs on
the calling thread; above, threads own contiguous blocks of ``BLOCK`` elements.

The body loops over whole arrays, and the parallel driver hands it *slices* ``x[lo:hi]``.  A
body that indexed the full arrays from ``lo`` to ``hi`` compiled inside the parallel loop to
code 1.5x slower per thread than the serial loop, and made relu 3x and tanh 1.5x slower than
now.  tanh and sigmoid compute in their input's precision (``_vmath.tanh_of``, ``sigmoid_of``).
"""

from __future__ import annotations

from ._numba import njit, prange
from ._vmath import sigmoid_of as _sigmoid
from ._vmath import tanh_of as _tanh

PARALLEL_MIN = 1 << 15
BLOCK = 1 << 13


def _blocks(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK


@njit(inline="always")
def _relu_forward_block(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = 0.0 if v <= 0 else v  # NaN passes through, as in PyTorch


@njit(parallel=True)
def _relu_forward_par(x, out, nblocks):
    for b in prange(nblocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, x.size)
        _relu_forward_block(x[lo:hi], out[lo:hi])


@njit
def _relu_forward_ser(x, out):
    _relu_forward_block(x, out)


def relu_forward(x, out):
    """``out = max(x, 0)``; NaN stays NaN."""
    if x.size >= PARALLEL_MIN:
        _relu_forward_par(x, out, _blocks(x.size))
    else:
        _relu_forward_ser(x, out)


@njit(inline="always")
def _relu_backward_block(y, grad, out):
    for i in range(y.size):
        out[i] = 0.0 if y[i] <= 0 else grad[i]  # NaN passes its gradient, as in PyTorch


@njit(parallel=True)
def _relu_backward_par(y, grad, out, nblocks):
    for b in prange(nblocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, y.size)
        _relu_backward_block(y[lo:hi], grad[lo:hi], out[lo:hi])


@njit
def _relu_backward_ser(y, grad, out):
    _relu_backward_block(y, grad, out)


def relu_backward(y, grad, out):
    """``out = grad`` where the output ``y > 0``, else 0."""
    if y.size >= PARALLEL_MIN:
        _relu_backward_par(y, grad, out, _blocks(y.size))
    else:
        _relu_backward_ser(y, grad, out)


@njit(inline="always")
def _leaky_relu_forward_block(x, slope, out):
    for i in range(x.size):
        v = x[i]
        out[i] = v if v > 0 else v * slope


@njit(parallel=True)
def _leaky_relu_forward_par(x, slope, out, nblocks):
    for b in prange(nblocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, x.size)
        _leaky_relu_forward_block(x[lo:hi], slope, out[lo:hi])


@njit
def _leaky_relu_forward_ser(x, slope, out):
    _leaky_relu_forward_block(x, slope, out)


def leaky_relu_forward(x, slope, out):
    """``out = x if x > 0 else slope * x``."""
    if x.size >= PARALLEL_MIN:
        _leaky_relu_forward_par(x, slope, out, _blocks(x.size))
    else:
        _leaky_relu_forward_ser(x, slope, out)


@njit(inline="always")
def _leaky_relu_backward_block(x, grad, slope, out):
    for i in range(x.size):
        out[i] = grad[i] if x[i] > 0 else grad[i] * slope


@njit(parallel=True)
def _leaky_relu_backward_par(x, grad, slope, out, nblocks):
    for b in prange(nblocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, x.size)
        _leaky_relu_backward_block(x[lo:hi], grad[lo:hi], slope, out[lo:hi])


@njit
def _leaky_relu_backward_ser(x, grad, slope, out):
    _leaky_relu_backward_block(x, grad, slope, out)


def leaky_relu_backward(x, grad, slope, out):
    """``out = grad if x > 0 else slope * grad``."""
    if x.size >= PARALLEL_MIN:
        _leaky_relu_backward_par(x, grad, slope, out, _blocks(x.size))
    else:
        _leaky_relu_backward_ser(x, grad, slope, out)


@njit(inline="always")
def _tanh_forward_block(x, out):
    for i in range(x.size):
        out[i] = _tanh(x[i])


@njit(parallel=True)
def _tanh_forward_par(x, out, nblocks):
    for b in prange(nblocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, x.size)
        _tanh_forward_block(x[lo:hi], out[lo:hi])


@njit
def _tanh_forward_ser(x, out):
    _tanh_forward_block(x, out)


def tanh_forward(x, out):
    """``out = tanh(x)`` (the vectorisable tanh of ``_vmath``)."""
    if x.size >= PARALLEL_MIN:
        _tanh_forward_par(x, out, _blocks(x.size))
    else:
        _tanh_forward_ser(x, out)


@njit(inline="always")
def _tanh_backward_block(y, grad, out):
    for i in range(y.size):
        out[i] = grad[i] * (1.0 - y[i] * y[i])


@njit(parallel=True)
def _tanh_backward_par(y, grad, out, nblocks):
    for b in prange(nblocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, y.size)
        _tanh_backward_block(y[lo:hi], grad[lo:hi], out[lo:hi])


@njit
def _tanh_backward_ser(y, grad, out):
    _tanh_backward_block(y, grad, out)


def tanh_backward(y, grad, out):
    """``out = grad * (1 - y**2)`` from the output ``y``."""
    if y.size >= PARALLEL_MIN:
        _tanh_backward_par(y, grad, out, _blocks(y.size))
    else:
        _tanh_backward_ser(y, grad, out)


@njit(inline="always")
def _sigmoid_forward_block(x, out):
    for i in range(x.size):
        out[i] = _sigmoid(x[i])


@njit(parallel=True)
def _sigmoid_forward_par(x, out, nblocks):
    for b in prange(nblocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, x.size)
        _sigmoid_forward_block(x[lo:hi], out[lo:hi])


@njit
def _sigmoid_forward_ser(x, out):
    _sigmoid_forward_block(x, out)


def sigmoid_forward(x, out):
    """``out = 1 / (1 + exp(-x))``, as ``e / (1 + e)`` with ``e = exp(-|x|)`` for x < 0."""
    if x.size >= PARALLEL_MIN:
        _sigmoid_forward_par(x, out, _blocks(x.size))
    else:
        _sigmoid_forward_ser(x, out)


@njit(inline="always")
def _sigmoid_backward_block(y, grad, out):
    for i in range(y.size):
        out[i] = grad[i] * y[i] * (1.0 - y[i])


@njit(parallel=True)
def _sigmoid_backward_par(y, grad, out, nblocks):
    for b in prange(nblocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, y.size)
        _sigmoid_backward_block(y[lo:hi], grad[lo:hi], out[lo:hi])


@njit
def _sigmoid_backward_ser(y, grad, out):
    _sigmoid_backward_block(y, grad, out)


def sigmoid_backward(y, grad, out):
    """``out = grad * y * (1 - y)`` from the output ``y``."""
    if y.size >= PARALLEL_MIN:
        _sigmoid_backward_par(y, grad, out, _blocks(y.size))
    else:
        _sigmoid_backward_ser(y, grad, out)
