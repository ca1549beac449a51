"""MNIST (bundled in the package) and Fashion-MNIST (downloaded on first use)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from ._split import check_split
from .download import fetch
from .idx import IDXError, decode_idx, read_idx

__all__ = ["FASHION_MNIST", "load_fashion_mnist", "load_mnist", "prepare"]

_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# Zalando publishes MD5 sums only (github.com/zalandoresearch/fashion-mnist, README).
FASHION_MNIST = {
    "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "files": {
        "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
    },
}


def _check_split(split: str, op: str) -> tuple[str, str]:
    return _SPLITS[check_split(op, split)]


@lru_cache(maxsize=1)
def _bundled_sums() -> dict[str, str]:
    text = resources.files(__package__).joinpath("data/SHA256SUMS").read_text()
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            fields = line.split()
            if len(fields) != 2:
                raise IDXError(
                    f"tinycnn/datasets/data/SHA256SUMS, line {number}: expected '<sha256> "
                    f"<file>', got {line!r}; reinstall tinycnn"
                )
            sums[fields[1].lstrip("*")] = fields[0]
    return sums


def _check_pair(images: np.ndarray, labels: np.ndarray, name: str) -> None:
    if images.ndim != 3 or labels.ndim != 1:
        raise IDXError(
            f"{name}: expected images (N, H, W) and labels (N,), got "
            f"{images.shape} and {labels.shape}"
        )
    if len(images) != len(labels):
        raise IDXError(f"{name}: {len(images)} images but {len(labels)} labels")


@lru_cache(maxsize=2)
def _mnist_raw(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 arrays of one split, decoded and verified once per process (read-only)."""
    sums = _bundled_sums()
    arrays = []
    for stem in _check_split(split, "load_mnist"):
        if stem not in sums:
            raise IDXError(
                f"tinycnn/datasets/data/SHA256SUMS has no checksum of {stem}; reinstall tinycnn"
            )
        blob = resources.files(__package__).joinpath(f"data/{stem}.gz").read_bytes()
        array = decode_idx(blob, name=f"tinycnn/datasets/data/{stem}.gz", sha256=sums[stem])
        array.setflags(write=False)
        arrays.append(array)
    _check_pair(arrays[0], arrays[1], f"MNIST {split}")
    return arrays[0], arrays[1]


def prepare(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    pad_to_32: bool = False,
    scale: bool = True,
    one_hot: bool = False,
    limit: int | None = None,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """The seed's preprocessing of uint8 images ``(N, H, W)`` or ``(N, C, H, W)``: to NCHW
    ``dtype``, optionally zero-padded by 2 pixels a side (28x28 -> 32x32, LeNet-5's input),
    scaled to [0, 1]; labels as int64 or one-hot ``dtype`` rows."""
    if limit is not None:
        if not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a positive int or None, got {limit!r}")
        images, labels = images[:limit], labels[:limit]
    dtype = np.dtype(dtype)
    if images.ndim == 3:
        images = images[:, None]
    n, c, h, w = images.shape
    pad = 2 if pad_to_32 else 0
    # one allocation of the final array (60 000 padded images are 245 MB): no float copy of
    # the unpadded images, no second array for the padding
    x = (
        np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dtype)
        if pad
        else np.empty((n, c, h, w), dtype=dtype)
    )
    inner = x[:, :, pad : pad + h, pad : pad + w]
    if scale:
        np.divide(images, dtype.type(255.0), out=inner, dtype=dtype)
    else:
        inner[...] = images
    y = labels.astype(np.int64)
    if one_hot:
        y = np.eye(num_classes, dtype=dtype)[y]
    return x, y


def load_mnist(
    split: str = "train",
    pad_to_32: bool = False,
    scale: bool = True,
    one_hot: bool = False,
    limit: int | None = None,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST from the copy inside the package (no network), SHA-256 verified.

    Returns ``(x, y)``: ``x`` of shape ``(N, 1, 28, 28)`` (``(N, 1, 32, 32)`` with
    ``pad_to_32``), ``dtype``, in [0, 1] when ``scale`` else [0, 255]; ``y`` int64 labels
    ``(N,)``, or one-hot ``(N, 10)`` rows.  ``limit`` keeps the first N examples.

    Example: the seed's LeNet-5 input is ``load_mnist("train", pad_to_32=True, one_hot=True)``.
    """
    images, labels = _mnist_raw(split)
    return prepare(images, labels, 10, pad_to_32, scale, one_hot, limit, dtype)


def load_fashion_mnist(
    split: str = "train",
    pad_to_32: bool = False,
    scale: bool = True,
    one_hot: bool = False,
    limit: int | None = None,
    dtype=np.float32,
    base_url: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (same layout as MNIST), downloaded once into the cache (see
    :func:`tinycnn.datasets.cache_dir`); ``base_url`` points at a mirror."""
    arrays = []
    for stem in _check_split(split, "load_fashion_mnist"):
        name = stem + ".gz"
        url = (base_url or FASHION_MNIST["url"]).rstrip("/") + "/" + name
        path = fetch(url, name, FASHION_MNIST["files"][name], subdir="fashion-mnist")
        arrays.append(read_idx(path))
    _check_pair(arrays[0], arrays[1], f"Fashion-MNIST {split}")
    return prepare(arrays[0], arrays[1], 10, pad_to_32, scale, one_hot, limit, dtype)
