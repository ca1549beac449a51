"""Seeded randomness.  Every random choice in tinycnn (initializers, dropout, shuffling) draws
from a ``numpy.random.Generator``: one passed explicitly, or the global one that
``tinycnn.manual_seed`` resets."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the global generator (returned) so runs repeat exactly."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    return _generator


def as_generator(rng=None) -> np.random.Generator:
    """``rng`` as a Generator: None -> the global one, an int -> a new seeded one."""
    if rng is None:
        return _generator
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"expected a seed (int), a numpy Generator or None, got {type(rng).__name__}")


def get_state() -> dict:
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    _generator.bit_generator.state = state
