"""Tensor arithmetic with NumPy broadcasting: add, sub, mul, div, neg, pow, exp, log, matmul,
and ``linear`` (the dense layer's GEMM)."""

from __future__ import annotations

import math

from ..autograd import Function
from ..device import get_backend
from ..tensor import Tensor, check_same_float_dtype
from ._validate import tensor_arg


def check_broadcast(
    op: str, a_shape: tuple, b_shape: tuple, what: str = "shapes", skip: int = 0
) -> None:
    """Refuse shapes NumPy's rule cannot broadcast (aligned from the right, each pair of sizes
    equal or one of them 1), naming the op and the first axis that breaks it (counted past the
    ``skip`` last axes of the operands, which are not broadcast)."""
    for axis in range(-1, -min(len(a_shape), len(b_shape)) - 1, -1):
        p, q = a_shape[axis], b_shape[axis]
        if p != q and p != 1 and q != 1:
            raise ValueError(
                f"{op}: {what} {a_shape} and {b_shape} cannot be broadcast: axis {axis - skip} has "
                f"{p} against {q} (aligned from the last axis, sizes must be equal or one of "
                "them 1)"
            )


class _Binary(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = tuple(a.shape), tuple(b.shape)
        if self.a_shape != self.b_shape:
            check_broadcast(type(self).__name__.lower(), self.a_shape, self.b_shape)
        if a.dtype != b.dtype:
            raise TypeError(
                f"{type(self).__name__.lower()}: operands have different dtypes "
                f"({a.dtype} and {b.dtype}); cast one with .astype()"
            )
        return self.compute(get_backend(self.device), a, b)

    def unbroadcast(self, B, ga, gb):
        return (
            None if ga is None else B.sum_to_shape(ga, self.a_shape),
            None if gb is None else B.sum_to_shape(gb, self.b_shape),
        )


class Add(_Binary):
    def compute(self, B, a, b):
        return B.add(a, b)

    def backward(self, g):
        return self.unbroadcast(get_backend(self.device), g, g)


class Sub(_Binary):
    def compute(self, B, a, b):
        return B.sub(a, b)

    def backward(self, g):
        B = get_backend(self.device)
        return self.unbroadcast(B, g, B.neg(g) if self.needs_input_grad[1] else None)


class Mul(_Binary):
    def compute(self, B, a, b):
        self.a, self.b = a, b
        return B.mul(a, b)

    def backward(self, g):
        B = get_backend(self.device)
        ga = B.mul(g, self.b) if self.needs_input_grad[0] else None
        gb = B.mul(g, self.a) if self.needs_input_grad[1] else None
        return self.unbroadcast(B, ga, gb)


class Div(_Binary):
    def compute(self, B, a, b):
        self.b = b
        self.out = B.div(a, b)
        return self.out

    def backward(self, g):
        B = get_backend(self.device)
        ga = B.div(g, self.b)
        gb = B.neg(B.mul(ga, self.out)) if self.needs_input_grad[1] else None
        return self.unbroadcast(B, ga if self.needs_input_grad[0] else None, gb)


class Neg(Function):
    def forward(self, a):
        return get_backend(self.device).neg(a)

    def backward(self, g):
        return (get_backend(self.device).neg(g),)


class Pow(Function):
    def forward(self, a, exponent: float):
        self.a, self.exponent = a, exponent
        return get_backend(self.device).power(a, exponent)

    def backward(self, g):
        B = get_backend(self.device)
        if self.exponent == 0:  # x**0 = 1 everywhere: d/dx = 0, also at x = 0 (not 0·0**-1)
            return (B.mul(g, B.scalar(0.0, g.dtype)),)
        d = B.mul(B.power(self.a, self.exponent - 1.0), B.scalar(self.exponent, self.a.dtype))
        return (B.mul(g, d),)


class Exp(Function):
    def forward(self, a):
        self.out = get_backend(self.device).exp(a)
        return self.out

    def backward(self, g):
        return (get_backend(self.device).mul(g, self.out),)


class Log(Function):
    def forward(self, a):
        self.a = a
        return get_backend(self.device).log(a)

    def backward(self, g):
        return (get_backend(self.device).div(g, self.a),)


class MatMul(Function):
    """``a @ b`` for 1-d/2-d operands and batched (broadcast) stacks, NumPy rules."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: operands must be at least 1-d (use * for scalars)")
        ka = a.shape[-1]
        kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if ka != kb:
            raise ValueError(
                f"matmul: inner dimensions differ: {tuple(a.shape)} @ {tuple(b.shape)} "
                f"({ka} != {kb})"
            )
        if a.ndim > 2 and b.ndim > 2:
            batch_a, batch_b = tuple(a.shape[:-2]), tuple(b.shape[:-2])
            check_broadcast("matmul", batch_a, batch_b, f"{a.shape} @ {b.shape}: batch", skip=2)
        if a.dtype != b.dtype:
            raise TypeError(f"matmul: operands have different dtypes ({a.dtype} and {b.dtype})")
        B = get_backend(self.device)
        # promote 1-d operands to matrices so one backward covers every case
        self.a_shape, self.b_shape = tuple(a.shape), tuple(b.shape)
        self.a2 = B.reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
        self.b2 = B.reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
        out2 = B.matmul(self.a2, self.b2)
        self.out2_shape = tuple(out2.shape)
        out_shape = self.out2_shape
        if a.ndim == 1:
            out_shape = out_shape[:-2] + out_shape[-1:]
        if b.ndim == 1:
            out_shape = out_shape[:-1]
        return B.reshape(out2, out_shape)

    def backward(self, g):
        B = get_backend(self.device)
        g2 = B.reshape(g, self.out2_shape)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = B.sum_to_shape(B.matmul(g2, _swap_last(B, self.b2)), tuple(self.a2.shape))
            ga = B.reshape(ga, self.a_shape)
        if self.needs_input_grad[1]:
            gb = B.sum_to_shape(B.matmul(_swap_last(B, self.a2), g2), tuple(self.b2.shape))
            gb = B.reshape(gb, self.b_shape)
        return ga, gb


def _swap_last(B, x):
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return B.transpose(x, axes)


class Linear(Function):
    """``y = x @ w.T + b`` with ``w`` of shape ``(out_features, in_features)``."""

    def forward(self, x, w, b=None):
        B = get_backend(self.device)
        self.x_shape = tuple(x.shape)
        self.rows = math.prod(self.x_shape[:-1])  # no -1: in_features may be 0
        x2 = B.reshape(x, (self.rows, x.shape[-1]))
        self.x2, self.w = x2, w
        y = B.matmul(x2, B.transpose(w, (1, 0)))
        if b is not None:
            y = B.add(y, b)
        return B.reshape(y, self.x_shape[:-1] + (w.shape[0],))

    def backward(self, g):
        B = get_backend(self.device)
        g2 = B.reshape(g, (self.rows, g.shape[-1]))
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = B.reshape(B.matmul(g2, self.w), self.x_shape)
        if self.needs_input_grad[1]:
            gw = B.matmul(B.transpose(g2, (1, 0)), self.x2)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = B.sum(g2, axis=0)
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` (PyTorch's ``F.linear``); ``weight`` is ``(out, in)``.

    Shape: ``x (*, in)`` -> ``(*, out)``.
    """
    tensor_arg("linear", "input", x)
    tensor_arg("linear", "weight", weight, 2, "(out_features, in_features)")
    if x.ndim < 1:
        raise ValueError("linear: input must be at least 1-d")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but weight expects "
            f"in_features={weight.shape[1]} (weight shape {weight.shape})"
        )
    if bias is not None:
        tensor_arg("linear", "bias", bias, 1, "(out_features,)")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(
                f"linear: bias has {bias.shape[0]} entries, weight has out_features="
                f"{weight.shape[0]}"
            )
    check_same_float_dtype("linear", ("input", "weight", "bias"), (x, weight, bias))
    return Linear.apply(x, weight, bias)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return MatMul.apply(a, b)
