"""Argument checks shared by the ops.  Every message names the op, the argument and the rule."""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..tensor import Tensor


def pair(op: str, name: str, value: Any, minimum: int | None = None) -> tuple[int, int]:
    """``value`` as an ``(h, w)`` pair of ints, each ``>= minimum`` when given."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        result = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        result = tuple(value)
    else:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    for v in result:
        if isinstance(v, float) and math.isnan(v):
            raise ValueError(f"{op}: {name} is NaN")
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
        if minimum is not None and v < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(result[0]), int(result[1])


def number(op: str, name: str, value: Any, low=None, high=None, low_open=False) -> float:
    """A real hyper-parameter: not NaN, within ``[low, high]`` (``(low, high]`` if low_open)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{op}: {name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{op}: {name} is NaN")
    if low is not None and (value <= low if low_open else value < low):
        rule = ">" if low_open else ">="
        raise ValueError(f"{op}: {name} must be {rule} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{op}: {name} must be <= {high}, got {value}")
    return value


def tensor_arg(
    op: str, name: str, value: Any, ndim: int | tuple[int, ...] | None = None, layout: str = ""
) -> Tensor:
    """``value`` must be a Tensor of the given rank(s)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a tinycnn Tensor, got {type(value).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if value.ndim not in allowed:
            want = " or ".join(f"{d}-d" for d in allowed)
            hint = f" ({layout})" if layout else ""
            raise ValueError(f"{op}: {name} must be {want}{hint}, got shape {value.shape}")
    return value


def output_size(
    op: str,
    axis: str,
    size: int,
    kernel: int,
    padding: int,
    stride: int,
    dilation: int = 1,
    ceil_mode: bool = False,
    pad_right: int | None = None,
) -> int:
    """The seed's formula ``floor((W - F + 2P)/S) + 1`` with dilation (effective
    ``F = d*(k-1)+1``) and ``ceil`` when ``ceil_mode``; raises when it is < 1."""
    pad_right = padding if pad_right is None else pad_right
    eff = dilation * (kernel - 1) + 1
    span = size + padding + pad_right - eff
    if ceil_mode:
        out = -(-span // stride) + 1
        # PyTorch: the last window must start inside the input or the left padding
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    if out < 1:  # ceil_mode: PyTorch accepts a span down to -(stride - 1)
        pad_txt = f"2*{padding}" if pad_right == padding else f"{padding}+{pad_right}"
        f_txt = f"{eff}" if dilation == 1 else f"{eff} (= {dilation}*({kernel}-1)+1)"
        value = (span / stride) + 1
        raise ValueError(
            f"{op}: output {axis} ({size} - {eff} + {pad_txt})/{stride} + 1 = {value:g} is < 1 "
            f"(input {size}, kernel {f_txt}, padding {padding}, stride {stride}); the kernel is "
            f"larger than the padded input: use a smaller kernel or stride, or more padding"
        )
    return int(out)


def not_differentiable(op: str, name: str, t: Tensor | None, why: str = "") -> None:
    """PyTorch's rule: an argument the op has no gradient for must not require one (it would
    silently get no ``.grad``).  ``why``: the reason, when it is not just the op's math."""
    from ..autograd import is_grad_enabled

    if t is not None and t.requires_grad and is_grad_enabled():
        reason = why or f"{op} is not differentiable with respect to {name}"
        raise ValueError(f"{op}: {name} requires grad, but {reason}; pass {name}.detach()")
