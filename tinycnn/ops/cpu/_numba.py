"""One place for how CPU kernels are compiled.

Threading: tinycnn's convolutions alternate Numba loops (im2col, col2im, pooling) with
OpenBLAS GEMMs.  On a 2-core machine Numba's default OpenMP pool and OpenBLAS' pool spin against
each other (an im2col + GEMM conv measured 22 ms where its parts add up to 13 ms).  Numba's
``workqueue`` layer has no spinning workers, so only one pool is busy at a time; we pick it unless
the user chose a layer with ``NUMBA_THREADING_LAYER``.  It must be set before the first parallel
kernel runs, which is why every kernel module imports ``njit`` from here.
"""

from __future__ import annotations

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

# fastmath flags for every kernel: reassociation and contraction (vectorised reductions, FMA)
# but never 'nnan'/'ninf', so NaN and Inf propagate as the user expects.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def njit(*args, parallel: bool = False, **kwargs):
    """``numba.njit`` with tinycnn's settings: cached on disk, shared fastmath flags."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("fastmath", FASTMATH)
    kwargs.setdefault("nogil", True)
    return numba.njit(*args, parallel=parallel, **kwargs)


prange = numba.prange
