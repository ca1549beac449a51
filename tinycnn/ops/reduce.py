"""Reductions: sum and mean over all or some dimensions."""

from __future__ import annotations

from ..autograd import Function
from ..device import get_backend


def normalize_dims(op: str, dim, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise ValueError(f"{op}: dim {d} is out of range for a {ndim}-d tensor")
        out.append(d % max(ndim, 1))
    return tuple(sorted(set(out)))


class Sum(Function):
    scale = False

    def forward(self, x, dim=None, keepdim=False):
        B = get_backend(self.device)
        self.x_shape = tuple(x.shape)
        self.dims = normalize_dims(type(self).__name__.lower(), dim, x.ndim)
        self.keepdim = keepdim
        out = B.sum(x, axis=self.dims, keepdims=keepdim)
        if self.scale:
            out = B.div(out, B.scalar(self.count(), x.dtype))
        return B.astype(out, x.dtype)

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
