"""Tape-based reverse-mode autograd.

Every differentiable op is a :class:`Function` subclass with a ``forward`` on raw device arrays
and a ``backward`` that returns one gradient per tensor input.  ``Function.apply`` runs the
forward and, when gradients are needed, links the output tensor to the function object: that
link (output -> function -> input tensors) *is* the tape.  ``backward`` sorts it topologically
without recursion, so graphs hundreds of ops deep (ResNet-50, Inception-v4) are fine.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from ._lazy import LazyModule

if TYPE_CHECKING:  # pragma: no cover
    from .tensor import Tensor

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def _set_grad_enabled(mode: bool):
    previous = is_grad_enabled()
    _state.enabled = mode
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad():
    """Context manager (and decorator) under which no op is recorded on the tape."""
    return _set_grad_enabled(False)


def enable_grad():
    return _set_grad_enabled(True)


# ``tinycnn.tensor`` imports this module: bound on first use (see _lazy.py)
_tensor: Any = LazyModule("tinycnn.tensor", globals(), "_tensor")


class Function:
    """One recorded op.  Subclasses implement ``forward(*arrays, **params)`` and
    ``backward(grad) -> tuple`` (one entry per tensor input, ``None`` where not needed).

    ``self.needs_input_grad`` tells the backward which gradients to compute: skipping the
    gradient of an input that does not require it (an image, a label) is a large saving.
    """

    needs_input_grad: tuple[bool, ...] = ()
    parents: tuple[Tensor | None, ...] = ()
    _released = False

    def forward(self, *arrays: Any, **params: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: Any) -> tuple[Any, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor | None, **params: Any) -> Tensor:
        """Run the op on ``inputs`` (tensors, or ``None`` for an absent optional operand)."""
        # the hot path of every op: no imports, one pass over the inputs
        device = None
        for t in inputs:
            if t is not None:
                if device is None:
                    device = t.device
                elif t.device != device:
                    _tensor.check_same_device(
                        cls.__name__.lower(), [t for t in inputs if t is not None]
                    )
        fn = cls()
        fn.needs_input_grad = needs = tuple(t is not None and t.requires_grad for t in inputs)
        fn.device = device
        out_data = fn.forward(*(None if t is None else t.data for t in inputs), **params)
        requires_grad = True in needs and getattr(_state, "enabled", True)
        out = _tensor.Tensor._wrap(out_data, fn.device, requires_grad)  # ToDevice moves it
        if requires_grad:
            fn.parents = inputs
            out._ctx = fn
        return out

    def release(self) -> None:
        """Drop the references that keep the graph's arrays alive once backward has used them."""
        self.__dict__.clear()
        self._released = True


def backward(root: Tensor, grad: Tensor | None = None) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no grad_fn "
            "(was it computed under no_grad(), or from tensors with requires_grad=False?)"
        )
    if root._ctx is not None and root._ctx._released:
        raise RuntimeError(
            "backward: trying to backward through the graph a second time; the tape is freed "
            "after the first backward (compute the forward again)"
        )
    if grad is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs; this "
                f"tensor has shape {root.shape}: pass grad= of that shape"
            )
        grad = root._backend.full(root.shape, 1.0, root.dtype)
    else:
        if grad.device != root.device:
            raise ValueError(
                f"backward: grad is on {grad.device}, the tensor on {root.device}; move it with "
                ".to(device) first"
            )
        if tuple(grad.shape) != root.shape:
            raise ValueError(
                f"backward: grad shape {tuple(grad.shape)} != tensor shape {root.shape}"
            )
        # a copy in the tensor's dtype, as PyTorch casts: the leaves' .grad then has their
        # dtype and never shares memory with the caller's array
        grad = root._backend.astype(grad.data, root.dtype)

    order = _topological_order(root)
    grads: dict[int, Any] = {id(root): grad}
    handed: set[int] = set()  # the memory given to leaves so far (alive: they hold it)
    for node in order:  # outputs first
        g = grads.pop(id(node), None)
        fn = node._ctx
        if fn is None:  # a leaf: accumulate
            if g is not None and node.requires_grad:
                base = getattr(g, "base", None)  # a NumPy view's owner
                key = id(g if base is None else base)
                if key in handed:  # one array for two leaves (x + y): each gets its own
                    g = node._backend.copy(g)
                    key = id(g)
                handed.add(key)
                node._accumulate_grad(g)
            continue
        if g is None:
            fn.release()
            continue
        if fn._released:
            raise RuntimeError(
                "backward: part of this graph was already freed by an earlier backward; "
                "compute the forward again"
            )
        with no_grad():
            input_grads = fn.backward(g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, pg, needed in zip(fn.parents, input_grads, fn.needs_input_grad):
            if parent is None or not needed or pg is None:
                continue
            key = id(parent)
            if key in grads:
                grads[key] = parent._backend.add(grads[key], pg)
            else:
                grads[key] = pg
        fn.release()
        node._ctx = fn  # keep the released marker: a second backward raises clearly


def _topological_order(root: Tensor) -> list[Tensor]:
    """Reverse post-order of the graph under ``root`` (iterative DFS, no recursion)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        fn = node._ctx
        if fn is not None and not fn._released:
            for parent in fn.parents:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order
