"""Metrics, accumulated over an epoch (no tape).

``update`` takes the batch's output and target as Tensors (or NumPy arrays) and reduces them on
their device with the array back end: on "cuda" only the count of correct samples comes back to
the host.  ``"accuracy"`` resolves as Keras resolves it: categorical for one-hot targets, sparse
for integer labels, binary for a single output or a binary cross-entropy loss.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..device import get_backend
from ..tensor import Tensor

__all__ = ["METRICS", "Metric", "TopKAccuracy", "confusion_matrix", "confusion_report", "get"]


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


def _check_target(name: str, out, tgt, want: str) -> None:
    """Refuse targets that would broadcast against the outputs into a wrong count: ``want`` is
    "onehot" (the outputs' shape), "labels" (one index per row) or "either"."""
    out_shape, tgt_shape = tuple(out.shape), tuple(tgt.shape)
    labels = tgt_shape in (out_shape[:-1], out_shape[:-1] + (1,))
    if want == "onehot" and tgt_shape != out_shape:
        hint = " (class indices? use 'sparse_categorical_accuracy')" if labels else ""
        raise ValueError(
            f"{name}: targets have shape {tgt_shape}, the outputs {out_shape}; this metric needs "
            f"one-hot targets of the outputs' shape{hint}"
        )
    if want == "labels" and not labels:
        hint = " (one-hot rows? use 'categorical_accuracy')" if tgt_shape == out_shape else ""
        raise ValueError(
            f"{name}: targets have shape {tgt_shape}, the outputs {out_shape}; this metric needs "
            f"one class index per row, shape {out_shape[:-1]}{hint}"
        )
    if want == "either" and not (labels or tgt_shape == out_shape):
        raise ValueError(
            f"{name}: targets have shape {tgt_shape}, the outputs {out_shape}; this metric needs "
            f"class indices {out_shape[:-1]} or one-hot rows {out_shape}"
        )


def _rows(out) -> int:
    return int(np.prod(out.shape[:-1]))


def _labels(B, target):
    if target.ndim > 1 and target.shape[-1] > 1:
        return B.argmax(target, -1)
    return B.reshape(target, (-1,))


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def update(self, output, target, logits):
        B, out, tgt = _arrays(output, target)
        _check_target(self.name, out, tgt, "onehot")
        self.correct += _count(B, B.compare(B.argmax(out, -1), B.argmax(tgt, -1), "eq"))
        self.count += _rows(out)


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def update(self, output, target, logits):
        B, out, tgt = _arrays(output, target)
        _check_target(self.name, out, tgt, "labels")
        labels = B.astype(B.reshape(tgt, tuple(out.shape[:-1])), np.int64)
        self.correct += _count(B, B.compare(B.argmax(out, -1), labels, "eq"))
        self.count += _rows(out)


class BinaryAccuracy(Metric):
    """Threshold 0.5 on probabilities (0 on logits)."""

    name = "binary_accuracy"

    def update(self, output, target, logits):
        B, out, tgt = _arrays(output, target)
        out_shape, tgt_shape = tuple(out.shape), tuple(tgt.shape)
        if tgt_shape != out_shape:  # Keras squeezes or expands a trailing 1 to match ranks
            if tgt_shape + (1,) != out_shape and tgt_shape != out_shape + (1,):
                raise ValueError(
                    f"{self.name}: targets have shape {tgt_shape}, the outputs {out_shape}; "
                    "they must match (up to a trailing axis of 1)"
                )
            tgt = B.reshape(tgt, out_shape)
        predicted = B.compare(out, B.scalar(0.0 if logits else 0.5, out.dtype), "gt")
        truth = B.compare(tgt, B.scalar(0.5, tgt.dtype), "gt")
        self.correct += _count(B, B.compare(predicted, truth, "eq"))
        self.count += int(np.prod(out_shape))


class TopKAccuracy(Metric):
    """The label is among the ``k`` largest outputs (one-hot or integer targets)."""

    def __init__(self, k: int = 5, name: str | None = None):
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"TopKAccuracy: k must be a positive int, got {k!r}")
        k = int(k)
        self.k = k
        super().__init__(name or f"top_{k}_accuracy")

    def update(self, output, target, logits):
        B, out, tgt = _arrays(output, target)
        if out.ndim != 2:
            raise ValueError(
                f"{self.name}: outputs must be scores of shape (N, classes), got {tuple(out.shape)}"
            )
        _check_target(self.name, out, tgt, "either")
        n, classes = out.shape[0], out.shape[-1]
        labels = B.reshape(B.astype(_labels(B, tgt), np.int64), (n, 1))
        k = min(self.k, classes)
        # rank of the label's score: the label is in the top k if fewer than k scores beat it
        onehot = B.compare(B.from_numpy(np.arange(classes, dtype=np.int64)), labels, "eq")
        score = B.sum(B.where(onehot, out, B.scalar(0.0, out.dtype)), axis=-1, keepdims=True)
        # as Keras' in_top_k: a NaN score or a label out of range is never in the top k
        in_range = B.compare(B.sum(onehot, axis=-1, keepdims=True), B.scalar(1, np.int64), "eq")
        score = B.where(in_range, score, B.scalar(np.nan, out.dtype))
        beaten_by = B.astype(B.sum(B.compare(out, score, "gt"), axis=-1), out.dtype)
        valid = B.reshape(B.compare(score, score, "eq"), (n,))
        beaten_by = B.where(valid, beaten_by, B.scalar(k, out.dtype))
        self.correct += _count(B, B.compare(beaten_by, B.scalar(k, out.dtype), "lt"))
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


def class_indices(y) -> np.ndarray:
    """Class indices from indices, one-hot rows or per-class scores (their argmax)."""
    y = np.asarray(y)
    return y.argmax(-1) if y.ndim > 1 else y


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """``m[t, p]`` = how many samples of true class ``t`` were predicted as ``p`` (int64).

    ``y_true`` and ``y_pred`` are class indices, or one-hot / per-class scores (their argmax
    is taken); ``num_classes`` defaults to the largest index + 1, or the score width."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    widths = [a.shape[-1] for a in (t, p) if a.ndim > 1]
    t, p = class_indices(t), class_indices(p)
    if t.shape != p.shape:
        raise ValueError(f"confusion_matrix: {t.shape[0]} true labels but {p.shape[0]} predictions")
    t, p = t.astype(np.int64).ravel(), p.astype(np.int64).ravel()
    if t.size and min(t.min(), p.min()) < 0:
        raise ValueError("confusion_matrix: class indices must be >= 0")
    k = max([*widths, int(t.max(initial=-1)) + 1, int(p.max(initial=-1)) + 1])
    if num_classes is not None:
        if k > num_classes:
            raise ValueError(
                f"confusion_matrix: class index {k - 1} is out of range for num_classes="
                f"{num_classes}"
            )
        k = num_classes
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def confusion_report(matrix: np.ndarray, names=None, worst: int = 3) -> str:
    """The matrix as a table (rows: true class, columns: predicted) with each class's
    accuracy (recall: the diagonal over its row), then the ``worst`` most frequent mistakes.
    Rows are labelled with the class ``names`` and their index (the columns' numbers)."""
    k = matrix.shape[0]
    names = [str(i) for i in range(k)] if names is None else [str(n) for n in names]
    # a named row also shows its index: the columns are numbered
    labels = [n if n == str(i) else f"{n} {i}" for i, n in enumerate(names)]
    w = max(5, len(f"{int(matrix.max(initial=0)):,}") + 1)
    lw = max(len(n) for n in labels)
    lines = ["rows: true class, columns: predicted; acc = correct / images of the class"]
    lines.append(" " * lw + "".join(f"{i:>{w}}" for i in range(k)) + " |   acc")
    for i in range(k):
        row = matrix[i]
        total = int(row.sum())
        acc = f"{100 * row[i] / total:5.1f} %" if total else "    –"
        cells = "".join(f"{int(v):>{w},}" for v in row)
        lines.append(f"{labels[i]:>{lw}}{cells} | {acc}")
    off = [(int(matrix[i, j]), i, j) for i in range(k) for j in range(k) if i != j and matrix[i, j]]
    off.sort(key=lambda c: (-c[0], c[1], c[2]))
    if off:
        top = ", ".join(f"{names[i]} → {names[j]} ({n:,})" for n, i, j in off[:worst])
        lines.append(f"most frequent mistakes (true → predicted): {top}")
    return "\n".join(lines)
