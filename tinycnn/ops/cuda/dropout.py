"""CUDA kernels of inverted dropout on flat arrays: the functions of ``cpu/dropout.py``.

The uniforms come from the caller (a seeded NumPy generator, copied to the device), so a run
repeats exactly on either device; the forward keeps a one-byte mask for the backward.
"""

from __future__ import annotations

from numba import cuda

from ._cuda import blocks, each, kernel
from .config import THREADS


@kernel(
    *each(
        "{T}[::1], {U}[::1], {T}, {T}, {T}[::1], uint8[::1]",
        U=("float32", "float64"),
        T=("float32", "float64"),
    )
)
def _forward(x, u, p, scale, out, mask):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        keep = u[i] >= p  # P(keep) = 1 - p for u uniform in [0, 1)
        mask[i] = 1 if keep else 0
        out[i] = x[i] * (scale if keep else scale * 0)  # x * 0 in T: NaN stays NaN, as on the CPU


@kernel(*each("{T}[::1], uint8[::1], {T}, {T}[::1]"))
def _backward(g, mask, scale, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, g.size, step):
        out[i] = g[i] * (scale if mask[i] else scale * 0)


def dropout_forward(x, u, p, out, mask) -> None:
    """``out = x / (1 - p)`` where ``u >= p``, else ``x * 0``; the keep mask (uint8) into
    ``mask``."""
    t = x.dtype.type
    if x.size:
        _forward[blocks(x.size), THREADS](x, u, t(p), t(1.0 / (1.0 - p)), out, mask)


def dropout_backward(g, mask, p, out) -> None:
    """``out = g / (1 - p)`` where the forward kept the unit, else ``g * 0``."""
    if g.size:
        _backward[blocks(g.size), THREADS](g, mask, g.dtype.type(1.0 / (1.0 - p)), out)
