"""Weight and activity regularizers (Keras' ``l1``, ``l2``, ``l1_l2``).

A regularizer maps a tensor to a scalar tensor; a layer's regularization terms from its last
forward call are in ``model.losses``, which the training loop adds to the loss.
"""

from __future__ import annotations

from collections.abc import Callable

from .ops.activation import relu
from .tensor import Tensor

__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "l1", "l1_l2", "l2"]


class Regularizer:
    """Base class: ``regularizer(weight) -> scalar Tensor``."""

    def __call__(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _factor(name: str, value) -> float:
    value = float(value)
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{name}: the factor must be a number >= 0, got {value}")
    return value


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x²)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor("l1", l1)
        self.l2 = _factor("l2", l2)

    def __call__(self, x: Tensor) -> Tensor:
        total = None
        if self.l1:
            # |x| = relu(x) + relu(-x): differentiable with the ops every back end has
            total = (relu(x) + relu(-x)).sum() * self.l1
        if self.l2:
            term = (x * x).sum() * self.l2
            total = term if total is None else total + term
        return total if total is not None else (x * 0.0).sum()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l1={self.l1:g}, l2={self.l2:g})"


class L1(L1L2):
    """``l1 * sum(|x|)`` (Keras' default factor 0.01)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)


class L2(L1L2):
    """``l2 * sum(x²)`` (Keras' default factor 0.01; no 1/2 factor, as in Keras)."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)


def l1(l1: float = 0.01) -> L1:  # noqa: E743 - Keras' name
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:  # noqa: E743
    return L1L2(l1, l2)


_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01)}


def get(identifier: str | Callable | None) -> Callable | None:
    """A regularizer from a name (``"l2"`` = ``L2(0.01)``), a callable, or ``None``."""
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    raise ValueError(
        f"regularizer: unknown {identifier!r}; use one of {sorted(_NAMES)}, "
        "tc.regularizers.l2(0.001) etc., or a callable(tensor) -> scalar tensor"
    )
