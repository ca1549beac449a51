"""Losses with PyTorch's semantics: ``cross_entropy`` (fused softmax + NLL), ``nll_loss``,
``mse_loss``, ``binary_cross_entropy``; ``reduction`` is ``"mean"``, ``"sum"`` or ``"none"``.

Class-index losses accept logits ``(N, C)``, ``(N, C, d1, ...)`` (the class axis is moved last,
one row per position) and unbatched ``(C,)``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function
from ..device import get_backend, get_kernels
from ..tensor import Tensor
from ._validate import not_differentiable, number, tensor_arg

REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- layout helpers
def _to_rows(B, a, n_cls: int):
    """(N, C, *d) -> C-contiguous (N*S, C); (N, C) and (C,) need no copy."""
    if a.ndim == 1:
        return B.reshape(a, (1, n_cls))
    if a.ndim == 2:
        return B.contiguous(a)
    n, s = a.shape[0], int(np.prod(a.shape[2:]))
    a3 = B.reshape(a, (n, n_cls, s))
    return B.reshape(B.contiguous(B.transpose(a3, (0, 2, 1))), (n * s, n_cls))


def _from_rows(B, rows, shape: tuple[int, ...]):
    """Inverse of :func:`_to_rows`."""
    if len(shape) <= 2:
        return B.reshape(rows, shape)
    n, n_cls = shape[0], shape[1]
    s = rows.shape[0] // max(n, 1)
    return B.reshape(B.contiguous(B.transpose(B.reshape(rows, (n, s, n_cls)), (0, 2, 1))), shape)


def _reduce(B, loss, reduction: str, denom, out_shape):
    """Keep ``denom`` (the "mean" divisor, a 0-d array) for the backward; return the loss."""
    if reduction == "none":
        return B.reshape(loss, out_shape)
    total = B.sum(loss)
    if reduction == "mean":
        total = B.div(total, denom)
    return B.reshape(total, ())


def _upstream(B, g, reduction: str, denom, n: int):
    """The upstream gradient as the kernels take it: n values ("none") or a single one."""
    if reduction == "none":
        return B.reshape(B.contiguous(g), (n,))
    if reduction == "mean":
        g = B.div(g, denom)
    return B.reshape(g, (1,))


def _first_bad_target(B, target, n_cls: int, ignore_index: int) -> int:
    t = np.asarray(B.to_numpy(target)).reshape(-1)
    bad = ((t < 0) | (t >= n_cls)) & (t != ignore_index)
    return int(t[np.argmax(bad)])


# --------------------------------------------------------------------------- cross-entropy, nll
class _ClassLoss(Function):
    """Shared by CrossEntropy and NLLLoss: inputs (input, target); params weight (C,) array,
    ignore_index, reduction, label_smoothing."""

    op = ""

    def prepare(self, x, target, weight):
        B = get_backend(self.device)
        self.shape = tuple(x.shape)
        n_cls = self.shape[1] if x.ndim > 1 else self.shape[0]
        self.prob = target.dtype.kind == "f"
        rows = _to_rows(B, x, n_cls)
        t = _to_rows(B, target, n_cls) if self.prob else B.reshape(B.contiguous(target), (-1,))
        if weight is None:
            weight = B.full((n_cls,), 1.0, x.dtype)
        self.out_shape = self.shape[:1] + self.shape[2:] if x.ndim > 1 else ()
        return B, rows, t, B.contiguous(weight), n_cls

    def check_bad(self, B, bad, target, n_cls, ignore_index):
        if int(np.asarray(B.to_numpy(bad))[0]):
            value = _first_bad_target(B, target, n_cls, ignore_index)
            raise ValueError(
                f"{self.op}: target {value} is out of range for {n_cls} classes (class "
                f"indices must satisfy 0 <= target < {n_cls}, or equal ignore_index="
                f"{ignore_index})"
            )


class CrossEntropy(_ClassLoss):
    op = "cross_entropy"

    def forward(self, x, target, weight, ignore_index, reduction, label_smoothing):
        B, z, t, w, n_cls = self.prepare(x, target, weight)
        K = get_kernels(self.device, "loss")
        n = z.shape[0]
        loss = B.empty((n,), x.dtype)
        logp = B.empty(z.shape, x.dtype)
        if self.prob:
            K.softmax_cross_entropy_prob_forward(z, t, w, label_smoothing, loss, logp)
            denom = B.scalar(n, x.dtype)
        else:
            wn = B.empty((n,), x.dtype)
            bad = B.zeros((1,), np.int64)
            K.softmax_cross_entropy_forward(
                z, t, w, ignore_index, label_smoothing, loss, wn, logp, bad
            )
            self.check_bad(B, bad, t, n_cls, ignore_index)
            denom = B.sum(wn)
        self.saved = (logp, t, w, ignore_index, reduction, label_smoothing, denom)
        out = _reduce(B, loss, reduction, denom, self.out_shape)
        if reduction == "mean" and label_smoothing > 0 and not self.prob:
            # no target with weight: PyTorch's mean is NaN (its NLL part is 0/0), not the
            # smoothing part's x/0 = inf; otherwise this adds 0
            out = B.add(out, B.div(B.scalar(0.0, x.dtype), denom))
        return out

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "loss")
        logp, t, w, ignore_index, reduction, smoothing, denom = self.saved
        g = _upstream(B, g, reduction, denom, logp.shape[0])
        gz = B.empty(logp.shape, logp.dtype)
        if not self.prob:
            K.softmax_cross_entropy_backward(logp, t, w, ignore_index, smoothing, g, gz)
            return _from_rows(B, gz, self.shape), None
        need_t = self.needs_input_grad[1]
        gt = B.empty(logp.shape if need_t else (1, 1), logp.dtype)
        K.softmax_cross_entropy_prob_backward(logp, t, w, smoothing, g, need_t, gz, gt)
        return _from_rows(B, gz, self.shape), (_from_rows(B, gt, self.shape) if need_t else None)


class NLLLoss(_ClassLoss):
    op = "nll_loss"

    def forward(self, x, target, weight, ignore_index, reduction):
        B, logp, t, w, n_cls = self.prepare(x, target, weight)
        K = get_kernels(self.device, "loss")
        n = logp.shape[0]
        loss = B.empty((n,), x.dtype)
        wn = B.empty((n,), x.dtype)
        bad = B.zeros((1,), np.int64)
        K.nll_loss_forward(logp, t, w, ignore_index, loss, wn, bad)
        self.check_bad(B, bad, t, n_cls, ignore_index)
        denom = B.sum(wn)
        self.saved = (logp.shape, x.dtype, t, w, ignore_index, reduction, denom)
        return _reduce(B, loss, reduction, denom, self.out_shape)

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "loss")
        rows_shape, dtype, t, w, ignore_index, reduction, denom = self.saved
        g = _upstream(B, g, reduction, denom, rows_shape[0])
        out = B.empty(rows_shape, dtype)
        K.nll_loss_backward(t, w, ignore_index, g, out)
        return _from_rows(B, out, self.shape), None


def _check_reduction(op: str, reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _float_tensor(op: str, name: str, t) -> Tensor:
    tensor_arg(op, name, t)
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be float32 or float64, got {t.dtype}")
    return t


def _class_args(op: str, x, target, weight, ignore_index, reduction, allow_prob: bool):
    """Validate (input, target, weight, ...) of a class-index loss; returns (target, weight)."""
    _float_tensor(op, "input", x)
    tensor_arg(op, "target", target)
    _check_reduction(op, reduction)
    if x.ndim == 0:
        raise ValueError(f"{op}: input must be (N, C), (N, C, d1, ...) or (C,), got a 0-d tensor")
    if not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool):
        raise TypeError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    n_cls = x.shape[1] if x.ndim > 1 else x.shape[0]
    if target.dtype.kind == "f" and allow_prob:
        if target.shape != x.shape:
            raise ValueError(
                f"{op}: probability targets must have the input's shape {x.shape}, got "
                f"{target.shape}"
            )
        if target.dtype != x.dtype:
            raise TypeError(f"{op}: target dtype {target.dtype} differs from input {x.dtype}")
        if ignore_index != -100:
            raise ValueError(f"{op}: ignore_index is not supported for probability targets")
    elif target.dtype.kind in "iu":
        want = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
        if target.shape != want:
            raise ValueError(
                f"{op}: class-index target must have shape {want} for input shape {x.shape} "
                f"(the input without its class axis 1), got {target.shape}"
            )
        if target.dtype != np.int64:
            target = target.astype(np.int64)
    else:
        kinds = (
            "integer class indices or float class probabilities"
            if allow_prob
            else ("integer class indices")
        )
        raise TypeError(f"{op}: target must be {kinds}, got dtype {target.dtype}")
    if weight is not None:
        tensor_arg(op, "weight", weight)
        if weight.shape != (n_cls,):
            raise ValueError(
                f"{op}: weight must have one entry per class, shape ({n_cls},), got {weight.shape}"
            )
        if weight.dtype != x.dtype:
            raise TypeError(f"{op}: weight dtype {weight.dtype} differs from input {x.dtype}")
        if weight.device != x.device:
            raise ValueError(f"{op}: weight is on {weight.device}, input on {x.device}")
        not_differentiable(op, "weight", weight)
        weight = weight.data
    return target, weight


def cross_entropy(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target: Tensor,
    weight: Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of logits, as ``torch.nn.functional.cross_entropy``, fused into one
    kernel (forward: log-softmax and loss; backward: ``softmax - onehot``).

    Parameters
    ----------
    input : Tensor
        Logits (N, C), (N, C, d1, ...) or (C,); float32 or float64.
    target : Tensor
        Class indices (N,) / (N, d1, ...) of an integer dtype, each in ``[0, C)`` or equal to
        ``ignore_index``; or class probabilities of the input's shape and dtype.
    weight : Tensor, optional
        A rescaling weight per class (C,); the "mean" divides by the summed weights of the
        targets (PyTorch's rule), or by the number of samples for probability targets.
    ignore_index : int
        Targets equal to it add nothing to the loss nor to the mean's denominator.
    reduction : {"mean", "sum", "none"}
    label_smoothing : float
        In ``[0, 1]``: the target becomes ``(1 - s) * target + s / C``.

    Raises
    ------
    ValueError
        A target outside ``[0, C)`` (named with ``C``), or a shape that does not match.
    """
    op = "cross_entropy"
    target, w = _class_args(op, input, target, weight, ignore_index, reduction, allow_prob=True)
    smoothing = number(op, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    return CrossEntropy.apply(
        input,
        target,
        weight=w,
        ignore_index=int(ignore_index),
        reduction=reduction,
        label_smoothing=smoothing,
    )


def nll_loss(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target: Tensor,
    weight: Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C) / (N, C, d1, ...) / (C,)
    at the integer class indices ``target``: ``-weight[t] * input[n, t]``, as
    ``torch.nn.functional.nll_loss`` ("mean" divides by the summed target weights)."""
    op = "nll_loss"
    target, w = _class_args(op, input, target, weight, ignore_index, reduction, allow_prob=False)
    return NLLLoss.apply(
        input, target, weight=w, ignore_index=int(ignore_index), reduction=reduction
    )


# --------------------------------------------------------------------------- mse, bce
class MSELoss(Function):
    def forward(self, x, y, reduction):
        B = get_backend(self.device)
        K = get_kernels(self.device, "loss")
        self.shape = tuple(x.shape)
        xf = B.reshape(B.contiguous(x), (-1,))
        yf = B.reshape(B.contiguous(y), (-1,))
        loss = B.empty(xf.shape, x.dtype)
        K.mse_loss_forward(xf, yf, loss)
        denom = B.scalar(max(xf.shape[0], 0), x.dtype)
        self.saved = (xf, yf, reduction, denom)
        return _reduce(B, loss, reduction, denom, self.shape)

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "loss")
        xf, yf, reduction, denom = self.saved
        g = _upstream(B, g, reduction, denom, xf.shape[0])
        gx = B.empty(xf.shape, xf.dtype)
        K.mse_loss_backward(xf, yf, g, gx)
        gx = B.reshape(gx, self.shape)
        return (
            gx if self.needs_input_grad[0] else None,
            B.neg(gx) if self.needs_input_grad[1] else None,
        )


class BinaryCrossEntropy(Function):
    def forward(self, x, y, weight, reduction):
        B = get_backend(self.device)
        K = get_kernels(self.device, "loss")
        self.shape = tuple(x.shape)
        xf = B.reshape(B.contiguous(x), (-1,))
        yf = B.reshape(B.contiguous(y), (-1,))
        if weight is None:
            w = B.full((1,), 1.0, x.dtype)
        elif weight.size == 1:
            w = B.reshape(B.contiguous(weight), (1,))
        else:
            w = B.reshape(B.broadcast_to(weight, self.shape), (-1,))
        loss = B.empty(xf.shape, x.dtype)
        bad = B.zeros((1,), np.int64)
        K.binary_cross_entropy_forward(xf, yf, w, loss, bad)
        if int(np.asarray(B.to_numpy(bad))[0]):
            _raise_outside_unit("binary_cross_entropy", B, xf, yf)
        denom = B.scalar(xf.shape[0], x.dtype)
        self.saved = (xf, yf, w, reduction, denom)
        return _reduce(B, loss, reduction, denom, self.shape)

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "loss")
        xf, yf, w, reduction, denom = self.saved
        g = _upstream(B, g, reduction, denom, xf.shape[0])
        need_x, need_y = self.needs_input_grad[0], self.needs_input_grad[1]
        gx = B.empty(xf.shape if need_x else (1,), xf.dtype)
        gy = B.empty(xf.shape if need_y else (1,), xf.dtype)
        K.binary_cross_entropy_backward(xf, yf, w, g, need_x, need_y, gx, gy)
        return (
            B.reshape(gx, self.shape) if need_x else None,
            B.reshape(gy, self.shape) if need_y else None,
        )


def _raise_outside_unit(op: str, B, xf, yf) -> None:
    for name, a in (("input", xf), ("target", yf)):
        a = np.asarray(B.to_numpy(a))
        bad = ~((a >= 0) & (a <= 1))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{op}: all elements of {name} must be between 0 and 1, got {a[i]} at flat "
                f"index {i} (pass probabilities, e.g. the output of a sigmoid)"
            )


def _same_shape_pair(op: str, x, target) -> None:
    _float_tensor(op, "input", x)
    _float_tensor(op, "target", target)
    if target.shape != x.shape:
        raise ValueError(
            f"{op}: target shape {target.shape} must equal input shape {x.shape} "
            "(no broadcasting: a mismatch is almost always a bug)"
        )
    if target.dtype != x.dtype:
        raise TypeError(f"{op}: target dtype {target.dtype} differs from input {x.dtype}")


def mse_loss(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target: Tensor,
    *,
    reduction: str = "mean",
) -> Tensor:
    """Mean squared error ``(input - target)**2``, reduced; both arguments are differentiable.
    Shapes must be equal (PyTorch broadcasts with a warning; here it is an error)."""
    op = "mse_loss"
    _same_shape_pair(op, input, target)
    return MSELoss.apply(input, target, reduction=_check_reduction(op, reduction))


def binary_cross_entropy(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target: Tensor,
    weight: Tensor | None = None,
    *,
    reduction: str = "mean",
) -> Tensor:
    """``-weight * (target * log(input) + (1 - target) * log(1 - input))``, each log clamped at
    -100 as in PyTorch.  ``input`` and ``target`` must lie in ``[0, 1]``; ``weight`` broadcasts
    to the input's shape.  Gradients flow to ``input`` and ``target``."""
    op = "binary_cross_entropy"
    _same_shape_pair(op, input, target)
    _check_reduction(op, reduction)
    w = None
    if weight is not None:
        tensor_arg(op, "weight", weight)
        try:
            shape = np.broadcast_shapes(weight.shape, input.shape)
        except ValueError:
            shape = None
        if shape != input.shape:
            raise ValueError(
                f"{op}: weight shape {weight.shape} does not broadcast to input shape {input.shape}"
            )
        if weight.dtype != input.dtype:
            raise TypeError(f"{op}: weight dtype {weight.dtype} differs from input {input.dtype}")
        not_differentiable(op, "weight", weight)
        w = weight.data
    return BinaryCrossEntropy.apply(input, target, weight=w, reduction=reduction)
