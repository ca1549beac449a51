"""Reductions: sum and mean over all or some dimensions."""

from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function
from ..device import get_backend


def normalize_dims(op: str, dim, ndim: int) -> tuple[int, ...] | None:
    """``dim`` (None, an int or a sequence of ints, negative counting from the end) as sorted
    non-negative axes; a 0-d tensor takes 0 and -1, as PyTorch, and reduces nothing."""
    if dim is None:
        return None
    if isinstance(dim, bool) or not isinstance(dim, (numbers.Integral, tuple, list)):
        raise TypeError(f"{op}: dim must be None, an int or a tuple of ints, got {dim!r}")
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    if not dims:
        raise ValueError(
            f"{op}: dim=() is ambiguous (NumPy reduces no dimension, PyTorch all of them); "
            "use dim=None for all"
        )
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{op}: dims must be ints, got {d!r} in dim={dim!r}")
        d = int(d)
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise ValueError(f"{op}: dim {d} is out of range for a {ndim}-d tensor")
        axis = d % max(ndim, 1)
        if axis in out:
            raise ValueError(f"{op}: dim {axis} appears more than once in dim={dim!r}")
        out.append(axis)
    return () if ndim == 0 else tuple(sorted(out))


class Sum(Function):
    scale = False

    def forward(self, x, dim=None, keepdim=False):
        B = get_backend(self.device)
        self.x_shape = tuple(x.shape)
        op = type(self).__name__.lower()
        self.dims = normalize_dims(op, dim, x.ndim)
        if self.scale and x.dtype.kind != "f":
            raise TypeError(
                f"{op}: needs a float tensor, got {x.dtype} (its mean would be truncated to an "
                "integer); cast it first, e.g. t.astype(np.float64)"
            )
        self.keepdim = keepdim
        # integers and bools sum to int64, as in PyTorch (a bool mask's count, no int8 wrap)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.int64)
        if x.dtype != dtype:
            x = B.astype(x, dtype)
        out = B.sum(x, axis=self.dims, keepdims=keepdim)
        if self.scale:
            out = B.div(out, B.scalar(self.count(), x.dtype))
        return B.astype(out, dtype)

    def count(self) -> int:
        dims = range(len(self.x_shape)) if self.dims is None else self.dims
        n = 1
        for d in dims:
            n *= self.x_shape[d]
        return n

    def backward(self, g):
        B = get_backend(self.device)
        if not self.keepdim:
            keep_shape = tuple(
                1 if (self.dims is None or i in self.dims) else s
                for i, s in enumerate(self.x_shape)
            )
            g = B.reshape(g, keep_shape)
        if self.scale:
            g = B.div(g, B.scalar(self.count(), g.dtype))
        return (B.broadcast_to(g, self.x_shape),)


class Mean(Sum):
    scale = True
