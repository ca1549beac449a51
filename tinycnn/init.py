"""Weight initializers, with Keras' names and Keras' formulas, seeded.

Every initializer has the signature::

    init(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray

``rng`` is a seed, a ``numpy.random.Generator`` or ``None`` (the global generator that
``tinycnn.manual_seed`` resets).  The fans come from the shape in PyTorch's weight layout --
linear ``(out, in)``, conv ``(C_out, C_in/groups, kH, kW)`` -- which gives the same numbers
Keras computes from its ``(kH, kW, C_in/groups, C_out)`` kernels: ``fan_in = C_in/groups*kH*kW``,
``fan_out = C_out*kH*kW``.  Layers whose kernel layout differs from that (a depthwise conv, where
Keras counts ``fan_in = C_in*kH*kW``) pass ``fan_in``/``fan_out`` explicitly.

The normal variants follow Keras' ``VarianceScaling(distribution="truncated_normal")``: a normal
truncated at two standard deviations, with the standard deviation divided by 0.8796… so that the
*truncated* distribution has exactly the target variance (``scale / n``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .random import as_generator

__all__ = [
    "compute_fans",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "zeros",
]

# Standard deviation of a unit normal truncated to [-2, 2] (Keras uses the same constant).
_TRUNCATED_STD = 0.87962566103423978

Initializer = Callable[..., np.ndarray]


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` in PyTorch's layout (see module doc)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _check_shape(name: str, shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{name}: shape must be a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{name}: shape must not have negative sizes, got {shape}")
    return shape


def _check_dtype(name: str, dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _scale_n(name, shape, fan_in, fan_out, mode: str) -> float:
    auto_in, auto_out = compute_fans(shape)
    fan_in = auto_in if fan_in is None else int(fan_in)
    fan_out = auto_out if fan_out is None else int(fan_out)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    if n <= 0:
        raise ValueError(
            f"{name}: {mode} must be > 0 to scale the weights, got fan_in={fan_in}, "
            f"fan_out={fan_out} for shape {tuple(shape)}"
        )
    return float(n)


def _uniform(name, shape, dtype, rng, fan_in, fan_out, scale: float, mode: str) -> np.ndarray:
    shape = _check_shape(name, shape)
    dtype = _check_dtype(name, dtype)
    limit = math.sqrt(3.0 * scale / _scale_n(name, shape, fan_in, fan_out, mode))
    out = as_generator(rng).random(shape, dtype=dtype)  # [0, 1) drawn in the target dtype
    out *= dtype.type(2.0 * limit)
    out -= dtype.type(limit)
    return out


def _truncated_normal(name, shape, dtype, rng, fan_in, fan_out, scale, mode) -> np.ndarray:
    shape = _check_shape(name, shape)
    dtype = _check_dtype(name, dtype)
    std = math.sqrt(scale / _scale_n(name, shape, fan_in, fan_out, mode)) / _TRUNCATED_STD
    gen = as_generator(rng)
    out = gen.standard_normal(shape, dtype=dtype)
    flat = out.reshape(-1)
    # Redraw what falls outside two standard deviations (~4.6 % per round) until none does.
    bad = np.flatnonzero(np.abs(flat) > 2.0)
    while bad.size:
        flat[bad] = gen.standard_normal(bad.size, dtype=dtype)
        bad = bad[np.abs(flat[bad]) > 2.0]
    out *= dtype.type(std)
    return out


def glorot_uniform(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray:
    """Uniform on ``[-l, l]``, ``l = sqrt(6 / (fan_in + fan_out))`` (Keras' default kernel
    initializer; Glorot & Bengio 2010)."""
    return _uniform("glorot_uniform", shape, dtype, rng, fan_in, fan_out, 1.0, "fan_avg")


def glorot_normal(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray:
    """Truncated normal (2 std) with variance ``2 / (fan_in + fan_out)``."""
    return _truncated_normal("glorot_normal", shape, dtype, rng, fan_in, fan_out, 1.0, "fan_avg")


def he_uniform(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray:
    """Uniform on ``[-l, l]``, ``l = sqrt(6 / fan_in)`` (He et al. 2015)."""
    return _uniform("he_uniform", shape, dtype, rng, fan_in, fan_out, 2.0, "fan_in")


def he_normal(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray:
    """Truncated normal (2 std) with variance ``2 / fan_in``."""
    return _truncated_normal("he_normal", shape, dtype, rng, fan_in, fan_out, 2.0, "fan_in")


def lecun_uniform(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray:
    """Uniform on ``[-l, l]``, ``l = sqrt(3 / fan_in)``."""
    return _uniform("lecun_uniform", shape, dtype, rng, fan_in, fan_out, 1.0, "fan_in")


def lecun_normal(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray:
    """Truncated normal (2 std) with variance ``1 / fan_in`` (used with SELU)."""
    return _truncated_normal("lecun_normal", shape, dtype, rng, fan_in, fan_out, 1.0, "fan_in")


def zeros(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray:
    """All zeros (Keras' default bias initializer)."""
    return np.zeros(_check_shape("zeros", shape), dtype=_check_dtype("zeros", dtype))


def ones(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None) -> np.ndarray:
    """All ones (batch-norm scale)."""
    return np.ones(_check_shape("ones", shape), dtype=_check_dtype("ones", dtype))


_REGISTRY: dict[str, Initializer] = {
    f.__name__: f
    for f in (
        glorot_uniform,
        glorot_normal,
        he_uniform,
        he_normal,
        lecun_uniform,
        lecun_normal,
        zeros,
        ones,
    )
}


def _canonical(name: str) -> str:
    """``"GlorotUniform"`` / ``"glorot-uniform"`` / ``"glorot_uniform"`` -> ``"glorotuniform"``."""
    return name.replace("_", "").replace("-", "").lower()


_BY_CANONICAL = {_canonical(k): v for k, v in _REGISTRY.items()}
_BY_CANONICAL.update({"xavieruniform": glorot_uniform, "xaviernormal": glorot_normal})


def get(identifier: str | Initializer) -> Initializer:
    """The initializer called ``identifier`` (Keras' names, also its class-name spelling
    ``"GlorotUniform"``), or ``identifier`` itself when it is callable."""
    if callable(identifier):
        return identifier
    if isinstance(identifier, str):
        found = _BY_CANONICAL.get(_canonical(identifier))
        if found is not None:
            return found
        raise ValueError(
            f"initializer: unknown name {identifier!r}; valid names: {', '.join(_REGISTRY)} "
            "(or pass a callable(shape, dtype, rng, fan_in, fan_out))"
        )
    raise TypeError(
        f"initializer: expected a name or a callable, got {type(identifier).__name__}; "
        f"valid names: {', '.join(_REGISTRY)}"
    )
