"""Activation functions by name, for ``activation=`` arguments and the ``Activation`` layer."""

from __future__ import annotations

from collections.abc import Callable

from . import functional as F
from .tensor import Tensor

__all__ = ["get", "linear", "relu6", "silu"]


def linear(x: Tensor) -> Tensor:
    """The identity (Keras' ``"linear"``, also what ``activation=None`` means)."""
    return x


def relu6(x: Tensor) -> Tensor:
    """``min(max(x, 0), 6)`` (:func:`tinycnn.functional.relu6`)."""
    return F.relu6(x)


def silu(x: Tensor) -> Tensor:
    """``x * sigmoid(x)`` (swish)."""
    return x * F.sigmoid(x)


def _softmax(x: Tensor) -> Tensor:
    return F.softmax(x, dim=-1)


def _log_softmax(x: Tensor) -> Tensor:
    return F.log_softmax(x, dim=-1)


def _leaky_relu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)  # Keras' LeakyReLU default slope


_NAMES: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "leaky_relu": _leaky_relu,
    "relu6": relu6,
    "silu": silu,
    "swish": silu,
    "linear": linear,
}


def get(identifier: str | Callable | None) -> Callable[[Tensor], Tensor]:
    """The function for a name (``"relu"``), a callable itself, or the identity for ``None``.

    ``softmax``/``log_softmax`` act on the last axis, as in Keras.
    """
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]
    raise ValueError(
        f"activation: unknown {identifier!r}; valid names: {', '.join(_NAMES)} "
        "(or a callable(tensor) -> tensor)"
    )


def name_of(identifier) -> str | None:
    """A short display name (``None`` for the identity)."""
    if identifier is None or identifier is linear or identifier == "linear":
        return None
    if isinstance(identifier, str):
        return identifier.lower()
    return getattr(identifier, "__name__", type(identifier).__name__).lstrip("_")
