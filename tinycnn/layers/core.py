"""Core layers: Dense, Flatten, Reshape, Dropout, activations, ZeroPadding2D, Rescale."""

from __future__ import annotations

import math
import numbers

from .. import activations
from .. import functional as F
from ..graph.layer import Layer, check_channels
from ..graph.shapes import check_image_rank, fmt_shape, padding_arg
from ..ops.activation import clamp_max
from ..random import as_generator
from ._common import data_format_arg, positive_int, rate_arg, weight_args


class Dense(Layer):
    """Fully connected layer: ``y = activation(x @ kernel.T + bias)`` on the last axis.

    Parameters are Keras' (``units``, ``activation``, ``use_bias``, ``kernel_initializer``,
    ``bias_initializer``, ``kernel_regularizer``, ``bias_regularizer``, ``activity_regularizer``,
    ``kernel_constraint``, ``bias_constraint``).  The kernel is stored ``(units, in_features)``,
    PyTorch's layout for ``F.linear`` (Keras stores ``(in_features, units)``: transpose when
    porting weights).

    Shape
    -----
    ``(N, ..., in_features) -> (N, ..., units)``.
    """

    family = "dense"

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        w = self.where
        self.units = positive_int(w, "units", units)
        self.activation = activations.get(activation)
        self.activation_name = activations.name_of(activation)
        self.use_bias = bool(use_bias)
        weight_args(
            self,
            activity_regularizer,
            kernel=(kernel_initializer, kernel_regularizer, kernel_constraint),
            bias=(bias_initializer, bias_regularizer, bias_constraint),
        )
        self._in_features: int | None = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"{self.where}: expects (batch, features), got {input_shape}")
        check_channels(self, input_shape, -1, self._in_features, "features")
        return (*input_shape[:-1], self.units)

    def build(self, input_shape) -> None:
        n_in = int(input_shape[-1])
        self._in_features = n_in
        self.kernel = self.add_weight(
            "kernel",
            (self.units, n_in),
            self.kernel_initializer,
            True,
            self.kernel_regularizer,
            self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                "bias",
                (self.units,),
                self.bias_initializer,
                True,
                self.bias_regularizer,
                self.bias_constraint,
            )

    def call(self, x, training: bool = False):
        return self.activation(F.linear(x, self.kernel, self.bias))

    def describe(self) -> str:
        act = f" {self.activation_name}" if self.activation_name else ""
        return f"{self.units}{act}"

    def macs(self, input_shape, output_shape) -> int:
        return math.prod(int(s) for s in input_shape[1:]) * self.units


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1·d2·...)`` (C-order: channels outermost for NCHW)."""

    family = "reshape"

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"{self.where}: needs a batch dimension, got {input_shape}")
        return (input_shape[0], math.prod(int(s) for s in input_shape[1:]))

    def call(self, x, training: bool = False):
        return x.flatten(1)


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (without the batch; one entry may be -1)."""

    family = "reshape"

    def __init__(self, target_shape, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if not isinstance(target_shape, (tuple, list)) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in target_shape
        ):
            raise ValueError(
                f"{self.where}: target_shape must be a tuple of ints, got {target_shape!r}"
            )
        shape = tuple(int(s) for s in target_shape)
        if shape.count(-1) > 1 or any(s < 1 and s != -1 for s in shape):
            raise ValueError(
                f"{self.where}: target_shape {shape} may have one -1 and positive sizes otherwise"
            )
        self.target_shape = shape

    def compute_output_shape(self, input_shape):
        n = math.prod(int(s) for s in input_shape[1:])
        known = math.prod(s for s in self.target_shape if s != -1)
        if -1 in self.target_shape:
            if n % known:
                raise ValueError(
                    f"{self.where}: cannot reshape input shape {fmt_shape(input_shape)} ({n} "
                    f"values per sample) to {self.target_shape}: {n} is not divisible by {known}"
                )
            shape = tuple(n // known if s == -1 else s for s in self.target_shape)
        else:
            shape = self.target_shape
            if known != n:
                raise ValueError(
                    f"{self.where}: cannot reshape input shape {fmt_shape(input_shape)} ({n} "
                    f"values per sample) to {shape} ({known} values)"
                )
        return (input_shape[0], *shape)

    def call(self, x, training: bool = False):
        return x.reshape(x.shape[0], *self.compute_output_shape(x.shape)[1:])

    def describe(self) -> str:
        return "×".join(str(s) for s in self.target_shape)


class Dropout(Layer):
    """Zero each value with probability ``rate`` while training (scaling the rest by
    ``1/(1 − rate)``); the identity otherwise.  ``seed`` makes the masks repeat."""

    family = "dropout"

    def __init__(
        self, rate: float, seed: int | None = None, name: str | None = None, trainable: bool = True
    ):
        super().__init__(name=name, trainable=trainable)
        self.rate = rate_arg(self.where, "rate", rate)
        self.seed = seed
        try:
            self._rng = None if seed is None else as_generator(seed)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{self.where}: seed: {e}") from None

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, x, training: bool = False):
        if not training or self.rate == 0.0:
            return x
        return F.dropout(x, self.rate, True, generator=self._rng)

    def describe(self) -> str:
        return f"{self.rate:g}"


def _non_negative(v, inf: bool = False) -> bool:
    """A number >= 0 (not a bool, not NaN; infinite only with ``inf``)."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not v >= 0:
        return False
    return inf or math.isfinite(v)


class _Elementwise(Layer):
    family = "activation"

    def compute_output_shape(self, input_shape):
        return input_shape


class Activation(_Elementwise):
    """Apply an activation by name (``"relu"``, ``"tanh"``, ...) or a callable."""

    def __init__(self, activation, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        try:
            self.activation = activations.get(activation)
        except ValueError as e:
            raise ValueError(f"{self.where}: {e}") from None
        self.activation_name = activations.name_of(activation) or "linear"

    def call(self, x, training: bool = False):
        return self.activation(x)

    def describe(self) -> str:
        return self.activation_name


class ReLU(_Elementwise):
    """``max(x, 0)``; ``negative_slope`` makes it leaky, ``max_value`` caps it (ReLU6)."""

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        for arg, v in (("max_value", max_value), ("negative_slope", negative_slope)):
            if (v is not None or arg == "negative_slope") and not _non_negative(
                v, inf=arg == "max_value"
            ):
                raise ValueError(f"{self.where}: {arg} must be a number >= 0, got {v!r}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)

    def call(self, x, training: bool = False):
        if self.max_value is not None and not self.negative_slope:
            return F.hardtanh(x, 0.0, self.max_value)
        y = F.leaky_relu(x, self.negative_slope) if self.negative_slope else F.relu(x)
        if self.max_value is not None:
            y = clamp_max(y, self.max_value)
        return y

    def describe(self) -> str:
        parts = []
        if self.negative_slope:
            parts.append(f"slope={self.negative_slope:g}")
        if self.max_value is not None:
            parts.append(f"max={self.max_value:g}")
        return " ".join(parts)


class LeakyReLU(_Elementwise):
    """``x if x > 0 else negative_slope·x`` (Keras 3's default slope 0.3)."""

    def __init__(
        self, negative_slope: float = 0.3, name: str | None = None, trainable: bool = True
    ):
        super().__init__(name=name, trainable=trainable)
        if not _non_negative(negative_slope):
            raise ValueError(
                f"{self.where}: negative_slope must be a finite number >= 0, got {negative_slope!r}"
            )
        self.negative_slope = float(negative_slope)

    def call(self, x, training: bool = False):
        return F.leaky_relu(x, self.negative_slope)

    def describe(self) -> str:
        return f"slope={self.negative_slope:g}"


class Softmax(_Elementwise):
    """Softmax over ``axis`` (Keras' default: the last)."""

    def __init__(self, axis: int = -1, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool) or axis == 0:
            raise ValueError(
                f"{self.where}: axis must be a non-batch axis (int != 0), got {axis!r}"
            )
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        if (
            not -len(input_shape) <= self.axis < len(input_shape)
            or self.axis % len(input_shape) == 0
        ):
            raise ValueError(
                f"{self.where}: axis {self.axis} is not a non-batch axis of input "
                f"shape {fmt_shape(input_shape)}"
            )
        return input_shape

    def call(self, x, training: bool = False):
        return F.softmax(x, dim=self.axis)

    def describe(self) -> str:
        return "" if self.axis == -1 else f"axis={self.axis}"


class Rescale(_Elementwise):
    """``x · scale + offset`` with constants (Inception-ResNet's residual scaling)."""

    family = "arith"

    def __init__(
        self, scale: float, offset: float = 0.0, name: str | None = None, trainable: bool = True
    ):
        super().__init__(name=name, trainable=trainable)
        for arg, v in (("scale", scale), ("offset", offset)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{self.where}: {arg} must be a finite number, got {v!r}")
        self.scale, self.offset = float(scale), float(offset)

    def call(self, x, training: bool = False):
        y = x * self.scale
        return y + self.offset if self.offset else y

    def describe(self) -> str:
        return f"×{self.scale:g}" + (f" +{self.offset:g}" if self.offset else "")


Rescaling = Rescale


class ZeroPadding2D(Layer):
    """Pad height and width with zeros: ``padding`` is an int, ``(h, w)`` or
    ``((top, bottom), (left, right))``.

    Shape
    -----
    ``(N, C, H, W) -> (N, C, H + top + bottom, W + left + right)``.
    """

    family = "reshape"

    def __init__(
        self,
        padding=(1, 1),
        data_format: str | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        if isinstance(padding, str):
            raise ValueError(f"{self.where}: padding must be an int or pairs, got {padding!r}")
        self.padding = padding_arg(self.where, padding)
        self.data_format = data_format_arg(self.where, data_format)

    def compute_output_shape(self, input_shape):
        last = self.data_format == "channels_last"
        check_image_rank(self.where, input_shape, last)
        (t, b), (l, r) = self.padding
        if last:
            n, h, w, c = input_shape
            return (n, h + t + b, w + l + r, c)
        n, c, h, w = input_shape
        return (n, c, h + t + b, w + l + r)

    def call(self, x, training: bool = False):
        (t, b), (l, r) = self.padding
        if self.data_format == "channels_last":
            return F.pad(x, (0, 0, l, r, t, b))
        return F.pad(x, (l, r, t, b))

    def describe(self) -> str:
        (t, b), (l, r) = self.padding
        return f"P={t}" if len({t, b, l, r}) == 1 else f"P=({t},{b},{l},{r})"
