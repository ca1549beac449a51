"""``Sequential``: a plain stack of layers, a :class:`Model` with one input and one output."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .layer import Layer
from .model import Model
from .symbolic import Input, InputLayer, SymbolicTensor


class Sequential(Model):
    """A stack of layers, each feeding the next.

    Parameters
    ----------
    layers : list, optional
        Layers in order; the first may be ``tc.Input(shape)`` to fix the input shape.
    name : str, optional
        Default ``sequential``, ``sequential_1``, ...
    input_shape : tuple of int, optional
        One sample's shape (an alternative to a leading ``Input``).

    Without an input shape the model is built on its first call, from the data's shape.

    Examples
    --------
    >>> model = tc.Sequential([tc.Input((1, 28, 28)), L.Flatten(), L.Dense(10)])
    """

    def __init__(
        self,
        layers: list | None = None,
        name: str | None = None,
        input_shape: tuple[int, ...] | None = None,
        dtype: Any = np.float32,
    ):
        Layer.__init__(self, name=name)
        self._stack: list[Layer] = []
        self._input: SymbolicTensor | None = None
        self._output: SymbolicTensor | None = None
        self._single_input = self._single_output = True
        self.layers = []
        if input_shape is not None:
            self._input = self._output = Input(input_shape, dtype=dtype)
        for lyr in layers or []:
            self.add(lyr)

    def add(self, layer: Layer | SymbolicTensor) -> None:
        """Append ``layer`` (or set the input with ``tc.Input(...)`` before any layer)."""
        if isinstance(layer, SymbolicTensor) or isinstance(layer, InputLayer):
            tensor = layer.output if isinstance(layer, InputLayer) else layer
            if not isinstance(tensor.node.layer, InputLayer):
                raise TypeError(
                    f'Sequential "{self.name}": add() takes layers; a symbolic tensor is only '
                    "accepted as the first item, and only from tc.Input(...)"
                )
            if self._stack or self._input is not None:
                raise ValueError(f'Sequential "{self.name}": the input must come first, once')
            self._input = self._output = tensor
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f'Sequential "{self.name}": add() takes a Layer, got {type(layer).__name__}'
            )
        if layer.multi_input:
            raise TypeError(
                f'Sequential "{self.name}": {layer.where} takes several inputs; use the '
                "functional API (tc.Model) for branches and merges"
            )
        self._stack.append(layer)
        if self._input is not None:
            self._output = layer(self._output)
            self._init_graph(self._input, self._output)

    def build(self, input_shape) -> None:
        """Build on an input of ``input_shape`` (batch dimension included or ``None``)."""
        if self._input is not None:
            return
        x = self._input = Input(tuple(input_shape[1:]), dtype=self.dtype or np.float32)
        for lyr in self._stack:
            x = lyr(x)
        self._output = x
        self._init_graph(self._input, self._output)

    def _ensure_built(self, shape, dtype) -> None:
        if self._input is None:
            self.dtype = np.dtype(dtype)
            self.build(shape)

    def _call_symbolic(self, inputs, training):
        if not isinstance(inputs, (list, tuple)):
            self._ensure_built(inputs.shape, inputs.dtype)
        return super()._call_symbolic(inputs, training)

    def _call_eager(self, inputs, training):
        if self._input is None and not isinstance(inputs, (list, tuple)):
            x = inputs if isinstance(inputs, Tensor) else np.asarray(inputs)
            self._ensure_built(x.shape, x.dtype if x.dtype.kind == "f" else np.float32)
        return super()._call_eager(inputs, training)

    @property
    def graph(self):
        if self._input is None or self._output is self._input:
            raise ValueError(
                f'Sequential "{self.name}": not built yet: give an input shape (tc.Input(...) '
                "first, or input_shape=) or call the model on data"
            )
        return self._graph

    @graph.setter
    def graph(self, value) -> None:
        self._graph = value
