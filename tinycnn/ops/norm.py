"""Normalisation: ``batch_norm`` (training and eval) and ``local_response_norm`` (AlexNet,
GoogLeNet), with PyTorch's semantics."""

from __future__ import annotations

import numbers

from ..autograd import Function
from ..device import get_backend, get_kernels
from ..tensor import Tensor
from ._validate import not_differentiable, number, tensor_arg


def _as_ncs(B, x):
    """``x`` (N, C, *spatial) as a C-contiguous (N, C, S) array."""
    n, c = x.shape[0], x.shape[1]
    s = 1
    for d in x.shape[2:]:
        s *= d
    return B.reshape(B.contiguous(x), (n, c, s))


class BatchNorm(Function):
    """Inputs: x, weight, bias (tensors, weight/bias may be None).  The running statistics are
    parameters (not on the tape): updated in place in training, read in eval."""

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        B = get_backend(self.device)
        K = get_kernels(self.device, "norm")
        self.shape = tuple(x.shape)
        x3 = _as_ncs(B, x)
        c = x3.shape[1]
        w = B.full((c,), 1.0, x.dtype) if weight is None else B.contiguous(weight)
        b = B.zeros((c,), x.dtype) if bias is None else B.contiguous(bias)
        out = B.empty(x3.shape, x.dtype)
        invstd = B.empty((c,), x.dtype)
        if training:
            mean = B.empty((c,), x.dtype)
            var = B.empty((c,), x.dtype)
            K.batch_norm_forward_train(x3, w, b, eps, out, mean, var, invstd)
            if running_mean is not None:
                count = x3.shape[0] * x3.shape[2]
                K.batch_norm_update_running(running_mean, running_var, mean, var, momentum, count)
        else:
            # a copy: a later training step may update the running mean before this backward
            mean = B.copy(running_mean)
            K.batch_norm_forward_eval(x3, running_mean, running_var, w, b, eps, out, invstd)
        if any(self.needs_input_grad):
            self.saved = (x3, w, mean, invstd, bool(training))
        return B.reshape(out, self.shape)

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "norm")
        x3, w, mean, invstd, training = self.saved
        need_dx = self.needs_input_grad[0]
        g3 = B.reshape(B.contiguous(g), x3.shape)
        gx = B.empty(x3.shape if need_dx else (1, 1, 1), x3.dtype)
        c = x3.shape[1]
        gw = B.empty((c,), x3.dtype)
        gb = B.empty((c,), x3.dtype)
        K.batch_norm_backward(x3, g3, mean, invstd, w, training, need_dx, gx, gw, gb)
        return (
            B.reshape(gx, self.shape) if need_dx else None,
            gw if self.needs_input_grad[1] else None,
            gb if self.needs_input_grad[2] else None,
        )


def _channel_vector(op: str, name: str, t, x: Tensor) -> Tensor | None:
    if t is None:
        return None
    tensor_arg(op, name, t)
    c = x.shape[1]
    if t.shape != (c,):
        raise ValueError(
            f"{op}: {name} must have shape ({c},) (one entry per channel of input shape "
            f"{x.shape}), got {t.shape}"
        )
    if t.dtype != x.dtype:
        raise TypeError(f"{op}: {name} dtype {t.dtype} differs from input dtype {x.dtype}")
    if t.device != x.device:
        raise ValueError(f"{op}: {name} is on {t.device}, input on {x.device}")
    return t


def _float_input(op: str, x, min_ndim: int, layout: str) -> Tensor:
    tensor_arg(op, "input", x)
    if x.ndim < min_ndim:
        raise ValueError(
            f"{op}: input must be at least {min_ndim}-d ({layout}), got shape {x.shape}"
        )
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype}")
    return x


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over the channel axis 1 of ``x`` (N, C, ...), as
    ``torch.nn.functional.batch_norm``.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel.  With ``training=True`` the
    statistics are the batch's (biased variance) and ``running_mean``/``running_var`` (if given)
    are updated **in place**: ``running = (1 - momentum) * running + momentum * batch``, with the
    unbiased batch variance.  With ``training=False`` the running statistics are used.

    Parameters
    ----------
    x : Tensor
        (N, C) or (N, C, *spatial), float32 or float64.
    running_mean, running_var : Tensor or None
        (C,) of the input's dtype; required when ``training`` is False.
    weight, bias : Tensor or None
        (C,) affine parameters (1 and 0 when None); differentiable.
    training : bool
    momentum : float
    eps : float

    Returns
    -------
    Tensor
        The shape of ``x``.  Gradients flow to ``x``, ``weight`` and ``bias``.
    """
    op = "batch_norm"
    _float_input(op, x, 2, "N, C, ...")
    running_mean = _channel_vector(op, "running_mean", running_mean, x)
    running_var = _channel_vector(op, "running_var", running_var, x)
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        why = "the running statistics are not on the tape (they are updated in place)"
        not_differentiable(op, name, t, why)
    weight = _channel_vector(op, "weight", weight, x)
    bias = _channel_vector(op, "bias", bias, x)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    momentum = number(op, "momentum", momentum)
    eps = number(op, "eps", eps, low=0.0)
    training = bool(training)
    if training and eps == 0:
        raise ValueError(
            f"{op}: eps must be > 0 when training (a channel whose values are all equal has "
            "batch variance 0, and 1/sqrt(var + eps) would be inf), got 0.0"
        )
    if not training and running_mean is None:
        raise ValueError(f"{op}: running_mean and running_var are required when training=False")
    if training:
        count = x.size // x.shape[1] if x.shape[1] else 0
        if count < 2:
            raise ValueError(
                f"{op}: expected more than 1 value per channel when training, got input shape "
                f"{x.shape} ({count} value(s) per channel)"
            )
    return BatchNorm.apply(
        x,
        weight,
        bias,
        running_mean=None if running_mean is None else running_mean.data,
        running_var=None if running_var is None else running_var.data,
        training=training,
        momentum=momentum,
        eps=eps,
    )


class LocalResponseNorm(Function):
    def forward(self, x, size, alpha, beta, k):
        B = get_backend(self.device)
        K = get_kernels(self.device, "norm")
        self.shape = tuple(x.shape)
        x3 = _as_ncs(B, x)
        out = B.empty(x3.shape, x.dtype)
        scale = B.empty(x3.shape, x.dtype)
        K.local_response_norm_forward(x3, size, alpha, beta, k, out, scale)
        self.saved = (x3, scale, size, alpha, beta)
        return B.reshape(out, self.shape)

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "norm")
        x3, scale, size, alpha, beta = self.saved
        g3 = B.reshape(B.contiguous(g), x3.shape)
        out = B.empty(x3.shape, x3.dtype)
        K.local_response_norm_backward(x3, g3, scale, size, alpha, beta, out)
        return (B.reshape(out, self.shape),)


def local_response_norm(
    x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """Local response normalisation across channels, as ``torch.nn.functional.local_response_norm``.

    ``y[c] = x[c] / (k + alpha/size * sum(x[c']**2))**beta``, the sum over the ``size``
    channels ``c - size//2 .. c + (size-1)//2`` (channels outside ``[0, C)`` count as zeros).

    Parameters
    ----------
    x : Tensor
        (N, C, *spatial) with at least one spatial axis, float32 or float64.
    size : int
        Number of neighbouring channels in the window (>= 1).
    alpha, beta, k : float
        The formula's constants; AlexNet uses ``size=5, alpha=1e-4, beta=0.75, k=2``.
    """
    op = "local_response_norm"
    _float_input(op, x, 3, "N, C, *spatial")
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{op}: size must be an int >= 1, got {size!r}")
    alpha = number(op, "alpha", alpha)
    beta = number(op, "beta", beta)
    k = number(op, "k", k)
    return LocalResponseNorm.apply(x, size=int(size), alpha=alpha, beta=beta, k=k)
