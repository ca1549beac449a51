"""Depthwise and depthwise-separable convolutions (MobileNet, Xception), Keras' names.

Kernels in PyTorch's layout: the depthwise kernel is ``(C·depth_multiplier, 1, kH, kW)`` run as a
grouped convolution with ``groups = C`` (Keras stores ``(kH, kW, C, depth_multiplier)``).
"""

from __future__ import annotations

from .. import functional as F
from ._common import positive_int, weight_args
from .conv import _Conv


class DepthwiseConv2D(_Conv):
    """Depthwise 2-D convolution: each input channel convolved with ``depth_multiplier`` kernels
    of its own (``groups = C_in``).

    Shape
    -----
    ``(N, C, H, W) -> (N, C·depth_multiplier, H2, W2)``; kernel ``(C·depth_multiplier, 1, kH,
    kW)`` (Keras: ``(kH, kW, C, depth_multiplier)``).
    """

    def __init__(
        self,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate=(1, 1),
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        bias_constraint=None,
        padding_mode: str = "zeros",
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        w = self.where
        self.depth_multiplier = positive_int(w, "depth_multiplier", depth_multiplier)
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
            depthwise=(depthwise_initializer, depthwise_regularizer, depthwise_constraint),
            bias=(bias_initializer, bias_regularizer, bias_constraint),
        )

    def compute_output_shape(self, input_shape):
        c_in = self._check_input(input_shape)
        hw, _ = self._window(input_shape)
        return self._out_shape(input_shape, c_in * self.depth_multiplier, hw)

    def build(self, input_shape) -> None:
        c_in = int(input_shape[3] if self.channels_last else input_shape[1])
        self._in_channels = c_in
        kh, kw = self.kernel_size
        # Keras' fans for its (kH, kW, C, multiplier) kernel
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel",
            (c_in * self.depth_multiplier, 1, kh, kw),
            self.depthwise_initializer,
            True,
            self.depthwise_regularizer,
            self.depthwise_constraint,
            fan_in=c_in * kh * kw,
            fan_out=self.depth_multiplier * kh * kw,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                "bias",
                (c_in * self.depth_multiplier,),
                self.bias_initializer,
                True,
                self.bias_regularizer,
                self.bias_constraint,
            )

    def call(self, x, training: bool = False):
        y = self._conv(self._to_nchw(x), self.depthwise_kernel, self.bias, self._in_channels)
        return self._from_nchw(self.activation(y))

    def describe(self) -> str:
        m = f"×{self.depth_multiplier}" if self.depth_multiplier > 1 else ""
        return f"dw{m} {self._describe_window()}{self._activation_suffix()}"

    def macs(self, input_shape, output_shape) -> int:
        h2, w2 = self._hw(output_shape)
        kh, kw = self.kernel_size
        return h2 * w2 * self._in_channels * self.depth_multiplier * kh * kw


class SeparableConv2D(_Conv):
    """Depthwise-separable convolution (Xception): a depthwise conv, then a 1×1 conv.

    Shape
    -----
    ``(N, C, H, W) -> (N, filters, H2, W2)``; weights ``depthwise_kernel (C·m, 1, kH, kW)``,
    ``pointwise_kernel (filters, C·m, 1, 1)``, ``bias (filters,)``.
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        data_format: str | None = None,
        dilation_rate=(1, 1),
        depth_multiplier: int = 1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        bias_constraint=None,
        padding_mode: str = "zeros",
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        w = self.where
        self.filters = positive_int(w, "filters", filters)
        self.depth_multiplier = positive_int(w, "depth_multiplier", depth_multiplier)
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
            depthwise=(depthwise_initializer, depthwise_regularizer, depthwise_constraint),
            pointwise=(pointwise_initializer, pointwise_regularizer, pointwise_constraint),
            bias=(bias_initializer, bias_regularizer, bias_constraint),
        )
        self._inits = (depthwise_initializer, pointwise_initializer, bias_initializer)
        self._regs = (depthwise_regularizer, pointwise_regularizer, bias_regularizer)
        self._cons = (depthwise_constraint, pointwise_constraint, bias_constraint)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        hw, _ = self._window(input_shape)
        return self._out_shape(input_shape, self.filters, hw)

    def build(self, input_shape) -> None:
        c_in = int(input_shape[3] if self.channels_last else input_shape[1])
        self._in_channels = c_in
        kh, kw = self.kernel_size
        mid = c_in * self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel",
            (mid, 1, kh, kw),
            self._inits[0],
            True,
            self._regs[0],
            self._cons[0],
            fan_in=c_in * kh * kw,
            fan_out=self.depth_multiplier * kh * kw,
        )
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel",
            (self.filters, mid, 1, 1),
            self._inits[1],
            True,
            self._regs[1],
            self._cons[1],
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                "bias", (self.filters,), self._inits[2], True, self._regs[2], self._cons[2]
            )

    def call(self, x, training: bool = False):
        y = self._conv(self._to_nchw(x), self.depthwise_kernel, None, self._in_channels)
        y = F.conv2d(y, self.pointwise_kernel, self.bias)
        return self._from_nchw(self.activation(y))

    def describe(self) -> str:
        return f"{self.filters}@{self._describe_window()}{self._activation_suffix()}"

    def macs(self, input_shape, output_shape) -> int:
        h2, w2 = self._hw(output_shape)
        kh, kw = self.kernel_size
        mid = self._in_channels * self.depth_multiplier
        return h2 * w2 * mid * (kh * kw + self.filters)
