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
            self._set_input(Input(input_shape, dtype=dtype))
        if isinstance(layers, (Layer, SymbolicTensor)):
            raise TypeError(
                f'Sequential "{self.name}": layers must be a list of layers, got one '
                f"{type(layers).__name__}: pass [{type(layers).__name__.lower()}]"
            )
        for lyr in layers or []:
            self.add(lyr)

    def _set_input(self, tensor: SymbolicTensor) -> None:
        self._input = self._output = tensor
        self._init_graph(tensor, tensor)

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
            self._set_input(tensor)
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
        if self._input is not None:
            self._output = layer(self._output)
            self._init_graph(self._input, self._output)
        self._stack.append(layer)

    def build(self, input_shape) -> None:
        """Build on an input of ``input_shape`` (batch dimension included or ``None``)."""
        if self._input is not None:
            return
        x = inp = Input(tuple(input_shape[1:]), dtype=self.dtype or np.float32)
        calls = {id(lyr): len(lyr._nodes) for lyr in self._stack}
        try:
            for lyr in self._stack:
                x = lyr(x)
        except Exception:
            for lyr in self._stack:  # forget the calls of the failed build
                del lyr._nodes[calls[id(lyr)] :]
            raise
        self._init_graph(inp, x)
        self._input, self._output = inp, x

    def _ensure_built(self, shape, dtype) -> None:
        if self._input is None:
            self.dtype = np.dtype(dtype)
            self.build(shape)

    def _call_symbolic(self, inputs, training):
        if not isinstance(inputs, (list, tuple)):
            self._ensure_built(inputs.shape, inputs.dtype)
        return super()._call_symbolic(inputs, training)

    def _call_eager(self, inputs, training):
        if self._input is None:
            x = inputs
            if (
                isinstance(x, (list, tuple))
                and len(x) == 1
                and isinstance(x[0], (Tensor, np.ndarray))
            ):
                x = x[0]  # [x] for one input, as Model takes it
            x = x if isinstance(x, Tensor) else Tensor(x)
            self._ensure_built(x.shape, x.dtype if x.dtype.kind == "f" else np.float32)
        return super()._call_eager(inputs, training)

    def _not_built(self) -> ValueError:
        return ValueError(
            f'Sequential "{self.name}": not built yet: give an input shape (tc.Input(...) '
            "first, or input_shape=) or call the model on data"
        )

    @property
    def graph(self):
        if self._input is None:
            raise self._not_built()
        if self._output is self._input:
            raise ValueError(f'Sequential "{self.name}": has no layers yet: add() some')
        return self._graph

    @property
    def input_shape(self):
        if self._input is None:
            raise self._not_built()
        return super().input_shape

    @property
    def output_shape(self):
        if self._input is None:
            raise self._not_built()
        return super().output_shape

    def count_params(self) -> int:
        if self._input is None:
            raise self._not_built()  # 0 would read as a model without weights
        return super().count_params()

    @graph.setter
    def graph(self, value) -> None:
        self._graph = value
