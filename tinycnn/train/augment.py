"""Batch augmentations for ``fit(..., augment=...)``: callables ``(x_batch, rng) -> x_batch``
applied to each *training* batch (never to validation data), drawing from the epoch's generator
so that seeded runs repeat and resume exactly."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["RandomTranslation"]


class RandomTranslation:
    """Shift each image by a random whole number of pixels in ``[-max_shift, max_shift]`` along
    height and width independently, filling with zeros (MNIST's background).

    Parameters
    ----------
    max_shift : int
        The largest shift, in pixels.

    Examples
    --------
    >>> model.fit(x, y, epochs=20, augment=RandomTranslation(2))
    """

    def __init__(self, max_shift: int = 2):
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"RandomTranslation: max_shift must be an int >= 0, got {max_shift!r}")
        self.max_shift = max_shift

    def __repr__(self) -> str:
        return f"RandomTranslation({self.max_shift})"

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.max_shift
        if s == 0:
            return x
        if x.ndim != 4:
            raise ValueError(f"RandomTranslation: expects NCHW images, got shape {x.shape}")
        n, _, h, w = x.shape
        padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, 2s+1, 2s+1, H, W)
        oy = rng.integers(0, 2 * s + 1, n)
        ox = rng.integers(0, 2 * s + 1, n)
        return np.ascontiguousarray(windows[np.arange(n), :, oy, ox])
