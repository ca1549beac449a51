"""Pooling layers: MaxPool2D, AveragePooling2D, GlobalAveragePooling2D.

``padding="same"`` is Keras': output ``ceil(W/S)``; padded positions never win a max and are not
counted in an average (``count_include_pad=False``), which is what the TensorFlow-trained Inception
models assume.  Explicit int padding follows PyTorch (``count_include_pad=True`` by default).
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..graph.layer import Layer
from ..graph.shapes import check_image_rank, padding_arg, positive_pair, sliding_shape
from ..tensor import Tensor
from ._common import data_format_arg, spatial_text


class _Pool2D(Layer):
    family = "pool"

    def __init__(
        self,
        pool_size=(2, 2),
        strides=None,
        padding="valid",
        data_format: str | None = None,
        ceil_mode: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        w = self.where
        self.pool_size = positive_pair(w, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else positive_pair(w, "strides", strides)
        self.padding = padding_arg(w, padding)
        self.data_format = data_format_arg(w, data_format)
        self.ceil_mode = bool(ceil_mode)
        if self.ceil_mode and self.padding == "same":
            raise ValueError(f'{w}: ceil_mode applies to "valid" or explicit padding, not "same"')
        if not isinstance(self.padding, str):
            (t, b), (l, r) = self.padding
            kh, kw = self.pool_size
            if max(t, b) > kh // 2 or max(l, r) > kw // 2:
                raise ValueError(
                    f"{w}: padding {padding!r} is more than half the {kh}×{kw} pool: a window "
                    "could hold only padding (PyTorch's rule: padding <= pool_size // 2)"
                )

    @property
    def channels_last(self) -> bool:
        return self.data_format == "channels_last"

    def compute_output_shape(self, input_shape):
        check_image_rank(self.where, input_shape, self.channels_last)
        (h2, w2), _ = sliding_shape(
            self.where,
            input_shape,
            self.pool_size,
            self.strides,
            self.padding,
            ceil_mode=self.ceil_mode,
            channels_last=self.channels_last,
            what="pool",
        )
        if self.channels_last:
            return (input_shape[0], h2, w2, input_shape[3])
        return (input_shape[0], input_shape[1], h2, w2)

    def _window(self, x: Tensor):
        """``((H2, W2), ((top, bottom), (left, right)))`` of an NCHW input."""
        return sliding_shape(
            self.where,
            x.shape,
            self.pool_size,
            self.strides,
            self.padding,
            ceil_mode=self.ceil_mode,
            what="pool",
        )

    @staticmethod
    def _crop(y: Tensor, hw) -> Tensor:
        """``y`` cut to ``hw``: with ``ceil_mode``, a pool over an input padded beforehand counts
        the last window from the padded edge; keep the windows that start inside the input or
        the left padding, as the shape rule (and PyTorch) does."""
        return y if y.shape[2:] == tuple(hw) else y[:, :, : hw[0], : hw[1]]

    def call(self, x, training: bool = False):
        if self.channels_last:
            return self._pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self._pool(x)

    def describe(self) -> str:
        kh, kw = self.pool_size
        text = f"{kh}×{kw} {spatial_text(self.strides, self.padding)}"
        return text.replace(" P=0", "") + (" ceil" if self.ceil_mode else "")


class MaxPool2D(_Pool2D):
    """Max pooling (Keras' ``MaxPooling2D``; ``ceil_mode`` as PyTorch's).

    Shape
    -----
    ``(N, C, H, W) -> (N, C, H2, W2)``, ``H2 = floor((H − F + P_top + P_bottom)/S) + 1``
    (``ceil`` with ``ceil_mode``; ``ceil(H/S)`` with ``padding="same"``).
    """

    def _pool(self, x: Tensor) -> Tensor:
        hw, ((t, b), (l, r)) = self._window(x)
        if t != b or l != r:
            y = F.pad(x, (l, r, t, b), value=-np.inf)
            y = F.max_pool2d(y, self.pool_size, self.strides, ceil_mode=self.ceil_mode)
            return self._crop(y, hw)
        return F.max_pool2d(x, self.pool_size, self.strides, (t, l), ceil_mode=self.ceil_mode)


class AveragePooling2D(_Pool2D):
    """Average pooling (Keras' ``AveragePooling2D``).

    ``count_include_pad``: whether padded zeros count in the divisor; default ``False`` for
    ``padding="same"`` (Keras) and ``True`` for explicit padding (PyTorch).

    Shape
    -----
    As :class:`MaxPool2D`.
    """

    def __init__(
        self,
        pool_size=(2, 2),
        strides=None,
        padding="valid",
        data_format: str | None = None,
        ceil_mode: bool = False,
        count_include_pad: bool | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(pool_size, strides, padding, data_format, ceil_mode, name, trainable)
        if count_include_pad is None:
            count_include_pad = self.padding != "same"
        self.count_include_pad = bool(count_include_pad)
        self._scales: dict = {}

    def _pool(self, x: Tensor) -> Tensor:
        hw, ((t, b), (l, r)) = self._window(x)
        if t == b and l == r:
            return F.avg_pool2d(
                x,
                self.pool_size,
                self.strides,
                (t, l),
                ceil_mode=self.ceil_mode,
                count_include_pad=self.count_include_pad,
            )
        y = F.avg_pool2d(
            F.pad(x, (l, r, t, b)), self.pool_size, self.strides, ceil_mode=self.ceil_mode
        )
        y = self._crop(y, hw)
        if self.count_include_pad:
            return y
        return y * self._divisor_fix(x, y, (t, b), (l, r))

    def _divisor_fix(self, x: Tensor, y: Tensor, pad_h, pad_w) -> Tensor:
        """``kH·kW / (real pixels in each window)``: turns the padded average into one over the
        input pixels only (a constant, so the tape just scales the gradient)."""
        key = (x.shape[2:], y.shape[2:], x.dtype, x.device)
        if key not in self._scales:
            counts = []
            for size, out, k, s, (lo, _) in zip(
                x.shape[2:], y.shape[2:], self.pool_size, self.strides, (pad_h, pad_w)
            ):
                start = np.arange(out) * s - lo
                counts.append(np.minimum(start + k, size) - np.maximum(start, 0))
            scale = math.prod(self.pool_size) / np.outer(counts[0], counts[1])
            self._scales[key] = Tensor(scale.astype(x.dtype)[None, None], device=x.device)
        return self._scales[key]


MaxPooling2D = MaxPool2D
AvgPool2D = AveragePooling2D


class GlobalAveragePooling2D(Layer):
    """The mean over height and width: ``(N, C, H, W) -> (N, C)`` (``(N, C, 1, 1)`` with
    ``keepdims=True``)."""

    family = "pool"

    def __init__(
        self,
        data_format: str | None = None,
        keepdims: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.data_format = data_format_arg(self.where, data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        last = self.data_format == "channels_last"
        check_image_rank(self.where, input_shape, last)
        n, c = input_shape[0], input_shape[3 if last else 1]
        if not self.keepdims:
            return (n, c)
        return (n, 1, 1, c) if last else (n, c, 1, 1)

    def call(self, x, training: bool = False):
        dims = (1, 2) if self.data_format == "channels_last" else (2, 3)
        return x.mean(dim=dims, keepdim=self.keepdims)
