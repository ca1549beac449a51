"""Convolution layers: Conv2D, DepthwiseConv2D, SeparableConv2D (Keras names and defaults).

Kernels are stored in PyTorch's layout ``(C_out, C_in/groups, kH, kW)`` because that is what
``F.conv2d`` consumes (Keras stores ``(kH, kW, C_in/groups, C_out)``).  ``padding="same"`` is
Keras'/TensorFlow's: output ``ceil(W/S)``, the odd padding pixel after; when that is asymmetric
the layer pads explicitly and convolves without padding.
"""

from __future__ import annotations

from .. import activations
from .. import functional as F
from ..graph.layer import Layer, check_channels
from ..graph.shapes import check_image_rank, fmt_shape, padding_arg, positive_pair, sliding_shape
from ..tensor import Tensor
from ._common import data_format_arg, positive_int, spatial_text, weight_args

_PAD_MODES = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
}


class _Conv(Layer):
    """Shared by the conv layers: window arguments, padding, layout conversion."""

    family = "conv"

    def _window_args(
        self,
        kernel_size,
        strides,
        padding,
        data_format,
        dilation_rate,
        activation,
        use_bias,
        padding_mode,
    ) -> None:
        w = self.where
        self.kernel_size = positive_pair(w, "kernel_size", kernel_size)
        self.strides = positive_pair(w, "strides", strides)
        self.padding = padding_arg(w, padding)
        self.data_format = data_format_arg(w, data_format)
        self.dilation_rate = positive_pair(w, "dilation_rate", dilation_rate)
        self.activation = activations.get(activation)
        self.activation_name = activations.name_of(activation)
        self.use_bias = bool(use_bias)
        if not isinstance(padding_mode, str) or padding_mode not in _PAD_MODES:
            raise ValueError(
                f"{w}: padding_mode must be one of {list(_PAD_MODES)}, got {padding_mode!r}"
            )
        self.padding_mode = padding_mode
        self._in_channels: int | None = None

    @property
    def channels_last(self) -> bool:
        return self.data_format == "channels_last"

    def _check_input(self, input_shape) -> int:
        check_image_rank(self.where, input_shape, self.channels_last)
        axis = 3 if self.channels_last else 1
        check_channels(self, input_shape, axis, self._in_channels, "channels")
        return int(input_shape[axis])

    def _window(self, input_shape):
        hw, pads = sliding_shape(
            self.where,
            input_shape,
            self.kernel_size,
            self.strides,
            self.padding,
            self.dilation_rate,
            channels_last=self.channels_last,
        )
        if self.padding_mode in ("reflect", "circular"):
            sizes = input_shape[1:3] if self.channels_last else input_shape[2:4]
            reflect = self.padding_mode == "reflect"
            for axis, size, (lo, hi) in zip(("height", "width"), sizes, pads):
                if max(lo, hi) >= size + (not reflect):
                    rule = "< the input size" if reflect else "<= the input size"
                    raise ValueError(
                        f"{self.where}: input shape {fmt_shape(input_shape)}: "
                        f'padding_mode="{self.padding_mode}" needs each padding {rule}, but the '
                        f"{axis} padding is ({lo}, {hi}) for an input {axis} of {size}. Use "
                        'padding_mode="zeros" or "replicate", less padding, or a larger input.'
                    )
        return hw, pads

    def _out_shape(self, input_shape, channels: int, hw) -> tuple:
        if self.channels_last:
            return (input_shape[0], hw[0], hw[1], channels)
        return (input_shape[0], channels, hw[0], hw[1])

    def _conv(self, x: Tensor, kernel: Tensor, bias, groups: int, padded: bool = True) -> Tensor:
        """``F.conv2d`` with this layer's strides/dilation and (if ``padded``) its padding."""
        pads = ((0, 0), (0, 0))
        if padded:
            _, pads = sliding_shape(
                self.where,
                x.shape,
                self.kernel_size,
                self.strides,
                self.padding,
                self.dilation_rate,
            )
        (t, b), (l, r) = pads
        padding = (t, l)
        if (t != b or l != r) and self.strides == (1, 1) and self.padding == "same":
            padding = "same"  # F.conv2d pads the odd pixel after, as Keras does, without a copy
        elif t != b or l != r:
            x = F.pad(x, (l, r, t, b), mode=_PAD_MODES[self.padding_mode])
            padding = (0, 0)
        return F.conv2d(
            x,
            kernel,
            bias,
            stride=self.strides,
            padding=padding,
            dilation=self.dilation_rate,
            groups=groups,
            padding_mode=self.padding_mode,
        )

    def _to_nchw(self, x: Tensor) -> Tensor:
        return x.permute(0, 3, 1, 2) if self.channels_last else x

    def _from_nchw(self, y: Tensor) -> Tensor:
        return y.permute(0, 2, 3, 1) if self.channels_last else y

    def _hw(self, output_shape) -> tuple[int, int]:
        return (
            (output_shape[1], output_shape[2])
            if self.channels_last
            else (output_shape[2], output_shape[3])
        )

    def _describe_window(self) -> str:
        kh, kw = self.kernel_size
        text = f"{kh}×{kw} {spatial_text(self.strides, self.padding)}"
        if self.dilation_rate != (1, 1):
            text += f" D={spatial_text(self.dilation_rate)}"
        return text

    def _activation_suffix(self) -> str:
        return f" {self.activation_name}" if self.activation_name else ""


class Conv2D(_Conv):
    """2-D convolution: Keras' ``Conv2D`` on NCHW tensors.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size, strides, dilation_rate : int or (int, int)
    padding : "valid", "same", int, (int, int) or ((top, bottom), (left, right))
    data_format : None/"channels_first" (NCHW) or "channels_last" (NHWC, converted here)
    groups : int
        Grouped convolution; ``filters`` and the input channels must divide by it.
    activation : str, callable or None
    use_bias : bool
    kernel_initializer, bias_initializer : str or callable
    kernel_regularizer, bias_regularizer, activity_regularizer : regularizer or None
    kernel_constraint, bias_constraint : constraint or None
    padding_mode : "zeros", "reflect", "replicate", "circular" (PyTorch's; not in Keras)

    Shape
    -----
    ``(N, C_in, H, W) -> (N, filters, H2, W2)`` with
    ``H2 = floor((H − F_eff + P_top + P_bottom)/S) + 1`` and ``F_eff = D·(F − 1) + 1``.
    Kernel ``(filters, C_in/groups, kH, kW)``, bias ``(filters,)``.
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        data_format: str | None = None,
        dilation_rate=(1, 1),
        groups: int = 1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        padding_mode: str = "zeros",
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        w = self.where
        self.filters = positive_int(w, "filters", filters)
        self.groups = positive_int(w, "groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"{w}: filters ({filters}) must be divisible by groups ({groups})")
        self._window_args(
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            padding_mode,
        )
        weight_args(
            self,
            activity_regularizer,
            kernel=(kernel_initializer, kernel_regularizer, kernel_constraint),
            bias=(bias_initializer, bias_regularizer, bias_constraint),
        )

    def compute_output_shape(self, input_shape):
        c_in = self._check_input(input_shape)
        if c_in % self.groups:
            raise ValueError(
                f"{self.where}: input shape {input_shape}: the {c_in} input channels are not "
                f"divisible by groups={self.groups}"
            )
        hw, _ = self._window(input_shape)
        return self._out_shape(input_shape, self.filters, hw)

    def build(self, input_shape) -> None:
        c_in = int(input_shape[3] if self.channels_last else input_shape[1])
        self._in_channels = c_in
        shape = (self.filters, c_in // self.groups, *self.kernel_size)
        self.kernel = self.add_weight(
            "kernel",
            shape,
            self.kernel_initializer,
            True,
            self.kernel_regularizer,
            self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                "bias",
                (self.filters,),
                self.bias_initializer,
                True,
                self.bias_regularizer,
                self.bias_constraint,
            )

    def call(self, x, training: bool = False):
        y = self._conv(self._to_nchw(x), self.kernel, self.bias, self.groups)
        return self._from_nchw(self.activation(y))

    def describe(self) -> str:
        g = f" G={self.groups}" if self.groups > 1 else ""
        return f"{self.filters}@{self._describe_window()}{g}{self._activation_suffix()}"

    def macs(self, input_shape, output_shape) -> int:
        h2, w2 = self._hw(output_shape)
        kh, kw = self.kernel_size
        return h2 * w2 * self.filters * (self._in_channels // self.groups) * kh * kw
