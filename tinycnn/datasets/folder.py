"""A user's own labelled images: one folder per class, as Keras' ``image_dataset_from_directory``.

Two layouts::

    DIR/train/<class>/*.png      DIR/<class>/*.png
    DIR/test/<class>/*.png       (every 5th image of each class, in name order, is a test image)

Class names are the folder names in sorted order; class ``k`` is the ``k``-th.  Files are read
recursively inside each class folder (PNG, JPEG, BMP, GIF, TIFF, WebP through Pillow, or
``.npy``), resized to the model's height and width (anti-aliased, aspect ratio not kept, as
Keras' default), grey by luminance for a 1-channel model, with values in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._split import check_split

__all__ = ["IMAGE_SUFFIXES", "TEST_EVERY", "folder_classes", "image_files", "load_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".npy")
SPLIT_NAMES = ("train", "test", "val", "valid", "validation")  # not class names
TEST_EVERY = 5  # without train/ and test/, image i of a class is a test image when i % 5 == 4


def _class_root(root: Path, split: str) -> Path:
    """Where ``split``'s class folders are: ``root/split`` in the train/test layout, else
    ``root``."""
    return root / split if (root / "train").is_dir() and (root / "test").is_dir() else root


def _classes(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def folder_classes(root: str | os.PathLike) -> list[str]:
    """The class names of the image folder ``root`` (its class folders, sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"load_image_folder: {root} is not a directory")
    base = _class_root(root, "train")
    names = _classes(base)
    if not names:
        raise ValueError(
            f"load_image_folder: {root} has no class folders; put each class's images in a "
            f"folder of its own: {root}/<class>/*.png (or {root}/train/<class>/ and "
            f"{root}/test/<class>/)"
        )
    splits = [n for n in names if n.lower() in SPLIT_NAMES]
    if base == root and splits:
        raise ValueError(
            f"load_image_folder: {root} has a {splits[0]!r} folder, which would be read as a "
            f"class; for a split, use {root}/train/<class>/ and {root}/test/<class>/ "
            f"(validation images come from train), else {root}/<class>/ alone"
        )
    if len(names) == 1:
        raise ValueError(
            f"load_image_folder: {base} has one class folder, {names[0]!r}; a classifier needs "
            f"two or more: {base}/<class>/*.png, one folder per class"
        )
    if base != root and _classes(root / "test") != names:
        raise ValueError(
            f"load_image_folder: {root}/train and {root}/test have different class folders "
            f"({', '.join(names)} against {', '.join(_classes(root / 'test'))})"
        )
    return names


def image_files(directory: Path) -> list[Path]:
    """The image files anywhere inside ``directory``, in name order (hidden files and folders
    skipped); a broken link to an image is refused."""
    found = []
    for p in directory.rglob("*"):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if any(part.startswith(".") for part in p.relative_to(directory).parts):
            continue
        if p.is_symlink() and not p.exists():
            raise ValueError(f"{p}: a broken link (to {os.readlink(p)})")
        if p.is_file():
            found.append(p)
    return sorted(found)


def load_image_folder(
    root: str | os.PathLike,
    split: str = "train",
    input_shape=(3, 32, 32),
    one_hot: bool = False,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``split`` (``"train"`` or ``"test"``) under ``root`` as ``x`` ``(N, C, H,
    W)`` float32 in [0, 1] and ``y`` int64 class indices (one-hot rows with ``one_hot``).

    The samples take the classes in turn (the first of each class, then the second, ...), so
    ``limit`` (keep the first N) keeps every class."""
    from .images import load_image

    check_split("load_image_folder", split)
    if limit is not None and (
        not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1
    ):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    root = Path(root)
    names = folder_classes(root)
    base = _class_root(root, split)
    per_class = []
    for k, name in enumerate(names):
        files = image_files(base / name)
        if base == root:  # one folder per class: every TEST_EVERY-th file is a test image
            files = [
                f
                for i, f in enumerate(files)
                if (i % TEST_EVERY == TEST_EVERY - 1) == (split == "test")
            ]
        if not files and split == "train":
            raise ValueError(
                f"load_image_folder: class {name!r} has no images in {base / name} (files "
                f"ending {', '.join(IMAGE_SUFFIXES)})"
            )
        per_class.append([(f, k) for f in files])
    order: list[tuple[Path, int]] = []
    for rank in range(max(map(len, per_class))):  # the classes in turn
        order += [items[rank] for items in per_class if rank < len(items)]
    if limit is not None:
        order = order[:limit]
    if not order:
        why = (
            f" (with one folder per class, every {TEST_EVERY}th image of a class is a test "
            f"image: give a class at least {TEST_EVERY})"
            if base == root
            else ""
        )
        raise ValueError(f"load_image_folder: no {split} images under {root}{why}")
    x = np.stack([load_image(f, input_shape, prepare="resize") for f, _ in order])
    y = np.array([k for _, k in order], dtype=np.int64)
    if one_hot:
        y = np.eye(len(names), dtype=np.float32)[y]
    return x, y
