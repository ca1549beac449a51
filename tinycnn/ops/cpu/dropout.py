"""CPU kernels of inverted dropout on flat arrays.

The random numbers come from the caller (a seeded ``numpy.random.Generator``), so a run repeats
exactly whatever the thread count.  The forward turns them into a one-byte keep mask, which the
backward reuses: 1 byte per element kept alive instead of the 4-8 of the uniforms.  Threads
own blocks, handed to the loop as slices (see ``activation.py``: indexing the full arrays from
an offset compiled to slower code inside the parallel loop).
"""

from __future__ import annotations

from ._numba import njit, prange

# Below this many elements a kernel runs on the calling thread (a parallel launch on Numba's
# workqueue layer costs ~20 us).
PARALLEL_MIN = 1 << 16
_BLOCK = 4096


@njit
def _forward_block(x, u, p, scale, out, mask):
    for i in range(x.size):
        keep = u[i] >= p  # P(keep) = 1 - p for u uniform in [0, 1)
        mask[i] = keep
        out[i] = x[i] * (scale if keep else 0.0)  # x * 0: NaN stays NaN, as in torch


@njit(parallel=True)
def _forward_par(x, u, p, scale, out, mask):
    for b in prange((x.size + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        hi = min(x.size, lo + _BLOCK)
        _forward_block(x[lo:hi], u[lo:hi], p, scale, out[lo:hi], mask[lo:hi])


def dropout_forward(x, u, p, out, mask):
    """``out = x / (1 - p)`` where ``u >= p``, else ``x * 0``; the keep mask (uint8) into
    ``mask``.

    ``x``, ``u``, ``out``, ``mask`` are flat and of one length; ``0 <= p < 1``.
    """
    scale = 1.0 / (1.0 - p)
    if x.size >= PARALLEL_MIN:
        _forward_par(x, u, p, scale, out, mask)
    else:
        _forward_block(x, u, p, scale, out, mask)


@njit
def _backward_block(g, mask, scale, out):
    for i in range(g.size):
        out[i] = g[i] * (scale if mask[i] else 0.0)


@njit(parallel=True)
def _backward_par(g, mask, scale, out):
    for b in prange((g.size + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        hi = min(g.size, lo + _BLOCK)
        _backward_block(g[lo:hi], mask[lo:hi], scale, out[lo:hi])


def dropout_backward(g, mask, p, out):
    """``out = g / (1 - p)`` where the forward kept the unit, else ``g * 0``."""
    scale = 1.0 / (1.0 - p)
    if g.size >= PARALLEL_MIN:
        _backward_par(g, mask, scale, out)
    else:
        _backward_block(g, mask, scale, out)
