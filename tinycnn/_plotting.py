"""matplotlib figures, headless: a bare ``Figure`` on the Agg canvas, never pyplot (no window,
no display needed, the user's backend untouched).  Shared by the training curves, the feature
maps, the filters and the mistakes."""

from __future__ import annotations

import os
from pathlib import Path

DPI = 110


def figure(who: str, width: float, height: float):
    """A bare ``Figure`` of ``width`` x ``height`` inches; ``who`` names the caller in the
    error when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"{who} needs matplotlib: pip install 'tinycnn[plot]'") from None
    return Figure(figsize=(width, height))


def image_cell(fig, rows: int, cols: int, k: int, title: str, fontsize: int, pad: float):
    """Grid cell ``k`` (from 0) for an image: no ticks, a small title above."""
    ax = fig.add_subplot(rows, cols, k + 1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=fontsize, pad=pad)
    return ax


def save(fig, path: str | os.PathLike) -> Path:
    """Lay ``fig`` out and write it to ``path`` (.png, .svg, .pdf)."""
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path
