"""Datasets: MNIST inside the package (offline), Fashion-MNIST and CIFAR-10 downloaded into a
checksummed cache, a strict IDX reader, a user's own image file as a model input, and a
user's own labelled images (one folder per class)."""

from __future__ import annotations

from .cifar import load_cifar10
from .download import DownloadError, cache_dir, fetch
from .folder import folder_classes, load_image_folder
from .idx import IDXError, decode_idx, encode_idx, read_idx
from .images import load_image, mnist_like
from .mnist import load_fashion_mnist, load_mnist, prepare

__all__ = [
    "DownloadError",
    "IDXError",
    "cache_dir",
    "decode_idx",
    "encode_idx",
    "fetch",
    "folder_classes",
    "load_cifar10",
    "load_fashion_mnist",
    "load_image",
    "load_image_folder",
    "load_mnist",
    "mnist_like",
    "prepare",
    "read_idx",
]
