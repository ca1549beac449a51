"""CPU kernels of inverted dropout on flat arrays.

The random numbers come from the caller (a seeded ``numpy.random.Generator``), so a run repeats
exactly whatever the thread count.  The forward turns them into a one-byte keep mask, which the
backward reuses: 1 byte per element kept alive instead of the 4-8 of the uniforms.
"""

from __future__ import annotations

from ._numba import njit, prange

# Below this many elements a kernel runs on the calling thread (a parallel launch on Numba's
# workqueue layer costs ~20 us).
PARALLEL_MIN = 1 << 16
_BLOCK = 4096


@njit
def _forward_range(x, u, p, scale, out, mask, lo, hi):
    for i in range(lo, hi):
        keep = u[i] >= p  # P(keep) = 1 - p for u uniform in [0, 1)
        mask[i] = keep
        out[i] = x[i] * scale if keep else 0.0


@njit(parallel=True)
def _forward_par(x, u, p, scale, out, mask):
    for b in prange((x.size + _BLOCK - 1) // _BLOCK):
        _forward_range(x, u, p, scale, out, mask, b * _BLOCK, min(x.size, (b + 1) * _BLOCK))


def dropout_forward(x, u, p, out, mask):
    """``out = x / (1 - p)`` where ``u >= p``, else 0; the keep mask (uint8) into ``mask``.

    ``x``, ``u``, ``out``, ``mask`` are flat and of one length; ``0 <= p < 1``.
    """
    scale = 1.0 / (1.0 - p)
    if x.size >= PARALLEL_MIN:
        _forward_par(x, u, p, scale, out, mask)
    else:
        _forward_range(x, u, p, scale, out, mask, 0, x.size)


@njit
def _backward_range(g, mask, scale, out, lo, hi):
    for i in range(lo, hi):
        out[i] = g[i] * scale if mask[i] else 0.0


@njit(parallel=True)
def _backward_par(g, mask, scale, out):
    for b in prange((g.size + _BLOCK - 1) // _BLOCK):
        _backward_range(g, mask, scale, out, b * _BLOCK, min(g.size, (b + 1) * _BLOCK))


def dropout_backward(g, mask, p, out):
    """``out = g / (1 - p)`` where the forward kept the unit, else 0."""
    scale = 1.0 / (1.0 - p)
    if g.size >= PARALLEL_MIN:
        _backward_par(g, mask, scale, out)
    else:
        _backward_range(g, mask, scale, out, 0, g.size)
