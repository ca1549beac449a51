"""Metrics, accumulated over an epoch on NumPy arrays (no tape, no kernels).

``"accuracy"`` resolves as Keras resolves it: categorical for one-hot targets, sparse for
integer labels, binary for a single output or a binary cross-entropy loss.
"""

from __future__ import annotations

import numpy as np

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

    def update(self, output: np.ndarray, target: np.ndarray, logits: bool) -> None:
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _labels(target: np.ndarray) -> np.ndarray:
    return target.argmax(-1) if target.ndim > 1 and target.shape[-1] > 1 else target.reshape(-1)


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def update(self, output, target, logits):
        self.correct += float((output.argmax(-1) == target.argmax(-1)).sum())
        self.count += len(output)


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def update(self, output, target, logits):
        self.correct += float((output.argmax(-1) == target.reshape(-1)).sum())
        self.count += len(output)


class BinaryAccuracy(Metric):
    """Threshold 0.5 on probabilities (0 on logits)."""

    name = "binary_accuracy"

    def update(self, output, target, logits):
        predicted = output > (0.0 if logits else 0.5)
        self.correct += float((predicted == (target > 0.5)).sum())
        self.count += target.size


class TopKAccuracy(Metric):
    """The label is among the ``k`` largest outputs (one-hot or integer targets)."""

    def __init__(self, k: int = 5, name: str | None = None):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"TopKAccuracy: k must be a positive int, got {k!r}")
        self.k = k
        super().__init__(name or f"top_{k}_accuracy")

    def update(self, output, target, logits):
        labels = _labels(target).astype(np.int64)
        k = min(self.k, output.shape[-1])
        # rank of the label's score: the label is in the top k if fewer than k scores beat it
        score = np.take_along_axis(output, labels[:, None], axis=-1)
        self.correct += float(((output > score).sum(-1) < k).sum())
        self.count += len(output)


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
