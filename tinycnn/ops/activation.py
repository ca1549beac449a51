"""Pointwise activations: relu, leaky_relu, tanh, sigmoid, and the clamps hardtanh and relu6."""

from __future__ import annotations

from ..autograd import Function
from ..device import get_backend, get_kernels
from ..tensor import Tensor
from ._validate import number, tensor_arg


class _Pointwise(Function):
    """Runs ``<name>_forward(x, *args, out)`` / ``<name>_backward(saved, grad, *args, out)`` on
    the flat arrays.  ``save_input`` picks what the backward reads: x or the output y."""

    name = ""
    save_input = False

    def forward(self, x, **params):
        B = get_backend(self.device)
        K = get_kernels(self.device, "activation")
        self.args = tuple(params.values())
        x = B.contiguous(x)
        out = B.empty(x.shape, x.dtype)
        getattr(K, f"{self.name}_forward")(x.reshape(-1), *self.args, out.reshape(-1))
        self.saved = x if self.save_input else out
        return out

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "activation")
        g = B.contiguous(g)
        out = B.empty(g.shape, g.dtype)
        getattr(K, f"{self.name}_backward")(
            self.saved.reshape(-1), g.reshape(-1), *self.args, out.reshape(-1)
        )
        return (out,)


class ReLU(_Pointwise):
    name = "relu"


class LeakyReLU(_Pointwise):
    name = "leaky_relu"
    save_input = True


class Tanh(_Pointwise):
    name = "tanh"


class Sigmoid(_Pointwise):
    name = "sigmoid"


class Clamp(Function):
    """``min(max(x, lo), hi)`` (a bound may be None), from the array back end's ``maximum``
    and ``neg`` (exact: no ``x - relu(x - hi)``, which is NaN at +inf).  The gradient passes
    where ``lo < x < hi`` (and for NaN) and is 0 at and beyond the bounds, as PyTorch's
    hardtanh."""

    def forward(self, x, lo, hi):
        B = get_backend(self.device)
        self.x, self.lo, self.hi = x, lo, hi
        out = x
        if lo is not None:
            out = B.maximum(out, B.scalar(lo, x.dtype))
        if hi is not None:
            out = B.neg(B.maximum(B.neg(out), B.scalar(-hi, x.dtype)))
        return out

    def backward(self, g):
        B = get_backend(self.device)
        zero = B.scalar(0.0, g.dtype)
        for bound, op in ((self.lo, "le"), (self.hi, "ge")):  # false for NaN: its grad passes
            if bound is not None:
                g = B.where(B.compare(self.x, B.scalar(bound, self.x.dtype), op), zero, g)
        return (g,)


def _float_input(op: str, x) -> Tensor:
    tensor_arg(op, "input", x)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype}")
    return x


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``."""
    return ReLU.apply(_float_input("relu", x))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x if x > 0 else negative_slope * x``."""
    slope = number("leaky_relu", "negative_slope", negative_slope)
    return LeakyReLU.apply(_float_input("leaky_relu", x), slope=x.dtype.type(slope))


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(_float_input("tanh", x))


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""
    return Sigmoid.apply(_float_input("sigmoid", x))


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``min(max(x, min_val), max_val)``; the gradient is 1 strictly between the bounds, else 0
    (PyTorch's)."""
    lo = number("hardtanh", "min_val", min_val)
    hi = number("hardtanh", "max_val", max_val)
    if not lo <= hi:
        raise ValueError(f"hardtanh: min_val ({lo:g}) must be <= max_val ({hi:g})")
    return Clamp.apply(_float_input("hardtanh", x), lo=lo, hi=hi)


def relu6(x: Tensor) -> Tensor:
    """``min(max(x, 0), 6)`` (MobileNet's), i.e. ``hardtanh(x, 0, 6)``."""
    return Clamp.apply(_float_input("relu6", x), lo=0.0, hi=6.0)


def clamp_max(x: Tensor, max_val: float) -> Tensor:
    """``min(x, max_val)``: the cap of ``layers.ReLU(max_value=...)``."""
    hi = number("clamp_max", "max_val", max_val)
    return Clamp.apply(_float_input("clamp_max", x), lo=None, hi=hi)
