"""Pointwise activations: relu, leaky_relu, tanh, sigmoid."""

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
