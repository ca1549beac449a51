"""Argument checks and display helpers shared by the layers."""

from __future__ import annotations

import numbers
from typing import Any

from .. import constraints, init, regularizers


def positive_int(where: str, name: str, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return int(value)


def rate_arg(where: str, name: str, value: Any, high_open: bool = True) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")
    value = float(value)
    if not (0.0 <= value < 1.0 if high_open else 0.0 <= value <= 1.0):
        rule = "[0, 1)" if high_open else "[0, 1]"
        raise ValueError(f"{where}: {name} must be in {rule}, got {value}")
    return value


def data_format_arg(where: str, data_format: str | None) -> str:
    if data_format is None:
        return "channels_first"
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            f'{where}: data_format must be "channels_first" (NCHW, the default) or '
            f'"channels_last" (NHWC), got {data_format!r}'
        )
    return data_format


def check_args(where: str, initializers=None, regularizers_=None, constraints_=None) -> None:
    """Fail at construction, not at the first call, on an unknown initializer, regularizer or
    constraint (each a dict ``argument name -> value``)."""
    for getter, named in (
        (init.get, initializers),
        (regularizers.get, regularizers_),
        (constraints.get, constraints_),
    ):
        for arg, value in (named or {}).items():
            if value is None and getter is init.get:
                raise ValueError(f"{where}: {arg} must be a name or a callable, got None")
            try:
                getter(value)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{where}: {arg}: {e}") from None


def weight_args(layer, activity_regularizer, **weights) -> None:
    """:func:`check_args` on a layer's weight arguments, each then kept as its attribute of
    that name: ``kernel=(initializer, regularizer, constraint)`` gives ``kernel_initializer``,
    ``kernel_regularizer`` and ``kernel_constraint``; ``activity_regularizer`` is kept
    resolved, as the layer applies it itself."""
    named = ({}, {"activity_regularizer": activity_regularizer}, {})
    for weight, values in weights.items():
        for kind, suffix, value in zip(named, ("initializer", "regularizer", "constraint"), values):
            kind[f"{weight}_{suffix}"] = value
    check_args(layer.where, *named)
    for kind in named:
        for arg, value in kind.items():
            setattr(layer, arg, value)
    layer.activity_regularizer = regularizers.get(activity_regularizer)


def spatial_text(values, padding: Any = None) -> str:
    """``S=2 P=same``, ``S=2×1``, ``S=1 P=0``: how diagrams and explain show windows."""

    def one(pair) -> str:
        return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}×{pair[1]}"

    text = one(values)
    if padding is None:
        return text
    if isinstance(padding, str):
        p = "0" if padding == "valid" else padding
    else:
        (t, b), (l, r) = padding
        p = one((t, l)) if (t == b and l == r) else f"({t},{b},{l},{r})"
    return f"S={text} P={p}"
