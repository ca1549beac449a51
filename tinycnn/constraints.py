"""Weight constraints (Keras' ``max_norm``, ``non_neg``, ``unit_norm``, ``min_max_norm``).

A constraint maps a weight's values (a NumPy array) to projected values;
``model.apply_constraints()``
applies them after each optimizer step.

Axes refer to tinycnn's weight layouts, where the *output* unit is axis 0: Dense ``(out, in)``,
Conv2D ``(C_out, C_in/groups, kH, kW)``.  The default ``axis=None`` takes one norm per output unit
(every axis but 0), which is what Keras' ``axis=0`` (Dense) and ``axis=[0, 1, 2]`` (Conv2D) mean in
its ``(in, out)`` / ``(kH, kW, C_in, C_out)`` layouts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get"]

_EPS = 1e-7  # Keras' backend epsilon: avoids 0/0 for an all-zero unit


class Constraint:
    """Base class: ``constraint(values: ndarray) -> ndarray``."""

    def __call__(self, w: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def _norms(w: np.ndarray, axis) -> np.ndarray:
    if axis is None:
        axis = tuple(range(1, w.ndim)) if w.ndim > 1 else (0,)
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    """Rescale each unit's weight vector whose L2 norm exceeds ``max_value``."""

    def __init__(self, max_value: float = 2.0, axis=None):
        if not max_value > 0:
            raise ValueError(f"max_norm: max_value must be > 0, got {max_value}")
        self.max_value, self.axis = float(max_value), axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (_EPS + norms))).astype(w.dtype)


class MinMaxNorm(Constraint):
    """Keep each unit's norm in ``[min_value, max_value]``, moving it by ``rate`` per step."""

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis=None
    ):
        if not 0 <= min_value <= max_value:
            raise ValueError(
                f"min_max_norm: need 0 <= min_value <= max_value, got {min_value}, {max_value}"
            )
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value)
        desired += (1 - self.rate) * norms
        return (w * (desired / (_EPS + norms))).astype(w.dtype)


class UnitNorm(Constraint):
    """Each unit's weight vector to L2 norm 1."""

    def __init__(self, axis=None):
        self.axis = axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return (w / (_EPS + _norms(w, self.axis))).astype(w.dtype)


class NonNeg(Constraint):
    """Negative weights to zero."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return np.maximum(w, 0).astype(w.dtype)


max_norm, min_max_norm, unit_norm, non_neg = MaxNorm, MinMaxNorm, UnitNorm, NonNeg

_NAMES = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "unit_norm": UnitNorm, "non_neg": NonNeg}


def get(identifier: str | Callable | None) -> Callable | None:
    """A constraint from a name (``"max_norm"``), a callable, or ``None``."""
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    raise ValueError(
        f"constraint: unknown {identifier!r}; use one of {sorted(_NAMES)}, "
        "tc.constraints.MaxNorm(3) etc., or a callable(ndarray) -> ndarray"
    )
