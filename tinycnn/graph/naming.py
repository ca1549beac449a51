"""Layer names and blocks.

A *block* groups the layers created (and called) inside ``with tc.block("name"):``; blocks nest,
and a layer created inside them gets a hierarchical name: ``"inception_3a/branch2/conv3x3"``.
The block path is recorded on every node, which is what summaries collapse and diagrams cluster.

Names are unique within a naming *session* (as in Keras): an unnamed layer is called after its
class (``conv2d``, ``conv2d_1``, ...), counted per block, so the same builder run twice in one
process gives suffixed names unless :func:`clear_session` is called in between.
"""

from __future__ import annotations

import contextlib
import re
import threading

_state = threading.local()


def _stack() -> list[str]:
    if not hasattr(_state, "stack"):
        _state.stack = []
    return _state.stack


def _used() -> set[str]:
    """Full names handed out this session."""
    if not hasattr(_state, "used"):
        _state.used = set()
    return _state.used


def _counters() -> dict[str, int]:
    """Auto-name stem -> the next suffix to try."""
    if not hasattr(_state, "counters"):
        _state.counters = {}
    return _state.counters


def clear_session() -> None:
    """Forget every name handed out, so auto-names start again at ``conv2d`` (Keras'
    ``keras.backend.clear_session``).  Models already built keep their names."""
    _state.used = set()
    _state.counters = {}


def current_block() -> tuple[str, ...]:
    """The path of the blocks open here, outermost first (``()`` outside every block)."""
    return tuple(_stack())


def _check_part(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} name must be a non-empty string, got {name!r}")
    if kind != "block" and "/" in name:
        raise ValueError(
            f"layer name {name!r} cannot contain '/': open blocks with tc.block(...) for "
            "hierarchical names"
        )
    if not re.fullmatch(r"[A-Za-z0-9_.\-+]+(/[A-Za-z0-9_.\-+]+)*", name):
        raise ValueError(
            f"{kind} name {name!r} may use letters, digits and _ . - + only ('/' separates "
            "block levels)"
        )


class block(contextlib.ContextDecorator):  # noqa: N801 - used like a function: tc.block("x")
    """Group the layers created and called inside into a named, nestable block.

    ``with tc.block("inception_3a"):`` names every layer created inside
    ``"inception_3a/<name>"`` and records the block on its nodes; ``summary(depth=)`` and
    ``draw(depth=)`` collapse blocks, and diagrams draw them as clusters.  ``"a/b"`` opens two
    levels at once.  Also usable as a decorator for a function that builds one block.

    Examples
    --------
    >>> with tc.block("inception_3a"):
    ...     with tc.block("branch2"):
    ...         y = L.Conv2D(96, 1, name="reduce")(x)   # "inception_3a/branch2/reduce"
    """

    def __init__(self, name: str):
        _check_part("block", name)
        self.name = name
        self.parts = name.split("/")

    def __enter__(self) -> block:
        _stack().extend(self.parts)
        return self

    def __exit__(self, *exc) -> bool:
        del _stack()[-len(self.parts) :]
        return False

    def __repr__(self) -> str:
        return f"block({self.name!r})"


def snake_case(class_name: str) -> str:
    """``BatchNormalization`` -> ``batch_normalization``, ``MaxPool2D`` -> ``max_pool2d``."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def layer_name(name: str | None, base: str) -> str:
    """The full hierarchical name of a new layer: the open blocks, then ``name`` or an unused
    ``base``, ``base_1``, ... (auto names never collide with a name already handed out)."""
    prefix = "/".join(_stack())
    used = _used()
    if name is not None:
        _check_part("layer", name)
        full = f"{prefix}/{name}" if prefix else name
        used.add(full)
        return full
    stem = f"{prefix}/{base}" if prefix else base
    counters = _counters()
    n = counters.get(stem, 0)
    full = stem if n == 0 else f"{stem}_{n}"
    while full in used:
        n += 1
        full = f"{stem}_{n}"
    counters[stem] = n + 1
    used.add(full)
    return full
