"""Losses by Keras name, with target validation and the softmax/sigmoid-output fusion.

Keras' cross-entropies take *probabilities* when the model ends in a softmax (the seed's
LeNet-5 does).  Computing ``-log(softmax(z))`` as two ops is unstable (``log`` of an underflowed
0) and slow; so when the model's output layer applies a softmax (``Dense(..., activation=
"softmax")``, ``Activation("softmax")``, ``Softmax()`` on the last axis), the training loop runs
that layer *without* its activation, and the loss takes the logits through the fused
``F.cross_entropy`` (its gradient is ``softmax - target``, exact).  The same holds for a sigmoid
output with ``binary_crossentropy``.  ``predict`` keeps the activation: it returns probabilities,
as Keras does.  Models whose output is not recognised get Keras' formula on probabilities
(clipped to ``[1e-7, 1 - 1e-7]``).
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd import Function
from ..device import get_backend
from ..tensor import Tensor

__all__ = ["LOSSES", "Loss", "get"]

EPSILON = 1e-7  # Keras' backend epsilon, used to clip probabilities


class _ClipLog(Function):
    """``log(clip(p, eps, 1 - eps))``; the gradient is zero where the clip is active (as TF)."""

    def forward(self, p, eps):
        B = get_backend(self.device)
        lo = B.compare(p, eps, "lt")
        hi = B.compare(p, 1.0 - eps, "gt")
        clipped = B.where(lo, B.scalar(eps, p.dtype), B.where(hi, B.scalar(1 - eps, p.dtype), p))
        self.saved = (clipped, lo, hi)
        return B.log(clipped)

    def backward(self, g):
        B = get_backend(self.device)
        clipped, lo, hi = self.saved
        grad = B.div(g, clipped)
        zero = B.scalar(0.0, g.dtype)
        return (B.where(lo, zero, B.where(hi, zero, grad)),)


def clip_log(p: Tensor, eps: float = EPSILON) -> Tensor:
    return _ClipLog.apply(p, eps=eps)


class Loss:
    """A training loss: ``prepare_target`` checks and converts the labels once per ``fit``;
    ``__call__(output, target)`` returns the mean loss over the batch as a 0-d Tensor.

    ``fused_activation`` names the output activation this loss absorbs ("softmax", "sigmoid")
    when the model ends in it; ``from_logits`` says the output is already logits.
    """

    name = ""
    fused_activation: str | None = None

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"

    def prepare_target(self, y: np.ndarray, output_shape: tuple[int, ...], dtype) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def __call__(self, output: Tensor, target: Tensor, logits: bool) -> Tensor:
        raise NotImplementedError  # pragma: no cover

    def per_sample(self, output: Tensor, target: Tensor, logits: bool) -> Tensor:
        """The loss of each sample, ``(N,)`` (what :meth:`weighted` weighs)."""
        raise TypeError(
            f"{self.name}: this loss has no per-sample form, so fit cannot weigh its samples "
            "(class_weight, sample_weight)"
        )

    def classes_of(self, y: np.ndarray) -> np.ndarray:
        """Each prepared target's class index (for ``fit(class_weight=...)``)."""
        raise TypeError(
            f"fit: class_weight needs a classification loss (categorical, sparse categorical "
            f"or binary cross-entropy), not {self.name}"
        )

    def class_count(self, outputs: int) -> int:
        """How many classes a model with ``outputs`` outputs tells apart."""
        return outputs

    def weighted(self, output: Tensor, target: Tensor, logits: bool, weights: Tensor) -> Tensor:
        """Keras' weighted loss: ``sum(weights * per-sample loss) / N`` (the batch size, not
        the sum of the weights)."""
        return (self.per_sample(output, target, logits) * weights).mean()


def _shape_mismatch(name: str, target: tuple, output: tuple) -> str:
    """Targets that do not fit the model's output; vector targets against a map output (a
    Dense straight after a convolution reads only the map's last axis) are told how to end
    the model."""
    text = f"{name}: targets have shape {tuple(target)} per sample, the model outputs {output}"
    if len(output) > 1 and len(target) <= 1:  # a classifier's targets, a map's outputs
        text += (
            " (a map, not one vector per sample: a Dense on a map reads only its last axis); "
            "end the model with Flatten() or GlobalAveragePooling2D() before the last Dense"
        )
    return text


def _check_probabilities(name: str, y: np.ndarray) -> None:
    bad = ~((y >= 0) & (y <= 1))
    if bad.any():
        i = tuple(int(k) for k in np.unravel_index(int(np.argmax(bad)), y.shape))
        raise ValueError(f"{name}: targets must be probabilities in [0, 1]; y{list(i)} = {y[i]}")


class CategoricalCrossentropy(Loss):
    """One-hot (or probability) targets ``(N, C)``."""

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def prepare_target(self, y, output_shape, dtype):
        n_cls = output_shape[-1]
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and n_cls != 1):
            raise ValueError(
                f"{self.name}: targets of shape {y.shape} look like class indices; this loss "
                f"needs one-hot rows (N, {n_cls}): use loss='sparse_categorical_crossentropy' or "
                "one-hot encode the labels"
            )
        if y.shape[1:] != tuple(output_shape[1:]):
            raise ValueError(_shape_mismatch(self.name, y.shape[1:], tuple(output_shape[1:])))
        y = np.asarray(y, dtype=dtype)
        _check_probabilities(self.name, y)
        return y

    def __call__(self, output, target, logits):
        if logits:
            return F.cross_entropy(output, target)
        return self.per_sample(output, target, logits).mean()

    def per_sample(self, output, target, logits):
        if logits:
            return F.cross_entropy(output, target, reduction="none")
        p = output / output.sum(dim=-1, keepdim=True)  # Keras normalises the rows first
        return -(target * clip_log(p)).sum(dim=-1)

    def classes_of(self, y):
        return np.asarray(y).argmax(axis=-1)


class SparseCategoricalCrossentropy(Loss):
    """Integer class targets ``(N,)`` in ``[0, C)``."""

    name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def prepare_target(self, y, output_shape, dtype):
        n_cls = output_shape[-1]
        if len(output_shape) > 2:
            raise ValueError(_shape_mismatch(self.name, (), tuple(output_shape[1:])))
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            hint = " (one-hot rows? use loss='categorical_crossentropy')" if y.ndim == 2 else ""
            raise ValueError(
                f"{self.name}: targets must be class indices of shape (N,), got {y.shape}{hint}"
            )
        if y.dtype.kind == "f":
            if not np.array_equal(y, np.round(y)):
                i = int(np.argmax(y != np.round(y)))
                raise ValueError(f"{self.name}: label y[{i}] = {y[i]} is not an integer")
        elif y.dtype.kind not in "iu":
            raise TypeError(f"{self.name}: labels must be integers, got dtype {y.dtype}")
        bad = (y < 0) | (y >= n_cls)  # before the cast, which would wrap inf and 2**63
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{self.name}: label y[{i}] = {y[i]} is out of range for a model with {n_cls} "
                f"outputs (valid: 0..{n_cls - 1}); {int(bad.sum())} labels are out of range"
            )
        return y.astype(np.int64)

    def __call__(self, output, target, logits):
        if logits:
            return F.cross_entropy(output, target)
        p = output / output.sum(dim=-1, keepdim=True)
        return F.nll_loss(clip_log(p), target)

    def per_sample(self, output, target, logits):
        if logits:
            return F.cross_entropy(output, target, reduction="none")
        p = output / output.sum(dim=-1, keepdim=True)
        return F.nll_loss(clip_log(p), target, reduction="none")

    def classes_of(self, y):
        return np.asarray(y)


class BinaryCrossentropy(Loss):
    """Targets in ``[0, 1]`` of the output's shape (``(N,)`` for an ``(N, 1)`` output too)."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def prepare_target(self, y, output_shape, dtype):
        want = tuple(output_shape[1:])
        if y.ndim == 1 and want == (1,):
            y = y[:, None]
        if y.shape[1:] != want:
            raise ValueError(_shape_mismatch(self.name, y.shape[1:], want))
        y = np.asarray(y, dtype=dtype)
        _check_probabilities(self.name, y)
        return y

    def __call__(self, output, target, logits):
        return self._elementwise(output, target, logits).mean()

    def _elementwise(self, output, target, logits):
        if logits:
            # log(1 + exp(z)) - y*z, written with |z| so exp never overflows
            pos, neg = F.relu(output), F.relu(-output)
            return pos - output * target + (1.0 + (-(pos + neg)).exp()).log()
        return -(target * clip_log(output) + (1.0 - target) * clip_log(1.0 - output))

    def per_sample(self, output, target, logits):
        return self._elementwise(output, target, logits).mean(dim=tuple(range(1, output.ndim)))

    def class_count(self, outputs):
        return 2  # one output: 0 or 1

    def classes_of(self, y):
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != 1:
            raise TypeError(
                f"fit: class_weight with {self.name} needs one output (a 0/1 target per "
                f"sample), got targets of shape {y.shape[1:]}"
            )
        return np.round(y[:, 0]).astype(np.int64)


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def prepare_target(self, y, output_shape, dtype):
        want = tuple(output_shape[1:])
        if y.ndim == 1 and want == (1,):
            y = y[:, None]
        if y.shape[1:] != want:
            raise ValueError(_shape_mismatch(self.name, y.shape[1:], want))
        return np.asarray(y, dtype=dtype)

    def __call__(self, output, target, logits):
        return F.mse_loss(output, target)

    def per_sample(self, output, target, logits):
        return ((output - target) ** 2).mean(dim=tuple(range(1, output.ndim)))


LOSSES = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier) -> Loss:
    """A :class:`Loss` from a Keras name (or a Loss instance itself)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in LOSSES:
        return LOSSES[identifier.lower()]()
    raise ValueError(
        f"compile: unknown loss {identifier!r}; valid names: {', '.join(LOSSES)} "
        "(or a tinycnn.train.losses.Loss instance)"
    )
