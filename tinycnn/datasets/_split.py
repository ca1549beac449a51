"""The two splits every dataset loader takes."""

from __future__ import annotations

SPLITS = ("train", "test")


def check_split(op: str, split: str) -> str:
    """``split`` if it is ``"train"`` or ``"test"``, else a ValueError naming the loader."""
    if split not in SPLITS:
        raise ValueError(f"{op}: split must be 'train' or 'test', got {split!r}")
    return split
