"""Checking and splitting the data given to ``fit``/``evaluate``/``predict``.

Every check happens before the first step, with a message that says what is wrong and where:
training for an hour on NaNs, or on labels the model cannot output, only wastes the hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..tensor import Tensor

__all__ = [
    "InputSpec",
    "check_inputs",
    "check_sample_weight",
    "check_targets",
    "input_spec",
    "split_validation",
]


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...] | None  # one sample's shape (no batch axis); None: unknown
    dtype: np.dtype


def input_spec(model) -> InputSpec:
    """What one sample must look like, from ``model.input_shape`` (with or without the
    leading ``None`` batch axis) and the input's dtype."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, list):
        raise NotImplementedError(
            "fit/evaluate/predict: models with several inputs are not supported yet"
        )
    if isinstance(shape, tuple) and shape and shape[0] is None:
        shape = shape[1:]
    if shape is not None and not all(isinstance(s, int) for s in shape):
        shape = None
    dtype = np.float32
    inputs = getattr(model, "inputs", None)
    if isinstance(inputs, (list, tuple)) and inputs and hasattr(inputs[0], "dtype"):
        dtype = inputs[0].dtype
    return InputSpec(shape, np.dtype(dtype))


def _as_array(what: str, name: str, a) -> np.ndarray:
    if a is None:
        raise ValueError(f"{what}: {name} is required")
    if isinstance(a, Tensor):
        a = a.numpy()
    if isinstance(a, (list, tuple)) and a and isinstance(a[0], (np.ndarray, Tensor)):
        raise NotImplementedError(
            f"{what}: several input arrays (multi-input models) are not supported yet"
        )
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what}: {name} must be numeric, got dtype {a.dtype}")
    return a


def _check_finite(what: str, name: str, a: np.ndarray) -> None:
    if a.dtype.kind != "f":
        return
    finite = np.isfinite(a)
    if not finite.all():
        bad = ~finite.reshape(len(a), -1).all(axis=1) if a.ndim > 1 else ~finite
        first = int(np.argmax(bad))
        raise ValueError(
            f"{what}: {name} contains {int((~finite).sum())} NaN/Inf values in "
            f"{int(bad.sum())} samples (first: sample {first}); clean or drop them before "
            f"{'training' if what.startswith('fit') else 'calling ' + what.split(':')[0]}"
        )


def check_inputs(what: str, x, spec: InputSpec) -> np.ndarray:
    """``x`` as a C-contiguous array of the model's dtype, checked for shape and NaN/Inf."""
    x = _as_array(what, "x", x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{what}: x is empty (shape {x.shape})")
    if spec.shape is not None and tuple(x.shape[1:]) != spec.shape:
        from ..graph.shapes import input_shape_hint

        raise ValueError(
            f"{what}: the model takes samples of shape {spec.shape}, x has {tuple(x.shape[1:])} "
            f"(x.shape = {x.shape}, the first axis being the batch)"
            f"{input_shape_hint(x.shape, spec.shape)}"
        )
    _check_finite(what, "x", x)
    return np.ascontiguousarray(x, dtype=spec.dtype)


def check_targets(what: str, loss, x: np.ndarray, y, output_shape, dtype) -> np.ndarray:
    """``y`` checked against ``x`` (length), for NaN/Inf, and by the loss (shape, range)."""
    y = _as_array(what, "y", y)
    if y.ndim == 0 or len(y) != len(x):
        got = "a scalar" if y.ndim == 0 else f"{len(y)} samples"
        raise ValueError(f"{what}: x has {len(x)} samples but y has {got}")
    _check_finite(what, "y", y)
    return np.ascontiguousarray(loss.prepare_target(y, tuple(output_shape), dtype))


def check_sample_weight(what: str, sample_weight, n: int) -> np.ndarray:
    """``fit``'s ``sample_weight``: one finite number >= 0 per sample (float64)."""
    w = _as_array(what, "sample_weight", sample_weight)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(
            f"{what}: sample_weight must hold one number per sample, shape ({n},), got "
            f"{w.dtype} of shape {w.shape}"
        )
    _check_finite(what, "sample_weight", w)
    if (w < 0).any():
        i = int(np.argmax(w < 0))
        raise ValueError(f"{what}: sample_weight[{i}] = {w[i]} must be a finite number >= 0")
    return w.astype(np.float64)


def split_index(n: int, fraction: float) -> int:
    """Where ``split_validation`` cuts ``n`` samples: the first this many train."""
    return int(math.ceil(n * (1.0 - fraction)))


def split_validation(x: np.ndarray, y, fraction: float):
    """Keras' rule: the *last* ``fraction`` of the samples, taken before shuffling."""
    if not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {fraction!r}")
    y = _as_array("fit", "y", y)
    if len(y) != len(x):
        raise ValueError(f"fit: x has {len(x)} samples but y has {len(y)}")
    split_at = split_index(len(x), fraction)
    if split_at == 0 or split_at == len(x):
        raise ValueError(
            f"fit: validation_split={fraction} of {len(x)} samples leaves "
            f"{split_at} to train on and {len(x) - split_at} to validate on; both must be > 0"
        )
    return x[:split_at], y[:split_at], x[split_at:], y[split_at:]
