"""Keras' training callbacks (``tc.callbacks``): EarlyStopping, ModelCheckpoint, TerminateOnNaN,
ReduceLROnPlateau, CSVLogger.

``fit`` calls ``on_train_end`` in a ``finally`` block, so EarlyStopping restores the best
weights and CSVLogger closes its file however training ended (finished, stopped early, stopped
on NaN, interrupted with Ctrl-C).  ModelCheckpoint never writes weights that hold NaN or Inf:
after a divergence the last good checkpoint stays on disk.
"""

from __future__ import annotations

import csv
import inspect
import math
import numbers
import os
import string
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]


class Callback:
    """Base class; ``self.model`` and ``self.params`` are set by ``fit``."""

    model: Any = None
    params: dict[str, Any] = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class CallbackList:
    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be Callback instances, got {cb!r}")
            cb.set_model(model)
            cb.set_params(params)

    def __getattr__(self, hook: str):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args):
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call


def _mode_op(cls: str, mode: str, monitor: str):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{cls}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    return mode


def _number(cls: str, name: str, value, low: float | None = None, integer: bool = False):
    """``value`` checked as a finite number (an int if ``integer``) ``>= low``."""
    kind = numbers.Integral if integer else numbers.Real
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(
            f"{cls}: {name} must be {'an int' if integer else 'a number'}, got {value!r}"
        )
    if not math.isfinite(value):
        raise ValueError(f"{cls}: {name} must be finite, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{cls}: {name} must be >= {low}, got {value!r}")
    return int(value) if integer else float(value)


def _say(verbose: int, text: str) -> None:
    if verbose:
        print(text, file=sys.stdout, flush=True)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs (Keras'
    semantics); ``restore_best_weights`` puts back the weights of the best epoch at the end of
    training, whatever ended it."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        cls = "EarlyStopping"
        self.monitor = monitor
        self.mode = _mode_op(cls, mode, monitor)
        self.min_delta = abs(_number(cls, "min_delta", min_delta))
        self.patience = _number(cls, "patience", patience, 0, integer=True)
        self.verbose = verbose
        self.baseline = None if baseline is None else _number(cls, "baseline", baseline)
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = _number(cls, "start_from_epoch", start_from_epoch, 0, integer=True)

    def _improves(self, value: float, reference: float) -> bool:
        if self.mode == "max":
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            _say(
                1,
                f"EarlyStopping: {self.monitor!r} is not in the logs "
                f"({', '.join(logs or {})}); nothing is monitored",
            )
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.state_dict()
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0:
            _say(self.verbose, f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            _say(
                self.verbose,
                f"Restoring the weights of epoch {self.best_epoch + 1} "
                f"({self.monitor} = {self.best:.4f})",
            )
            self.model.load_state_dict(self.best_weights)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or Inf, saying where."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(
                f"TerminateOnNaN: the loss is {loss} at epoch {getattr(self, 'epoch', 0) + 1}, "
                f"batch {batch + 1}: training stopped (lower the learning rate, check the data "
                "and the loss). The weights now hold invalid values; checkpoints saved before "
                "this are intact.",
                file=sys.stdout,
                flush=True,
            )
            self.model.stop_training = True


def _weights_finite(model) -> bool:
    return all(np.isfinite(a).all() for a in model.state_dict().values())


class ModelCheckpoint(Callback):
    """Save at the end of every epoch (or only when ``monitor`` improves, ``save_best_only``).

    ``filepath`` is a template over ``epoch`` (1-based) and the logs, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``.  By default a *training* checkpoint (weights,
    optimizer state, epoch, RNG state: ``tinycnn.io.load_checkpoint`` + ``fit(...,
    initial_epoch=meta["epoch"])`` resumes); ``save_weights_only=True`` saves the weights alone.
    Files are written atomically, and never when the weights hold NaN or Inf.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
    ):
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = _mode_op("ModelCheckpoint", mode, monitor)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.last_saved: Path | None = None
        self._check_template()

    def _check_template(self) -> None:
        """Refuse a ``filepath`` that no epoch could format (a positional ``{}``, an unclosed
        brace, ``{epoch:s}``) now, not after the first epoch has trained."""
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.filepath) if f is not None]
            names = {f.split(".", 1)[0].split("[", 1)[0] for f in fields}
            if "" in names or any(name.isdigit() for name in names):
                raise IndexError("a positional field; name epoch or a log, as {epoch:02d}")
            self.filepath.format(**{**{name: 0.5 for name in names}, "epoch": 1})
        except (ValueError, IndexError, AttributeError, TypeError, KeyError) as exc:
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} is not a template over epoch (an "
                f"int) and the logs (floats), as 'ckpt-{{epoch:02d}}-{{val_loss:.3f}}.npz': {exc}"
            ) from None

    def _path(self, epoch: int, logs: dict) -> Path:
        try:
            return Path(self.filepath.format(epoch=epoch + 1, **logs))
        except KeyError as exc:
            raise KeyError(
                f"ModelCheckpoint: filepath {self.filepath!r} names {exc}, which is not in the "
                f"logs ({', '.join(logs)})"
            ) from None

    def on_epoch_end(self, epoch, logs=None):
        from .. import io

        logs = dict(logs or {})
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                _say(1, f"ModelCheckpoint: {self.monitor!r} is not in the logs; not saving")
                return
            better = current > self.best if self.mode == "max" else current < self.best
            if not better:  # NaN never improves
                return
        loss = logs.get("loss", 0.0)
        if not math.isfinite(loss) or not _weights_finite(self.model):
            keep = f"; keeping {self.last_saved}" if self.last_saved else ""
            _say(
                1,
                f"ModelCheckpoint: epoch {epoch + 1}: the loss or the weights are NaN/Inf, "
                f"not saving{keep}",
            )
            return
        path = self._path(epoch, logs)
        if self.save_weights_only:
            io.save_weights(self.model, path)
        else:
            history = {
                k: (float(v) if math.isfinite(v) else None)  # JSON has no NaN
                for k, v in logs.items()
                if isinstance(v, (int, float))
            }
            io.save_checkpoint(
                path,
                self.model,
                getattr(self.model, "optimizer", None),
                epoch=epoch + 1,
                extra={"logs": history},
            )
        if self.save_best_only:
            _say(
                self.verbose,
                f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} "
                f"to {logs[self.monitor]:.5f}, saved {path}",
            )
            self.best = logs[self.monitor]
        else:
            _say(self.verbose, f"Epoch {epoch + 1}: saved {path}")
        self.last_saved = path


class ReduceLROnPlateau(Callback):
    """Multiply the optimizer's learning rate by ``factor`` when ``monitor`` has not improved
    for ``patience`` epochs (Keras' semantics, cooldown and ``min_lr`` included); adds
    ``learning_rate`` to the logs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        cls = "ReduceLROnPlateau"
        if not 0.0 < _number(cls, "factor", factor) < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = _number(cls, "patience", patience, 0, integer=True)
        self.verbose = verbose
        self.mode = _mode_op(cls, mode, monitor)
        self.min_delta = abs(_number(cls, "min_delta", min_delta))
        self.cooldown = _number(cls, "cooldown", cooldown, 0, integer=True)
        self.min_lr = _number(cls, "min_lr", min_lr, 0)

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = optimizer.lr
        current = logs.get(self.monitor)
        if current is None:
            _say(1, f"ReduceLROnPlateau: {self.monitor!r} is not in the logs; nothing to do")
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        better = (
            current > self.best + self.min_delta
            if self.mode == "max"
            else current < self.best - self.min_delta
        )
        if better:
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and optimizer.lr > self.min_lr:
                new_lr = max(optimizer.lr * self.factor, self.min_lr)
                optimizer.lr = new_lr
                _say(
                    self.verbose,
                    f"Epoch {epoch + 1}: ReduceLROnPlateau reducing the learning "
                    f"rate to {new_lr:.4g}",
                )
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (Keras'
    signature; ``epoch`` is 0-based; ``schedule(epoch)`` works too, as in Keras); adds
    ``learning_rate`` to the logs."""

    def __init__(self, schedule, verbose: int = 0):
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: schedule must be callable(epoch, lr)")
        self.schedule = schedule
        self.verbose = verbose
        self.with_lr = True
        try:
            signature = inspect.signature(schedule)
        except (TypeError, ValueError):  # a builtin without one: Keras' two arguments
            return
        for args, with_lr in (((0, 0.1), True), ((0,), False)):
            try:
                signature.bind(*args)
            except TypeError:
                continue
            self.with_lr = with_lr
            return
        raise TypeError(
            f"LearningRateScheduler: schedule must take (epoch, lr) or (epoch), not {signature}"
        )

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.optimizer.lr
        lr = self.schedule(epoch, lr) if self.with_lr else self.schedule(epoch)
        if (
            not isinstance(lr, numbers.Real)
            or isinstance(lr, bool)
            or not math.isfinite(lr)
            or lr < 0
        ):
            raise ValueError(
                f"LearningRateScheduler: schedule({epoch}) gave {lr!r}; need a number >= 0"
            )
        lr = float(lr)
        self.model.optimizer.lr = lr
        _say(self.verbose, f"Epoch {epoch + 1}: learning rate {lr:.4g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.lr


class CSVLogger(Callback):
    """Append one row per epoch (``epoch`` then the log keys, sorted) to a CSV file, flushed
    every epoch so the file is readable while training runs."""

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self.keys: list[str] | None = None
        self.file = None
        self.writer = None

    def on_train_begin(self, logs=None):
        exists = self.append and self.filename.exists() and self.filename.stat().st_size > 0
        self.keys = None  # a new file's columns are the first epoch's logs, as Keras
        if exists:
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self.keys = header[1:] if header else None
        self.file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self.writer = csv.writer(self.file, delimiter=self.separator)
        self._header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if not self._header_written:
            self.writer.writerow(["epoch", *self.keys])
            self._header_written = True
        self.writer.writerow([epoch, *(logs.get(k, "NA") for k in self.keys)])
        self.file.flush()

    def on_train_end(self, logs=None):
        if self.file is not None:
            self.file.close()
            self.file = None
