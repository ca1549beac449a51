"""Symbolic tensors, the nodes that produce them, and ``Input``.

A :class:`SymbolicTensor` has a shape and a dtype but no data.  Calling a layer on one records a
:class:`Node` (one per call: a shared layer called twice has two nodes, so sharing never makes a
cycle) and returns the node's output tensors.  Nodes are numbered in creation order, which is a
topological order: a node can only consume tensors that already exist.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .layer import Layer
from .shapes import Shape, fmt_shape

_sequence = itertools.count()


class SymbolicTensor:
    """The output of a layer while a model is being written: shape (batch first, ``None``),
    dtype and the node that produced it."""

    __slots__ = ("shape", "dtype", "node", "index")
    __array_ufunc__ = None  # ``array * tensor`` calls __rmul__, not one layer per element

    def __init__(self, shape: Shape, dtype: np.dtype, node: Node, index: int):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        layer = self.node.layer
        suffix = f"[{self.index}]" if len(self.node.flat_outputs) > 1 else ""
        return f"{layer.name}{suffix}"

    def __repr__(self) -> str:
        return (
            f"<SymbolicTensor shape={fmt_shape(self.shape)} dtype={self.dtype} from {self.name!r}>"
        )

    # arithmetic builds layers, as Keras tensors do: y = x + shortcut
    def __add__(self, other):
        from ..layers import Add

        return Add()([self, other])

    def __mul__(self, other):
        from ..layers import Multiply, Rescale

        if isinstance(other, SymbolicTensor):
            return Multiply()([self, other])
        return Rescale(other)(self)

    __rmul__ = __mul__

    def __len__(self) -> int:  # pragma: no cover - guard
        raise TypeError("a symbolic tensor has no length; use .shape")

    def __bool__(self) -> bool:  # pragma: no cover - guard
        raise TypeError(
            "a symbolic tensor has no value: it describes data a model will receive; call the "
            "model on real data to get values"
        )


class Node:
    """One call of ``layer`` on symbolic ``inputs`` (a tensor, or a list for merge layers)."""

    def __init__(
        self,
        layer: Layer,
        inputs: Any,
        output_shapes: Any,
        block: tuple[str, ...],
        training: bool | None = None,
    ):
        self.seq = next(_sequence)
        self.layer = layer
        self.inputs = list(inputs) if isinstance(inputs, (list, tuple)) else inputs
        self.flat_inputs: list[SymbolicTensor] = (
            list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        )
        self.block = tuple(block)
        self.training = training
        self.call_index = len(layer._nodes)
        layer._nodes.append(self)
        dtype = self.flat_inputs[0].dtype if self.flat_inputs else layer.dtype
        if isinstance(output_shapes, list):
            self.flat_outputs = [
                SymbolicTensor(s, dtype, self, i) for i, s in enumerate(output_shapes)
            ]
            self.outputs: Any = list(self.flat_outputs)
        else:
            self.flat_outputs = [SymbolicTensor(output_shapes, dtype, self, 0)]
            self.outputs = self.flat_outputs[0]

    @property
    def input_shapes(self) -> list[Shape]:
        return [t.shape for t in self.flat_inputs]

    @property
    def output_shapes(self) -> list[Shape]:
        return [t.shape for t in self.flat_outputs]

    def __repr__(self) -> str:
        return f"<Node {self.seq} {self.layer.name!r} call {self.call_index}>"


class InputLayer(Layer):
    """The placeholder a model's data enters through (made by :func:`Input`)."""

    family = "input"
    base_name = "input"

    def __init__(self, shape: tuple[int, ...], dtype: Any = np.float32, name: str | None = None):
        super().__init__(name=name)
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(f"{self.where}: shape must be a tuple of ints, got {shape!r}") from None
        for s in shape:
            if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1:
                raise ValueError(
                    f"{self.where}: shape must hold positive ints without the batch dimension "
                    f"(e.g. (3, 224, 224)), got {shape!r}"
                )
        try:
            dtype = np.dtype(dtype)
        except TypeError as e:
            raise TypeError(f"{self.where}: dtype must be float32 or float64: {e}") from None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"{self.where}: dtype must be float32 or float64, got {dtype}")
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.built = True
        self.output = Node(self, [], (None, *self.shape), self.block).outputs

    def compute_output_shape(self, input_shape):
        return (None, *self.shape)


def Input(  # noqa: N802 - Keras' name
    shape: tuple[int, ...], dtype: Any = np.float32, name: str | None = None
) -> SymbolicTensor:
    """A model input: a symbolic tensor of ``shape`` (without the batch dimension).

    Parameters
    ----------
    shape : tuple of int
        One sample's shape, channels first: ``(3, 224, 224)``.
    dtype : float32 or float64
        Every layer downstream builds its weights in this dtype.
    name : str, optional
        Layer name (default ``input``, ``input_1``, ...).
    """
    return InputLayer(shape, dtype, name).output
