"""Inverted dropout with PyTorch's semantics, seeded through :mod:`tinycnn.random`."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..device import get_backend, get_kernels
from ..random import as_generator
from ..tensor import Tensor
from ._validate import number, tensor_arg


class Dropout(Function):
    def forward(self, x, p, uniform):
        B = get_backend(self.device)
        K = get_kernels(self.device, "dropout")
        self.shape, self.p = tuple(x.shape), p
        if p == 0.0:
            return B.copy(x)
        if p == 1.0:  # x * 0, as torch: zeros, with NaN where x is NaN or infinite
            with np.errstate(invalid="ignore"):  # inf * 0: no NumPy warning (torch gives none)
                return B.mul(x, B.scalar(0, x.dtype))
        xf = B.reshape(B.contiguous(x), (-1,))
        out = B.empty(xf.shape, x.dtype)
        self.mask = B.empty(xf.shape, np.uint8)
        K.dropout_forward(xf, B.from_numpy(uniform), p, out, self.mask)
        return B.reshape(out, self.shape)

    def backward(self, g):
        B = get_backend(self.device)
        if self.p == 0.0:
            return (g,)
        if self.p == 1.0:
            with np.errstate(invalid="ignore"):
                return (B.mul(g, B.scalar(0, g.dtype)),)
        gf = B.reshape(B.contiguous(g), (-1,))
        out = B.empty(gf.shape, g.dtype)
        get_kernels(self.device, "dropout").dropout_backward(gf, self.mask, self.p, out)
        return (B.reshape(out, self.shape),)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the kept ones by ``1 / (1 - p)``
    (inverted dropout, as ``torch.nn.functional.dropout``), so the expected value is unchanged
    and evaluation needs no rescaling.

    Parameters
    ----------
    x : Tensor
        Float32 or float64, any shape.
    p : float
        Drop probability in ``[0, 1]``; ``p = 1`` gives zeros, ``p = 0`` a copy.  A dropped
        element is multiplied by 0, as in PyTorch: a NaN or an infinity stays NaN.
    training : bool
        When False, ``x`` itself is returned (no copy, no random draw).
    generator : numpy.random.Generator, int or None
        Source of the mask: a Generator, a seed, or None for the global generator that
        :func:`tinycnn.manual_seed` resets (so runs repeat).
    """
    op = "dropout"
    tensor_arg(op, "input", x)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype}")
    p = number(op, "p", p, low=0, high=1)
    if not training:
        return x
    uniform = None
    if 0.0 < p < 1.0:
        # drawn in the input's dtype: half the bytes of float64 for float32 activations
        uniform = as_generator(generator).random(x.shape, dtype=x.dtype).reshape(-1)
    return Dropout.apply(x, p=p, uniform=uniform)
