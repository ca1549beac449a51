"""``History``: what ``fit`` returns, and the seed's accuracy and loss curves."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["History"]


class History:
    """Per-epoch logs of one ``fit``.

    Attributes
    ----------
    history : dict[str, list[float]]
        ``"loss"``, each metric, and ``"val_"`` + each of them when there is validation data.
    params : dict
        ``epochs``, ``steps`` (per epoch), ``batch_size``, ``samples``, ``verbose``.
    epoch : list[int]
        The epoch indices that ran (0-based, as Keras).
    epoch_seconds : list[float]
        Wall time of each epoch's training steps (validation excluded).
    compile_seconds : float or None
        The first step's time when it was measured apart (kernel compilation).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.params: dict[str, Any] = {}
        self.epoch: list[int] = []
        self.epoch_seconds: list[float] = []
        self.compile_seconds: float | None = None

    def __repr__(self) -> str:
        keys = ", ".join(self.history)
        return f"History({len(self.epoch)} epochs: {keys})"

    def append(self, epoch: int, logs: dict[str, float], seconds: float) -> None:
        self.epoch.append(epoch)
        self.epoch_seconds.append(seconds)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def to_dict(self) -> dict[str, Any]:
        """``{"history", "params", "epoch", "epoch_seconds", "compile_seconds"}``, plain JSON
        (NaN as None); :meth:`from_dict` reads it back."""

        def clean(v):
            return None if isinstance(v, float) and v != v else v

        return {
            "history": {k: [clean(v) for v in vs] for k, vs in self.history.items()},
            "params": self.params,
            "epoch": self.epoch,
            "epoch_seconds": self.epoch_seconds,
            "compile_seconds": self.compile_seconds,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> History:
        history = cls()
        history.history = {
            k: [float("nan") if v is None else float(v) for v in vs]
            for k, vs in doc["history"].items()
        }
        history.params = dict(doc.get("params", {}))
        history.epoch = [int(e) for e in doc["epoch"]]
        history.epoch_seconds = [float(t) for t in doc.get("epoch_seconds", [])]
        history.compile_seconds = doc.get("compile_seconds")
        return history

    def extend(self, later: History) -> History:
        """Append the epochs of ``later`` (a resumed run's ``fit``) after these; its params
        replace these."""
        for i, (epoch, seconds) in enumerate(zip(later.epoch, later.epoch_seconds)):
            self.append(epoch, {k: vs[i] for k, vs in later.history.items()}, seconds)
        self.params = dict(later.params)
        if self.compile_seconds is None:
            self.compile_seconds = later.compile_seconds
        return self

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON, atomically (an earlier file is replaced whole)."""
        from ..io import write_text

        return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def plot(self, path: str | os.PathLike, title: str | None = None) -> Path:
        """Draw accuracy (left) and loss (right) per epoch, train and validation, as the seed's
        ``displayAccuracy`` / ``displayLoss`` do, and save to ``path`` (.png, .svg, .pdf).

        Needs matplotlib (``pip install tinycnn[plot]``).  Draws on a bare ``Figure`` (Agg
        canvas), never through pyplot: no window, no display needed, the user's backend untouched.
        """
        from .._plotting import figure, save

        acc_key = next((k for k in self.history if not k.startswith("val_") and "acc" in k), None)
        panels = ([acc_key] if acc_key else []) + ["loss"]
        fig = figure("History.plot", 5.5 * len(panels), 4.2)
        epochs = [e + 1 for e in self.epoch]
        for i, key in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            ax.plot(epochs, self.history.get(key, []), marker="o", label="train")
            if "val_" + key in self.history:
                ax.plot(epochs, self.history["val_" + key], marker="o", label="validation")
            what = "accuracy" if key == acc_key else "loss"
            ax.set_title(f"model {what}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(what)
            ax.grid(True, alpha=0.3)
            ax.legend(loc="lower right" if what == "accuracy" else "upper right")
        if title:
            fig.suptitle(title)
        return save(fig, path)
