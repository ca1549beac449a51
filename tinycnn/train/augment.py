"""Batch augmentations for ``fit(..., augment=...)``: callables ``(x_batch, rng) -> x_batch``
applied to each *training* batch (never to validation data), drawing from the epoch's generator
so that seeded runs repeat and resume exactly."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["RandomTranslation"]


FILLS = {"zeros": "constant", "reflect": "reflect", "edge": "edge"}


class RandomTranslation:
    """Shift each image by a random whole number of pixels in ``[-max_shift, max_shift]`` along
    height and width independently.

    Parameters
    ----------
    max_shift : int
        The largest shift, in pixels.
    fill : str
        What the shift uncovers: ``"zeros"`` (MNIST's black background, the default),
        ``"reflect"`` (the image mirrored at its border, Keras' default, for photos and
        textures) or ``"edge"`` (the border pixels repeated).
    data_format : str
        ``"channels_first"`` (``(N, C, H, W)`` batches, the default) or ``"channels_last"``
        (``(N, H, W, C)``).

    Examples
    --------
    >>> model.fit(x, y, epochs=20, augment=RandomTranslation(2))
    """

    def __init__(self, max_shift: int = 2, fill: str = "zeros", data_format="channels_first"):
        if (
            not isinstance(max_shift, numbers.Integral)
            or isinstance(max_shift, bool)
            or max_shift < 0
        ):
            raise ValueError(f"RandomTranslation: max_shift must be an int >= 0, got {max_shift!r}")
        max_shift = int(max_shift)
        if fill not in FILLS:
            raise ValueError(
                f"RandomTranslation: fill must be one of {', '.join(FILLS)}, got {fill!r}"
            )
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(
                "RandomTranslation: data_format must be 'channels_first' or 'channels_last', "
                f"got {data_format!r}"
            )
        self.max_shift, self.fill, self.data_format = max_shift, fill, data_format

    def __repr__(self) -> str:
        fill = "" if self.fill == "zeros" else f", fill={self.fill!r}"
        last = ", data_format='channels_last'" if self.data_format == "channels_last" else ""
        return f"RandomTranslation({self.max_shift}{fill}{last})"

    def check_size(self, h: int, w: int) -> None:
        """Refuse images of ``h × w`` that a shift of ``max_shift`` would leave nothing of."""
        if self.max_shift >= min(h, w):
            raise ValueError(
                f"RandomTranslation: max_shift ({self.max_shift}) must be smaller than the "
                f"image's height and width ({h}×{w})"
            )

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.max_shift
        if s == 0:
            return x
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"RandomTranslation: expects a batch of images, got shape {x.shape}")
        if self.data_format == "channels_last":  # shift the NCHW view, give NHWC back
            x = x.transpose(0, 3, 1, 2)
        n, _, h, w = x.shape
        self.check_size(h, w)
        padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)), mode=FILLS[self.fill])
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, 2s+1, 2s+1, H, W)
        oy = rng.integers(0, 2 * s + 1, n)
        ox = rng.integers(0, 2 * s + 1, n)
        out = windows[np.arange(n), :, oy, ox]
        if self.data_format == "channels_last":
            out = out.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(out)
