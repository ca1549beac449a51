"""Vectorisable ``exp`` and ``tanh`` for the CPU kernels (inlined into their loops).

``exp``, ``tanh`` and ``sigmoid`` compute in float64.  ``tanh_of`` and ``sigmoid_of`` pick
by the argument's type: float64 gets the same, float32 gets float32 arithmetic (twice the
lanes per vector, and a float32 division), within 2 ulp (tanh, exp) and 2.5 ulp (sigmoid) of
the exact value.  On a LeNet-5 activation (470,400 float32 values, 2
threads) float32 arithmetic took tanh from 340 to 155 us.

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
from numba import config as numba_config
from numba import types
from numba.extending import intrinsic, overload

from ._numba import njit


@intrinsic
def _f32_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _f64_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


if numba_config.DISABLE_JIT:  # the kernels run as plain Python (to step through them)

    def _f32_from_bits(bits):
        return np.array(bits, np.int32).view(np.float32)[()]

    def _f64_from_bits(bits):
        return np.array(bits, np.int64).view(np.float64)[()]


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
    t = np.copysign(t, x)  # tanh(-0.0) is -0.0
    if x != x:
        t = x
    return t


# ------------------------------------------------------------------------------ float32
_F = np.float32


@njit(inline="always")
def exp_neg_f32(x):
    """``e**x`` for float32 ``x <= 0``: Cody-Waite reduction to ``|r| <= ln2/2``, degree-7
    Taylor (truncation below 1e-8 relative), ``2**k`` built from its bits in two factors so
    that results down to float32's subnormals are right.  Below -104 (under the smallest
    subnormal) it gives 0; NaN propagates."""
    y = max(x, _F(-104.0))
    k = np.floor(y * _F(1.442695) + _F(0.5))
    r = (y - k * _F(0.693359375)) - k * _F(-2.12194440e-4)
    p = _F(1.0 / 5040.0)
    p = p * r + _F(1.0 / 720.0)
    p = p * r + _F(1.0 / 120.0)
    p = p * r + _F(1.0 / 24.0)
    p = p * r + _F(1.0 / 6.0)
    p = p * r + _F(0.5)
    p = p * r + _F(1.0)
    p = p * r + _F(1.0)
    # 2**k = 2**(k + 64) * 2**-64: both factors normal for -150 <= k <= 0
    v = (p * _f32_from_bits((np.int32(k) + 191) << 23)) * _F(5.421010862427522e-20)
    if x < _F(-104.0):
        v = _F(0.0)
    if x != x:
        v = x
    return v


@njit(inline="always")
def tanh_f32(x):
    """``tanh(x)`` in float32 arithmetic, within 2 ulp of the correctly rounded value.

    ``|x| < 0.55``: the Taylor series to ``x**17`` (the next term is below 6e-9 relative).
    Otherwise ``(1 - e)/(1 + e)`` with ``e = exp(-2|x|) <= 0.333``, which loses under one ulp
    to cancellation.  ``|x| >= 9`` is 1.0 (tanh(9) rounds to 1 in float32)."""
    a = min(abs(x), _F(9.0))
    u = a * a
    p = _F(6404582.0 / 10854718875.0)
    p = p * u - _F(929569.0 / 638512875.0)
    p = p * u + _F(21844.0 / 6081075.0)
    p = p * u - _F(1382.0 / 155925.0)
    p = p * u + _F(62.0 / 2835.0)
    p = p * u - _F(17.0 / 315.0)
    p = p * u + _F(2.0 / 15.0)
    p = p * u - _F(1.0 / 3.0)
    small = a + a * u * p
    e = exp_neg_f32(_F(-2.0) * a)
    large = (_F(1.0) - e) / (_F(1.0) + e)
    t = small if a < _F(0.55) else large
    t = np.copysign(t, x)  # tanh(-0.0) is -0.0
    if x != x:
        t = x
    return t


@njit(inline="always")
def sigmoid(x):
    """``1 / (1 + e**-x)`` in float64, as ``e / (1 + e)`` with ``e = exp(-|x|)`` for x < 0 (the
    exponential never overflows)."""
    e = exp(-abs(x))
    return (1.0 if x >= 0 else e) / (1.0 + e)


@njit(inline="always")
def sigmoid_f32(x):
    """:func:`sigmoid` in float32 arithmetic, within 2.5 ulp (``exp_neg_f32``'s 1.2, and the
    roundings of ``1 + e`` and of the division)."""
    e = exp_neg_f32(-abs(x))
    return (_F(1.0) if x >= 0 else e) / (_F(1.0) + e)


def _in_own_precision(name: str, f32, f64):
    """A function for compiled kernels that calls ``f32`` on a float32 argument and ``f64``
    otherwise, chosen when the kernel is typed (an ``overload``, inlined)."""

    def stub(x):  # pragma: no cover - replaced by the overload inside compiled code
        raise NotImplementedError(f"{name} is used inside Numba kernels only")

    stub.__name__ = stub.__qualname__ = name

    @overload(stub, inline="always")
    def _typed(x):
        impl = f32 if x == types.float32 else f64
        return lambda x: impl(x)

    return stub


tanh_of = _in_own_precision("tanh_of", tanh_f32, tanh)
sigmoid_of = _in_own_precision("sigmoid_of", sigmoid_f32, sigmoid)
