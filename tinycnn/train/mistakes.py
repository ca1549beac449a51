"""The test images a classifier gets wrong, drawn: the surest mistakes first."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .metrics import class_indices


def worst_mistakes(y_true, scores, count: int = 32) -> np.ndarray:
    """Indices of the misclassified samples, the highest score for the wrong class first."""
    t, s = class_indices(y_true), np.asarray(scores)
    wrong = np.flatnonzero(s.argmax(-1) != t)
    order = np.argsort(-s[wrong].max(-1), kind="stable")
    return wrong[order[:count]]


def plot_mistakes(
    images,
    y_true,
    scores,
    path: str | os.PathLike,
    count: int = 32,
    title: str | None = None,
    names=None,
) -> tuple[Path, int]:
    """Draw up to ``count`` misclassified ``images`` (``(N, C, H, W)``, 1 or 3 channels) with
    ``true → predicted (score)`` above each (class ``names`` if given, else the indices), the
    surest mistakes first, and save to ``path``.  Returns the path and how many were drawn.
    Needs matplotlib (``tinycnn[plot]``)."""
    from .._plotting import figure, image_cell, save

    if count < 1:
        raise ValueError(f"plot_mistakes: count must be >= 1, got {count}")
    x, s, t = np.asarray(images), np.asarray(scores), class_indices(y_true)
    picked = worst_mistakes(t, s, count)
    cols = max(1, min(8, len(picked)))
    rows = max(1, -(-len(picked) // cols))
    fig = figure("plot_mistakes", 1.2 * cols, 1.35 * rows + 0.5)
    for k, i in enumerate(picked):
        p = int(s[i].argmax())
        true, guess = (t[i], p) if names is None else (names[t[i]], names[p])
        ax = image_cell(fig, rows, cols, k, f"{true} → {guess} ({100 * s[i, p]:.0f} %)", 7, 2)
        img = x[i]
        if img.shape[0] == 3:
            ax.imshow(np.clip(np.moveaxis(img, 0, -1), 0, 1), interpolation="nearest")
        else:
            ax.imshow(img[0], cmap="gray", interpolation="nearest")
    wrong = int((s.argmax(-1) != t).sum())
    head = f"{wrong:,} of {len(t):,} wrong; the {len(picked)} surest mistakes (true → predicted)"
    fig.suptitle(f"{title}: {head}" if title else head, fontsize=9)
    return save(fig, path), len(picked)
