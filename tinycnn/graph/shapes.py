"""Pure shape rules shared by the layers, the error messages and ``explain``.

Nothing here touches a kernel: a model's shapes are known the moment it is written, and every
rule that can fail says which layer, which input shape, the formula with its numbers and the fix.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

Shape = tuple  # (None | int, ...): the batch dimension first, ``None`` when symbolic


def fmt_shape(shape: Shape) -> str:
    """``(None, 6, 28, 28)``: Keras' way of printing a shape."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


def hwc(shape: Shape, channels_last: bool = False) -> str:
    """A sample's shape the way the seed writes it: ``28×28×6`` (height × width × channels)."""
    dims = [int(s) for s in shape[1:]]
    if len(dims) == 3 and not channels_last:
        dims = dims[1:] + dims[:1]
    return "×".join(str(d) for d in dims) if dims else "scalar"


def positive_pair(where: str, name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each ``>= minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        result = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        result = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{where}: {name} must be an int or a pair of ints, got {value!r}")
    if min(result) < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return result


def padding_arg(where: str, padding: Any) -> Any:
    """Normalise ``padding``: "valid" | "same" | ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        p = padding.lower()
        if p not in ("valid", "same"):
            raise ValueError(
                f'{where}: padding must be "valid", "same", an int or a pair, got {padding!r}'
            )
        return p
    if (
        isinstance(padding, (tuple, list))
        and len(padding) == 2
        and any(isinstance(v, (tuple, list)) for v in padding)
    ):
        if not all(isinstance(v, (tuple, list)) and len(v) == 2 for v in padding):
            raise ValueError(
                f"{where}: padding as pairs must be ((top, bottom), (left, right)), got {padding!r}"
            )
        (t, b), (l, r) = padding
        for v in (t, b, l, r):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{where}: padding must hold ints >= 0, got {padding!r}")
        return ((int(t), int(b)), (int(l), int(r)))
    ph, pw = positive_pair(where, "padding", padding, minimum=0)
    return ((ph, ph), (pw, pw))


def same_pads(size: int, eff_kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow/Keras "same": output ``ceil(size / stride)``; the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + eff_kernel - size, 0)
    return total // 2, total - total // 2


def resolve_pads(padding: Any, size: int, eff_kernel: int, stride: int, axis: int):
    """(before, after) padding of one spatial axis (0 = height, 1 = width)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return same_pads(size, eff_kernel, stride)
    return padding[axis]


def window_out(size: int, eff: int, stride: int, lo: int, hi: int, ceil_mode: bool = False):
    """Output length of a sliding window (PyTorch's rule, ``ceil_mode`` included)."""
    span = size + lo + hi - eff
    if span < 0 and not (ceil_mode and span > -stride):
        return None  # (with ceil_mode a window may hang past the padded edge, as in PyTorch)
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + lo:  # the last window must start inside input/left pad
            out -= 1
        return out
    return span // stride + 1


def axis_formula(
    axis: str,
    size: int,
    kernel: int,
    stride: int,
    lo: int,
    hi: int,
    out: int | float,
    ceil_mode: bool = False,
    show_zero_pad: bool = True,
) -> str:
    """The seed's rule with its numbers: ``W2 = (32 − 5 + 2·0)/1 + 1 = 28``."""
    if lo == hi:
        pad = f" + 2·{lo}" if (lo or show_zero_pad) else ""
    else:
        pad = f" + {lo} + {hi}"
    inner = f"{size} − {kernel}{pad}"
    exact = (size + lo + hi - kernel) % stride == 0
    if stride == 1:
        body = f"({inner})/1"
    elif exact:
        body = f"({inner})/{stride}"
    else:
        body = f"⌈({inner})/{stride}⌉" if ceil_mode else f"⌊({inner})/{stride}⌋"
    value = f"{out:g}" if isinstance(out, float) else str(out)
    if ceil_mode and not exact and stride > 1:
        full = -(-(size + lo + hi - kernel) // stride) + 1
        if isinstance(out, int) and out == full - 1:  # PyTorch's rule, as window_out applies it
            return (
                f"{axis}2 = {body} + 1 − 1 = {value} (the last window would start in the "
                "right padding: dropped)"
            )
    return f"{axis}2 = {body} + 1 = {value}"


def sliding_shape(
    where: str,
    input_shape: Shape,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    padding: Any,
    dilation: tuple[int, int] = (1, 1),
    ceil_mode: bool = False,
    channels_last: bool = False,
    what: str = "kernel",
) -> tuple[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]:
    """``((H2, W2), ((top, bottom), (left, right)))`` for a conv/pool window; a ValueError with
    the seed's formula and the fix when the window does not fit."""
    h, w = (input_shape[1], input_shape[2]) if channels_last else (input_shape[2], input_shape[3])
    outs, pads = [], []
    for axis, size, k, s, d in zip(("H", "W"), (h, w), kernel, strides, dilation):
        eff = d * (k - 1) + 1
        lo, hi = resolve_pads(padding, size, eff, s, 0 if axis == "H" else 1)
        out = window_out(size, eff, s, lo, hi, ceil_mode)
        if out is None or out < 1:
            span = size + lo + hi - eff
            value = (-(-span // s) if ceil_mode else span // s) + 1
            rule = axis_formula(axis, size, eff, s, lo, hi, value, ceil_mode)
            k_txt = f"{kernel[0]}×{kernel[1]}"
            if dilation != (1, 1):
                k_txt += f" (dilated to {eff} along {axis})"
            raise ValueError(
                f"{where}: input shape {fmt_shape(input_shape)}: {rule} is < 1 — the {k_txt} "
                f'{what} is larger than the padded {h}×{w} input. Use padding="same" '
                f"(keeps {-(-h // strides[0])}×{-(-w // strides[1])}), a smaller "
                f"{what}_size or strides, or a larger input."
            )
        outs.append(out)
        pads.append((lo, hi))
    return (outs[0], outs[1]), (pads[0], pads[1])


def check_rank(where: str, input_shape: Shape, rank: int, layout: str, hint: str = "") -> None:
    """The input (batch included) must have ``rank`` dimensions."""
    if len(input_shape) != rank:
        extra = f" {hint}" if hint else ""
        raise ValueError(
            f"{where}: expects a {rank}-d input {layout} (batch included), got input shape "
            f"{fmt_shape(input_shape)} ({len(input_shape)}-d).{extra}"
        )


def check_image_rank(where: str, input_shape: Shape, channels_last: bool = False) -> None:
    """An image layer's input must be 4-d; the hint names the likely cause: no channel axis
    (3-d: the fix with the input's own numbers), or flat features from a Dense/Flatten (2-d)."""
    layout = (
        "(batch, height, width, channels)" if channels_last else "(batch, channels, height, width)"
    )
    hint = ""
    if len(input_shape) == 3:
        h, w = input_shape[1], input_shape[2]
        one = f"{h}, {w}, 1" if channels_last else f"1, {h}, {w}"
        add = "x[..., None]" if channels_last else "x[:, None]"
        hint = (
            f"A 3-d input has height and width but no channel axis: for one-channel images use "
            f"Input(({one})) and data of shape (N, {one}) ({add}); after a layer, "
            f"Reshape(({one}))."
        )
    elif len(input_shape) == 2:
        hint = "Flatten/Reshape comes after convolutions, not before."
    check_rank(where, input_shape, 4, layout, hint)


def num_elements(shape: Shape) -> int:
    """Elements of one sample (the batch dimension excluded)."""
    return math.prod(int(s) for s in shape[1:])


def input_shape_hint(got: tuple, sample: tuple) -> str:
    """Why a batch of shape ``got`` does not fit a model's samples of shape ``sample``, and the
    fix, as ``"; ..."`` (empty when there is no likely reason)."""
    got, sample = tuple(got), tuple(sample)
    if got == sample:
        return "; that is one sample without its batch axis: pass x[None]"
    if len(got) != len(sample) + 1 or len(sample) != 3:
        return ""
    for order, what in (((0, 3, 1, 2), "last"), ((0, 2, 3, 1), "first")):
        if tuple(got[k] for k in order[1:]) == sample:
            other = "first" if what == "last" else "last"
            return (
                f"; its channels are {what} but the model takes them {other}: pass "
                f"x.transpose{order} (a NumPy array; x.permute{order} for a Tensor)"
            )
    if got[2:] == (28, 28) and sample[1:] == (32, 32):
        return "; 28x28 MNIST for a 32x32 model: load_mnist(pad_to_32=True)"
    if got[1] == sample[0] or got[3] == sample[2]:
        return (
            "; the image size differs: resize or pad the images, or build the model for theirs "
            "(zoo builders take input_shape=...)"
        )
    return ""
