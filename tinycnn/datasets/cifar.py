"""CIFAR-10, downloaded on first use (the *binary* distribution: the Python one is pickled, and
unpickling a downloaded file can run code)."""

from __future__ import annotations

import tarfile

import numpy as np

from ._split import check_split
from .download import fetch
from .mnist import prepare

__all__ = ["CIFAR10", "load_cifar10"]

# The University of Toronto publishes MD5 sums only (www.cs.toronto.edu/~kriz/cifar.html).
CIFAR10 = {
    "url": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    "filename": "cifar-10-binary.tar.gz",
    "checksum": "md5:c32a1d4ab5d03f1284b67883e8d87530",
    "train": [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["cifar-10-batches-bin/test_batch.bin"],
}
_RECORD = 1 + 3 * 32 * 32  # label byte, then 3 planes of 32x32 (already CHW)


def _read_members(path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    # Members are read into memory by name, never extracted: no path in the archive is trusted.
    with tarfile.open(path, "r:gz") as tar:
        for name in names:
            try:
                member = tar.getmember(name)
            except KeyError:
                raise ValueError(f"{path}: the archive has no {name}") from None
            f = tar.extractfile(member)
            if f is None:
                raise ValueError(f"{path}: {name} is not a regular file")
            raw = f.read()
            if len(raw) % _RECORD:
                raise ValueError(
                    f"{path}: {name} has {len(raw)} bytes, not a multiple of the "
                    f"{_RECORD}-byte CIFAR record: truncated or corrupt"
                )
            records = np.frombuffer(raw, np.uint8).reshape(-1, _RECORD)
            labels.append(records[:, 0])
            images.append(records[:, 1:].reshape(-1, 3, 32, 32))
    y = np.concatenate(labels)
    if y.size and y.max() > 9:
        raise ValueError(f"{path}: label {int(y.max())} out of range 0..9: corrupt archive")
    return np.concatenate(images), y


def load_cifar10(
    split: str = "train",
    scale: bool = True,
    one_hot: bool = False,
    limit: int | None = None,
    dtype=np.float32,
    url: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10: ``x`` ``(N, 3, 32, 32)`` (50 000 train / 10 000 test), ``y`` int64 or one-hot.
    Downloaded once (162 MB) into the cache; ``url`` points at a mirror."""
    check_split("load_cifar10", split)
    path = fetch(url or CIFAR10["url"], CIFAR10["filename"], CIFAR10["checksum"], "cifar10")
    images, labels = _read_members(path, CIFAR10[split])
    return prepare(images, labels, 10, False, scale, one_hot, limit, dtype)
