"""Vectorisable ``exp`` and ``tanh`` for the CPU kernels (inlined into their loops).

Numba has no vector math library here (no SVML): ``math.exp``/``math.tanh`` are scalar libm
calls, 2-10 ns per element, and they keep LLVM from vectorising the loop around them (a LeNet-5
training step spent 5.6 of its 13.6 ms in ``math.tanh``).  These are plain arithmetic, so the
loops that call them vectorise: ~0.6-1 ns per element.

Numba's on-disk cache keys a kernel on its *own* file only; the hash of this file is part of
every tinycnn kernel's cache key (``_numba.TOOLCHAIN``), so a change here recompiles the kernels
that inline these helpers.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._numba import njit


@intrinsic
def _f64_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(inline="always")
def exp(x):
    """``e**x`` in float64: Cody-Waite range reduction, degree-13 Taylor, ``2**k`` built from its
    bits.  Relative error below 3e-16 + 4e-17*|x| on [-708, 709] (fastmath may merge the
    two-constant reduction); below exp(-708) it flushes to 0; NaN propagates."""
    y = min(max(x, -708.0), 709.0)
    k = math.floor(y * 1.4426950408889634 + 0.5)
    r = (y - k * 0.6931471803691238) - k * 1.9082149292705877e-10
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    v = p * _f64_from_bits((np.int64(k) + 1023) << 52)
    if x < -708.0:
        v = 0.0
    if x != x:
        v = x
    return v


@njit(inline="always")
def tanh(x):
    """``tanh(x)`` in float64, within 3 ulp of libm (float32 results within 0.5 ulp).

    ``|x| < 0.2``: the Taylor series ``x - x**3/3 + 2x**5/15 - ...`` to ``x**19`` (the next term
    is below 1e-17 relative).  Otherwise ``(1 - e)/(1 + e)`` with ``e = exp(-2|x|)``, whose
    cancellation at 0.2 costs at most a factor 4 of ``exp``'s error.  Both are computed and one
    is selected, so there is no branch in the vector loop."""
    a = min(abs(x), 20.0)  # tanh(20) = 1 - 8e-18, which is 1.0 in float64
    u = a * a
    p = -443861162.0 / 1856156927625.0
    p = p * u + 6404582.0 / 10854718875.0
    p = p * u - 929569.0 / 638512875.0
    p = p * u + 21844.0 / 6081075.0
    p = p * u - 1382.0 / 155925.0
    p = p * u + 62.0 / 2835.0
    p = p * u - 17.0 / 315.0
    p = p * u + 2.0 / 15.0
    p = p * u - 1.0 / 3.0
    small = a + a * u * p
    e = exp(-2.0 * a)
    large = (1.0 - e) / (1.0 + e)
    t = small if a < 0.2 else large
    t = t if x >= 0 else -t
    if x != x:
        t = x
    return t
