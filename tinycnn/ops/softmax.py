"""``softmax`` and ``log_softmax`` along any dimension, numerically stable, with PyTorch's
semantics."""

from __future__ import annotations

import numbers

from ..autograd import Function
from ..device import get_backend, get_kernels
from ..tensor import Tensor
from ._validate import tensor_arg


def _outer_c_inner(shape: tuple[int, ...], dim: int) -> tuple[int, int, int]:
    outer = inner = 1
    for d in shape[:dim]:
        outer *= d
    for d in shape[dim + 1 :]:
        inner *= d
    return outer, (shape[dim] if shape else 1), inner


class Softmax(Function):
    """``log=False``: softmax; ``log=True``: log_softmax.  The backward reads the output."""

    def forward(self, x, dim, log):
        B = get_backend(self.device)
        K = get_kernels(self.device, "softmax")
        self.shape, self.log = tuple(x.shape), log
        x3 = B.reshape(B.contiguous(x), _outer_c_inner(self.shape, dim))
        out = B.empty(x3.shape, x.dtype)
        (K.log_softmax_forward if log else K.softmax_forward)(x3, out)
        self.y = out
        return B.reshape(out, self.shape)

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "softmax")
        g3 = B.reshape(B.contiguous(g), self.y.shape)
        out = B.empty(self.y.shape, self.y.dtype)
        (K.log_softmax_backward if self.log else K.softmax_backward)(self.y, g3, out)
        return (B.reshape(out, self.shape),)


def _check(op: str, x, dim) -> int:
    tensor_arg(op, "input", x)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype}")
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    ndim = max(x.ndim, 1)  # a 0-d tensor takes dim 0 or -1, as in PyTorch
    if not -ndim <= dim < ndim:
        raise ValueError(
            f"{op}: dim {dim} is out of range for a {x.ndim}-d input of shape {x.shape} "
            f"(expected -{ndim} <= dim < {ndim})"
        )
    return int(dim) % ndim if x.ndim else 0


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``, computed as ``exp(x - max)`` (no overflow).

    Parameters
    ----------
    x : Tensor
        Float32 or float64, any shape.
    dim : int
        The axis that sums to 1 (negative counts from the end).  PyTorch's ``dim=None``
        (an implicit, deprecated choice) is not supported: the default is the last axis.
    """
    return Softmax.apply(x, dim=_check("softmax", x, dim), log=False)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``x - max - log(sum(exp(x - max)))`` along ``dim``: ``log(softmax(x))`` without
    underflow to ``-inf`` for very negative logits."""
    return Softmax.apply(x, dim=_check("log_softmax", x, dim), log=True)
