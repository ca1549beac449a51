"""Training: ``compile``/``fit``/``evaluate``/``predict`` (Keras' API; ``tinycnn.Model``'s
methods call these with the model first), ``History``, callbacks, losses, metrics, and the
weight files (``save_weights``/``load_weights``, from :mod:`tinycnn.io`)."""

from __future__ import annotations

from ..io import load_checkpoint, load_weights, save_checkpoint, save_weights
from . import augment, callbacks, losses, metrics, mistakes
from .history import History
from .loop import compile, evaluate, fit, predict  # noqa: A004 - Keras' name

__all__ = [
    "History",
    "augment",
    "callbacks",
    "compile",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_weights",
    "losses",
    "metrics",
    "mistakes",
    "predict",
    "save_checkpoint",
    "save_weights",
]
