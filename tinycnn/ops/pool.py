"""Pooling with PyTorch's semantics: ``max_pool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d``.

Inputs are NCHW or CHW (as in PyTorch); the kernels see ``(planes, H, W)``.  Forward and backward
are written once here over the back end's array functions and the ``pool`` kernels of the device
(``tinycnn/ops/<device>/pool.py``).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import numpy as np

from ..autograd import Function
from ..device import get_backend, get_kernels
from ..tensor import Tensor
from ._validate import output_size, pair, tensor_arg

_AXES = ("height", "width")


# ------------------------------------------------------------------------------ the Functions
def _planes(a, H: int, W: int):
    """``a`` (..., H, W) as a contiguous (planes, H, W) array (no -1: sizes may be 0)."""
    return a.reshape((math.prod(a.shape[:-2]), H, W))


class MaxPool2d(Function):
    """``sink``: a list that receives the int32 argmax indices (for ``return_indices``)."""

    def forward(self, x, kernel, stride, padding, dilation, out_hw, sink):
        B = get_backend(self.device)
        K = get_kernels(self.device, "pool")
        x = B.contiguous(x)
        shape = tuple(x.shape)
        (H, W), (OH, OW) = shape[-2:], out_hw
        out = B.empty(shape[:-2] + out_hw, x.dtype)
        indices = B.empty(shape[:-2] + out_hw, K.INDEX_DTYPE)
        K.max_pool2d_forward(
            _planes(x, H, W), *kernel, *stride, *padding, *dilation,
            _planes(out, OH, OW), _planes(indices, OH, OW),
        )  # fmt: skip
        if any(self.needs_input_grad):
            self.indices, self.in_shape = indices, shape
        if sink is not None:
            sink.append(indices)
        return out

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "pool")
        g = B.contiguous(g)
        (H, W), (OH, OW) = self.in_shape[-2:], g.shape[-2:]
        grad = B.empty(self.in_shape, g.dtype)
        K.max_pool2d_backward(
            _planes(g, OH, OW), _planes(self.indices, OH, OW), _planes(grad, H, W)
        )
        return (grad,)


class AvgPool2d(Function):
    """``scale``: the (OH, OW) array of 1/divisor, on the device, in the input's dtype."""

    def forward(self, x, kernel, stride, padding, scale):
        B = get_backend(self.device)
        K = get_kernels(self.device, "pool")
        x = B.contiguous(x)
        shape = tuple(x.shape)
        (H, W), (OH, OW) = shape[-2:], scale.shape
        out = B.empty(shape[:-2] + (OH, OW), x.dtype)
        K.avg_pool2d_forward(
            _planes(x, H, W), *kernel, *stride, *padding, scale, _planes(out, OH, OW)
        )
        self.params = (kernel, stride, padding, scale)
        self.in_shape = shape
        return out

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "pool")
        g = B.contiguous(g)
        kernel, stride, padding, scale = self.params
        (H, W), (OH, OW) = self.in_shape[-2:], g.shape[-2:]
        grad = B.empty(self.in_shape, g.dtype)
        K.avg_pool2d_backward(
            _planes(g, OH, OW), *kernel, *stride, *padding, scale, _planes(grad, H, W)
        )
        return (grad,)


class AdaptiveAvgPool2d(Function):
    def forward(self, x, out_hw):
        B = get_backend(self.device)
        K = get_kernels(self.device, "pool")
        x = B.contiguous(x)
        self.in_shape = shape = tuple(x.shape)
        (H, W), (OH, OW) = shape[-2:], out_hw
        out = B.empty(shape[:-2] + out_hw, x.dtype)
        K.adaptive_avg_pool2d_forward(_planes(x, H, W), _planes(out, OH, OW))
        return out

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "pool")
        g = B.contiguous(g)
        (H, W), (OH, OW) = self.in_shape[-2:], g.shape[-2:]
        grad = B.empty(self.in_shape, g.dtype)
        K.adaptive_avg_pool2d_backward(_planes(g, OH, OW), _planes(grad, H, W))
        return (grad,)


# ------------------------------------------------------------------------------ validation
def _input(op: str, x: Any) -> Tensor:
    tensor_arg(op, "input", x, ndim=(3, 4), layout="(N, C, H, W) or (C, H, W)")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype}")
    if 0 in x.shape[-3:]:
        raise ValueError(
            f"{op}: input must have non-zero channels, height and width (only the batch may "
            f"be empty), got shape {x.shape}"
        )
    return x


def _pair(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    """:func:`pair` that also takes a 1-tuple (as PyTorch) and names NaN as such."""
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{op}: {name} is NaN")
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = (value[0], value[0])
    return pair(op, name, value, minimum)


def _window_args(op, kernel_size, stride, padding):
    kernel = _pair(op, "kernel_size", kernel_size, 1)
    # PyTorch: stride None (or an empty list) means stride = kernel_size
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    stride = _pair(op, "stride", stride, 1)
    padding = _pair(op, "padding", padding, 0)
    for k, p in zip(kernel, padding):
        if p > k // 2:
            raise ValueError(
                f"{op}: padding must be at most half of kernel_size (pad should be at most "
                f"half of effective kernel size: padding <= kernel_size // 2), got "
                f"padding={padding} for kernel_size={kernel}"
            )
    return kernel, stride, padding


def _flag(op: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


def _out_hw(op, x, kernel, stride, padding, dilation, ceil_mode) -> tuple[int, int]:
    return tuple(
        output_size(op, axis, size, k, p, s, d, ceil_mode)
        for axis, size, k, p, s, d in zip(_AXES, x.shape[-2:], kernel, padding, stride, dilation)
    )


def _check_windows(op, x, kernel, stride, padding, dilation) -> None:
    """With dilation, a window that starts in the padding can skip over the whole input
    (e.g. taps -1 and 2 of a 2-row input).  PyTorch then returns -inf with an index outside the
    plane and corrupts memory in the backward; we refuse.  Only windows starting in the
    padding can be empty: later ones start inside the input."""
    for axis, size, k, p, s, d in zip(_AXES, x.shape[-2:], kernel, padding, stride, dilation):
        for o in range(-(-p // s)):
            taps = [o * s - p + i * d for i in range(k)]
            if not any(0 <= t < size for t in taps):
                raise ValueError(
                    f"{op}: the {axis} window of output {o} holds only padding (taps at {taps}, "
                    f"input {axis} {size}, kernel {k}, dilation {d}, padding {p}); use less "
                    f"padding or dilation"
                )


def _divisor_counts(size, out, k, s, p, count_include_pad) -> np.ndarray:
    """PyTorch's per-axis divisor: the window clipped to input+padding (count_include_pad) or
    to the input (the number of real elements)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


# ------------------------------------------------------------------------------ public API
def max_pool2d(
    x: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """2-d max pooling of an NCHW (or CHW) tensor, as ``torch.nn.functional.max_pool2d``.

    Padding counts as -inf; the gradient goes to the first maximum of each window in scan order
    (the last NaN if the window holds NaN).  With ``return_indices`` also returns an int64
    tensor of the flat ``h*W + w`` position of each maximum within its input plane.

    Shape: (N, C, H, W) -> (N, C, OH, OW) with ``OH = floor((H + 2p - d*(k-1) - 1)/s) + 1``
    (``ceil`` with ``ceil_mode``; the last window must start inside the input or left padding).
    """
    op = "max_pool2d"
    x = _input(op, x)
    kernel, stride, padding = _window_args(op, kernel_size, stride, padding)
    dilation = _pair(op, "dilation", dilation, 1)
    ceil_mode = _flag(op, "ceil_mode", ceil_mode)
    return_indices = _flag(op, "return_indices", return_indices)
    out_hw = _out_hw(op, x, kernel, stride, padding, dilation, ceil_mode)
    if dilation != (1, 1):
        _check_windows(op, x, kernel, stride, padding, dilation)
    K = get_kernels(x.device, "pool")
    plane = x.shape[-2] * x.shape[-1]
    if plane > np.iinfo(K.INDEX_DTYPE).max:
        raise ValueError(
            f"{op}: input planes of H*W = {plane} elements exceed the {np.dtype(K.INDEX_DTYPE)} "
            f"argmax indices of this device"
        )
    sink = [] if return_indices else None
    out = MaxPool2d.apply(
        x, kernel=kernel, stride=stride, padding=padding, dilation=dilation, out_hw=out_hw,
        sink=sink,
    )  # fmt: skip
    if not return_indices:
        return out
    indices = get_backend(x.device).astype(sink[0], np.int64)
    return out, Tensor._wrap(indices, x.device)


def avg_pool2d(
    x: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-d average pooling of an NCHW (or CHW) tensor, as ``torch.nn.functional.avg_pool2d``.

    The divisor follows PyTorch exactly: with ``count_include_pad`` the window clipped to the
    padded input (so a ``ceil_mode`` window hanging past the padding divides by less than
    ``kH*kW``), otherwise the number of real input elements; ``divisor_override`` replaces both.
    """
    op = "avg_pool2d"
    x = _input(op, x)
    kernel, stride, padding = _window_args(op, kernel_size, stride, padding)
    ceil_mode = _flag(op, "ceil_mode", ceil_mode)
    count_include_pad = _flag(op, "count_include_pad", count_include_pad)
    if divisor_override is not None:
        if not isinstance(divisor_override, numbers.Integral) or isinstance(divisor_override, bool):
            raise TypeError(
                f"{op}: divisor_override must be an int or None, got {divisor_override!r}"
            )
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must not be 0")
    out_hw = _out_hw(op, x, kernel, stride, padding, (1, 1), ceil_mode)
    scale = _avg_scale(
        x.device,
        np.dtype(x.dtype).str,
        tuple(x.shape[-2:]),
        out_hw,
        kernel,
        stride,
        padding,
        count_include_pad,
        divisor_override,
    )
    return AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding, scale=scale)


@functools.lru_cache(maxsize=128)
def _avg_scale(device, dtype, in_hw, out_hw, kernel, stride, padding, count_include_pad, override):
    """``1 / divisor`` per output position, on the device: one table per layer geometry, made
    once (on a GPU a fresh table would be a host-to-device copy per call).  Read-only."""
    if override is not None:
        divisor = np.full(out_hw, float(override))
    else:
        rows, cols = (
            _divisor_counts(size, o, k, s, p, count_include_pad)
            for size, o, k, s, p in zip(in_hw, out_hw, kernel, stride, padding)
        )
        divisor = np.outer(rows, cols).astype(np.float64)
    return get_backend(device).from_numpy((1.0 / divisor).astype(dtype))


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """Average over PyTorch's adaptive windows ``[floor(i*H/OH), ceil((i+1)*H/OH))``, so that
    the output is ``output_size`` (an int, or a pair whose ``None`` keeps that input size);
    ``output_size=1`` is global average pooling."""
    op = "adaptive_avg_pool2d"
    x = _input(op, x)
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(s if o is None else o for s, o in zip(x.shape[-2:], output_size))
    out_hw = _pair(op, "output_size", output_size, 0)
    return AdaptiveAvgPool2d.apply(x, out_hw=out_hw)
