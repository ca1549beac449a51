"""A user's own image file, made into one input sample the way the training images were made.

For a 1-channel model the image is prepared as MNIST's digits were (LeCun et al.): dark ink on
light paper is inverted to light on black, the ink's bounding box is scaled to fit a 20×20 box
(aspect ratio kept, anti-aliased), and that is placed in a 28×28 field with the ink's centre of
mass at pixel (14, 14), as in MNIST; then it is zero-padded to 32×32 (as
``load_mnist(pad_to_32=True)``) or resized to the model's size.  For a 3-channel model the
image is resized to the model's height and width.  Values are in [0, 1], as the bundled
datasets'.

Reading and resizing use Pillow (it comes with matplotlib, the ``plot`` extra): PNG, JPEG, BMP,
GIF, TIFF.  A ``.npy`` file holds the array itself: ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``,
with values in [0, 1] or [0, 255] (8-bit), or a ``uint16`` array of 16-bit values.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["load_image", "mnist_like"]

INK = 0.2  # a pixel is ink above this fraction of the image's brightest pixel
BOX = 20  # MNIST: the digit fits a 20x20 box ...
FIELD = 28  # ... centred by mass in a 28x28 field


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "reading image files needs Pillow (it comes with matplotlib): "
            "pip install 'tinycnn[plot]'"
        ) from None
    return Image


def _read(path: Path) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` float32 in [0, 1]."""
    if path.suffix.lower() == ".npy":
        a = _read_npy(path)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = np.moveaxis(a, 0, -1)  # (C, H, W) -> (H, W, C)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
            raise ValueError(
                f"{path}: expected an image array (H, W), (H, W, C) or (C, H, W) with 1 or 3 "
                f"channels, got shape {a.shape}"
            )
        return a
    Image = _pil()
    try:
        with Image.open(path) as im:
            from PIL import ImageOps

            im = ImageOps.exif_transpose(im)  # a phone photo: upright, as it is shown
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit, 32-bit, float grey
                return _wide_gray(np.asarray(im), im.mode, path)
            im = im.convert("RGBA")
            rgba = np.asarray(im, dtype=np.float32) / 255.0
    except OSError as e:  # PIL.UnidentifiedImageError is an OSError
        raise ValueError(f"{path}: not an image file Pillow can read ({e})") from None
    except Image.DecompressionBombError as e:
        raise ValueError(f"{path}: too large to read ({e})") from None
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    return rgb * alpha + (1.0 - alpha)  # transparent pixels are white paper


def _read_npy(path: Path) -> np.ndarray:
    """A ``.npy`` array as float32 in [0, 1]: values in [0, 1] are kept, in [0, 255] taken
    as 8-bit and ``uint16`` arrays as 16-bit; anything else is refused, not clipped."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a .npy array numpy can read ({e})") from None
    if not isinstance(a, np.ndarray):  # an .npz archive
        a.close()
        raise ValueError(f"{path}: not a .npy array (an .npz archive of several?)")
    if a.dtype.kind not in "buif":
        raise ValueError(f"{path}: expected a numeric image array, got dtype {a.dtype}")
    if a.size == 0:
        raise ValueError(f"{path}: the array is empty (shape {a.shape})")
    if not np.isfinite(a).all():
        raise ValueError(f"{path}: the array has {int((~np.isfinite(a)).sum())} NaN/Inf values")
    top = 65535.0 if a.dtype == np.uint16 else 255.0
    a = a.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > top:
        raise ValueError(
            f"{path}: values from {lo:g} to {hi:g}; an image array holds values in [0, 1], "
            "[0, 255] (8-bit) or, as uint16, [0, 65535]"
        )
    if hi > 1.0 or top > 255.0:
        a = a / np.float32(top)
    return a


def _wide_gray(a: np.ndarray, mode: str, path: Path) -> np.ndarray:
    """A grey image of more than 8 bits in [0, 1]: Pillow's RGB conversion would clip it to
    255 (a 16-bit PNG would turn white).  16-bit values are over 65535; 32-bit integers over
    65535 too when they fit (16-bit data read as "I"), else over their maximum; floats are kept
    when already in [0, 1], else taken as 8-bit values (others are refused, not clipped)."""
    a = a.astype(np.float64)
    if mode == "F" and a.size and not (np.isfinite(a).all() and 0 <= a.min() <= a.max() <= 255):
        raise ValueError(
            f"{path}: float values from {a.min():g} to {a.max():g}; a float image holds values "
            "in [0, 1] or [0, 255] (8-bit)"
        )
    if mode == "F":
        top = 1.0 if a.size == 0 or a.max() <= 1.0 else 255.0
    elif mode.startswith("I;16") or (a.size and a.max() <= 65535):
        top = 65535.0
    else:
        top = float(a.max())
    return np.clip(a / top, 0.0, 1.0).astype(np.float32)


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Anti-aliased resize of a float ``(H, W)`` plane to ``(h, w)``."""
    Image = _pil()
    out = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    return np.asarray(out.resize((w, h), Image.Resampling.LANCZOS), dtype=np.float32)


def mnist_like(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """A grey ``(H, W)`` plane in [0, 1] as an MNIST digit: ``(28, 28)`` float32, light ink on
    black, the ink scaled into a 20×20 box and centred by mass."""
    g = np.asarray(gray, dtype=np.float32)
    if g.mean() > 0.5:  # mostly light: dark ink on paper
        g = 1.0 - g
    g = g - np.median(g)  # the paper's own grey becomes 0
    peak = float(g.max(initial=0.0))
    ink = g > INK * peak
    if peak <= 0.0 or not ink.any():
        raise ValueError(f"{name}: no ink found (the image is one flat shade)")
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = np.clip(g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] / peak, 0.0, 1.0)
    h, w = crop.shape
    s = BOX / max(h, w)
    h2, w2 = max(1, round(h * s)), max(1, round(w * s))
    digit = np.clip(_resize(crop, h2, w2), 0.0, 1.0)
    field = np.zeros((FIELD, FIELD), np.float32)
    top, left = (FIELD - h2) // 2, (FIELD - w2) // 2
    field[top : top + h2, left : left + w2] = digit
    total = field.sum()
    yy, xx = np.indices(field.shape)
    dy = round(FIELD / 2 - float((yy * field).sum() / total))  # MNIST's centre: (14, 14)
    dx = round(FIELD / 2 - float((xx * field).sum() / total))
    dy = int(np.clip(dy, -top, FIELD - top - h2))  # shift the box, never off the field
    dx = int(np.clip(dx, -left, FIELD - left - w2))
    out = np.zeros_like(field)
    out[top + dy : top + dy + h2, left + dx : left + dx + w2] = digit
    return out


def load_image(path: str | os.PathLike, input_shape, prepare: str = "mnist") -> np.ndarray:
    """The image file at ``path`` as one sample of ``input_shape`` ``(C, H, W)`` (float32).

    ``prepare="mnist"`` makes a 1-channel image an MNIST digit (see the module docstring);
    ``"resize"`` only resizes it (grey by luminance), as the images of an image folder."""
    if prepare not in ("mnist", "resize"):
        raise ValueError(f"load_image: prepare must be 'mnist' or 'resize', got {prepare!r}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    c, h, w = (int(s) for s in input_shape)
    a = _read(path)
    if c == 1:
        gray = a if a.ndim == 2 else a @ np.array([0.299, 0.587, 0.114], np.float32)
        if prepare == "resize":
            return np.clip(_resize(gray, h, w), 0.0, 1.0)[None].astype(np.float32)
        digit = mnist_like(gray, str(path))
        if (h, w) == (32, 32):
            digit = np.pad(digit, 2)
        elif (h, w) != (FIELD, FIELD):
            digit = np.clip(_resize(digit, h, w), 0.0, 1.0)
        return digit[None].astype(np.float32)
    if c == 3:
        rgb = np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a
        planes = [np.clip(_resize(rgb[..., k], h, w), 0.0, 1.0) for k in range(3)]
        return np.stack(planes).astype(np.float32)
    raise ValueError(f"image files fit 1- or 3-channel models; this one takes {c} channels")
