"""Metrics, accumulated over an epoch (no tape).

``update`` takes the batch's output and target as Tensors (or NumPy arrays) and reduces them on
their device with the array back end: on "cuda" only the count of correct samples comes back to
the host.  ``"accuracy"`` resolves as Keras resolves it: categorical for one-hot targets, sparse
for integer labels, binary for a single output or a binary cross-entropy loss.
"""

from __future__ import annotations

import numpy as np

from ..device import get_backend
from ..tensor import Tensor

__all__ = ["METRICS", "Metric", "TopKAccuracy", "get"]


class Metric:
    """``update(output, target, logits)`` per batch, ``result()`` at the end; ``name`` is the
    key in the logs and in ``history.history`` (``val_`` + name for validation)."""

    name = ""

    def __init__(self, name: str | None = None):
        if name is not None:
            self.name = name
        self.reset()

    def reset(self) -> None:
        self.correct = 0.0
        self.count = 0

    def result(self) -> float:
        return self.correct / self.count if self.count else float("nan")

    def update(self, output, target, logits: bool) -> None:
        """Add one batch: ``output`` and ``target`` are Tensors on one device, or arrays."""
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _arrays(output, target):
    """(array back end, output array, target array) on the output's device."""
    if isinstance(output, Tensor):
        B = get_backend(output.device)
        return B, output.data, target.data if isinstance(target, Tensor) else target
    return get_backend("cpu"), np.asarray(output), np.asarray(target)


def _count(B, mask) -> float:
    """The number of True values in ``mask``: the one scalar that leaves the device."""
    return float(B.to_numpy(B.sum(mask)))


def _labels(B, target):
    if target.ndim > 1 and target.shape[-1] > 1:
        return B.argmax(target, -1)
    return B.reshape(target, (-1,))


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def update(self, output, target, logits):
        B, out, tgt = _arrays(output, target)
        self.correct += _count(B, B.compare(B.argmax(out, -1), B.argmax(tgt, -1), "eq"))
        self.count += out.shape[0]


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def update(self, output, target, logits):
        B, out, tgt = _arrays(output, target)
        labels = B.astype(B.reshape(tgt, (-1,)), np.int64)
        self.correct += _count(B, B.compare(B.argmax(out, -1), labels, "eq"))
        self.count += out.shape[0]


class BinaryAccuracy(Metric):
    """Threshold 0.5 on probabilities (0 on logits)."""

    name = "binary_accuracy"

    def update(self, output, target, logits):
        B, out, tgt = _arrays(output, target)
        predicted = B.compare(out, B.scalar(0.0 if logits else 0.5, out.dtype), "gt")
        truth = B.compare(tgt, B.scalar(0.5, tgt.dtype), "gt")
        self.correct += _count(B, B.compare(predicted, truth, "eq"))
        self.count += int(np.prod(tgt.shape))


class TopKAccuracy(Metric):
    """The label is among the ``k`` largest outputs (one-hot or integer targets)."""

    def __init__(self, k: int = 5, name: str | None = None):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"TopKAccuracy: k must be a positive int, got {k!r}")
        self.k = k
        super().__init__(name or f"top_{k}_accuracy")

    def update(self, output, target, logits):
        B, out, tgt = _arrays(output, target)
        n, classes = out.shape[0], out.shape[-1]
        labels = B.reshape(B.astype(_labels(B, tgt), np.int64), (n, 1))
        k = min(self.k, classes)
        # rank of the label's score: the label is in the top k if fewer than k scores beat it
        onehot = B.compare(B.from_numpy(np.arange(classes, dtype=np.int64)), labels, "eq")
        score = B.sum(B.where(onehot, out, B.scalar(0.0, out.dtype)), axis=-1, keepdims=True)
        beaten_by = B.sum(B.compare(out, score, "gt"), axis=-1)
        self.correct += _count(B, B.compare(beaten_by, B.scalar(k, np.int64), "lt"))
        self.count += n


METRICS = {
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "top_k_categorical_accuracy": lambda: TopKAccuracy(5, "top_k_categorical_accuracy"),
    "sparse_top_k_categorical_accuracy": lambda: TopKAccuracy(
        5, "sparse_top_k_categorical_accuracy"
    ),
}


def get(
    identifier, loss_name: str, target_ndim: int | None = None, n_outputs: int | None = None
) -> Metric:
    """A :class:`Metric` from a name (``"accuracy"``/``"acc"`` resolved from the loss) or a
    Metric instance."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            if loss_name == "binary_crossentropy" or n_outputs == 1:
                cls = BinaryAccuracy
            elif loss_name == "sparse_categorical_crossentropy" or target_ndim == 1:
                cls = SparseCategoricalAccuracy
            else:
                cls = CategoricalAccuracy
            return cls(name=identifier)  # logged under the name the user wrote, as Keras
        if key in METRICS:
            return METRICS[key]()
    raise ValueError(
        f"compile: unknown metric {identifier!r}; valid names: accuracy, "
        f"{', '.join(METRICS)} (or a tinycnn.train.metrics.Metric instance)"
    )
