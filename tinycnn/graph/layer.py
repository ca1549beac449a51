"""The :class:`Layer` base class: weights, the symbolic/eager call protocol, regularization.

A layer is called on *symbolic* tensors (from ``Input``) to write a model: the call runs only the
pure ``compute_output_shape`` rule, builds the weights on first use (that is when the input
channel count becomes known) and records a :class:`~tinycnn.graph.symbolic.Node`.  Called on real
tensors it runs ``call``, which uses ``tinycnn.functional`` and so records on the tape.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..tensor import Tensor
from . import naming
from .shapes import Shape, fmt_shape

_losses = threading.local()  # the regularization-loss list of the model call in progress
_shapes = threading.local()  # .only: weights are zeros, not drawn (see shapes_only)


class Weight:
    """A layer's named tensor with what the training loop needs to know about it."""

    __slots__ = ("name", "tensor", "trainable", "regularizer", "constraint", "layer")

    def __init__(self, name, tensor, trainable, regularizer, constraint, layer):
        self.name = name
        self.tensor = tensor
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint
        self.layer = layer

    @property
    def effective_trainable(self) -> bool:
        return self.trainable and self.layer.trainable


@contextlib.contextmanager
def shapes_only():
    """Build models whose weights are never used (a summary, a diagram, a parameter count):
    inside, weights are zero arrays whose memory the OS hands out only when touched, not drawn
    from their initializers.  Listing the zoo then draws no 180 M random numbers
    (3.2 s -> 0.5 s)."""
    saved = getattr(_shapes, "only", False)
    _shapes.only = True
    try:
        yield
    finally:
        _shapes.only = saved


def initialize(initializer: Any, shape, dtype, fan_in=None, fan_out=None) -> np.ndarray:
    """An initial value from ``tinycnn.init`` (a name or a callable)."""
    from .. import init

    fn = init.get(initializer)
    if getattr(_shapes, "only", False):
        return np.zeros(tuple(shape), dtype=dtype)
    try:
        value = fn(tuple(shape), dtype=dtype, fan_in=fan_in, fan_out=fan_out)
    except TypeError:  # a user's callable(shape, dtype) without the fan arguments
        value = fn(tuple(shape), dtype=dtype)
    value = np.asarray(value, dtype=dtype)
    if value.shape != tuple(shape):
        raise ValueError(f"initializer {initializer!r} returned shape {value.shape}, not {shape}")
    return value


class Layer:
    """Base class of every layer (and of :class:`~tinycnn.graph.Model`).

    Subclasses implement ``compute_output_shape(input_shape)`` (pure; validates and raises
    ``ValueError`` naming the layer), ``build(input_shape)`` (creates weights with
    :meth:`add_weight`), ``call(x, training)`` on real tensors, and optionally ``describe()``
    (hyper-parameters for diagrams) and ``macs(input_shape, output_shape)``.

    Shapes include the batch dimension (``None`` when symbolic); a layer with several inputs
    (merge layers) receives a list of shapes and a list of tensors.
    """

    family = "other"  # op family: diagram colour
    multi_input = False
    base_name: str | None = None  # auto-name stem; default: the class name in snake_case

    def __init__(self, name: str | None = None, trainable: bool = True, **kwargs: Any):
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}"
            )
        base = self.base_name or naming.snake_case(type(self).__name__)
        self.name: str = naming.layer_name(name, base)
        self.block: tuple[str, ...] = naming.current_block()
        self._trainable = bool(trainable)
        self._weights: dict[str, Weight] = {}
        self.built = False
        self.dtype: np.dtype | None = None
        self.activity_regularizer = None
        self.losses: list[Tensor] = []
        self._nodes: list = []  # the nodes recorded by symbolic calls, in call order

    # ------------------------------------------------------------------------------ naming
    @property
    def where(self) -> str:
        """How errors name this layer: ``Conv2D layer "conv1"``."""
        return f'{type(self).__name__} layer "{self.name}"'

    def __repr__(self) -> str:
        desc = self.describe()
        return f"<{type(self).__name__} {self.name!r}{' ' + desc if desc else ''}>"

    # ------------------------------------------------------------------------------ weights
    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for w in self._weights.values():
            w.tensor.requires_grad = w.effective_trainable

    def add_weight(
        self,
        name: str,
        shape: tuple[int, ...],
        initializer: Any = "zeros",
        trainable: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        fan_in: int | None = None,
        fan_out: int | None = None,
    ) -> Tensor:
        """Create, initialize and register a weight (``self.dtype``); returns its tensor."""
        from .. import constraints, regularizers

        value = initialize(initializer, shape, self.dtype, fan_in, fan_out)
        w = Weight(
            name,
            None,
            bool(trainable),
            regularizers.get(regularizer),
            constraints.get(constraint),
            self,
        )
        w.tensor = Tensor(value, requires_grad=w.effective_trainable)
        self._weights[name] = w
        return w.tensor

    def _named_weights(self, prefix: str = "") -> Iterator[tuple[str, Weight]]:
        for wname, w in self._weights.items():
            yield f"{prefix}{self.name}/{wname}", w

    @property
    def weights(self) -> list[Tensor]:
        return [w.tensor for _, w in self._named_weights()]

    @property
    def trainable_weights(self) -> list[Tensor]:
        return [w.tensor for _, w in self._named_weights() if w.effective_trainable]

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        return [w.tensor for _, w in self._named_weights() if not w.effective_trainable]

    def get_weights(self) -> list[np.ndarray]:
        return [t.numpy().copy() for t in self.weights]

    def set_weights(self, arrays: list) -> None:
        ws = [w for _, w in self._named_weights()]
        if len(arrays) != len(ws):
            raise ValueError(f"{self.where}: set_weights got {len(arrays)} arrays for {len(ws)}")
        for w, a in zip(ws, arrays):
            a = np.asarray(a)
            if a.shape != w.tensor.shape:
                raise ValueError(
                    f"{self.where}: weight {w.name!r} has shape {w.tensor.shape}, got {a.shape}"
                )
            _assign(w.tensor, a)

    def count_params(self) -> int:
        """Every weight's elements, trainable or not (Keras' convention)."""
        return sum(w.tensor.size for _, w in self._named_weights())

    # ------------------------------------------------------------------------------ protocol
    def compute_output_shape(self, input_shape):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.compute_output_shape")

    def build(self, input_shape) -> None:
        """Create the weights; the default layer has none."""

    def call(self, inputs, training: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.call")

    def describe(self) -> str:
        """Key hyper-parameters, short (``6@5×5 S=1 P=0``), for diagrams and explain."""
        return ""

    def macs(self, input_shape, output_shape) -> int:
        """Multiply-accumulates for one sample (0 for layers that are not Conv/Dense)."""
        return 0

    # ------------------------------------------------------------------------------ calling
    def __call__(self, inputs, training: bool | None = None):
        from .symbolic import SymbolicTensor

        flat = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not flat:
            raise ValueError(f"{self.where}: called on an empty list of inputs")
        kinds = {isinstance(t, SymbolicTensor) for t in flat}
        if kinds == {True}:
            return self._call_symbolic(inputs, training)
        if True in kinds:
            raise TypeError(f"{self.where}: inputs mix symbolic tensors (from Input) and real data")
        return self._call_eager(inputs, training)

    def _check_structure(self, inputs) -> None:
        is_list = isinstance(inputs, (list, tuple))
        if self.multi_input and not is_list:
            raise TypeError(f"{self.where}: expects a list of inputs, got one tensor")
        if not self.multi_input and is_list:
            raise TypeError(f"{self.where}: expects one input tensor, got a list of {len(inputs)}")

    def _prepare(self, shapes, dtype) -> Any:
        """Validate ``shapes``, build on first use, and return the output shape(s)."""
        if self.built and self.dtype is not None and np.dtype(dtype) != self.dtype:
            raise TypeError(
                f"{self.where}: was built for {self.dtype}, called on {np.dtype(dtype)}"
            )
        out = self.compute_output_shape(shapes)
        if not self.built:
            self.dtype = np.dtype(dtype)
            self.build(shapes)
            self.built = True
        return out

    def _call_symbolic(self, inputs, training):
        from .symbolic import Node

        self._check_structure(inputs)
        flat = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        dtypes = {t.dtype for t in flat}
        if len(dtypes) > 1:
            got = ", ".join(f"{t.name}: {t.dtype}" for t in flat)
            raise TypeError(f"{self.where}: inputs have different dtypes ({got})")
        shapes = [t.shape for t in flat] if self.multi_input else flat[0].shape
        self._call_inputs = flat  # the symbolic inputs, for messages and checks that need them
        try:
            out_shapes = self._prepare(shapes, flat[0].dtype)
        finally:
            self._call_inputs = None
        node = Node(self, inputs, out_shapes, naming.current_block(), training)
        return node.outputs

    def _call_eager(self, inputs, training):
        self._check_structure(inputs)
        flat = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        dtype = self.dtype or np.dtype(np.float32)
        flat = [t if isinstance(t, Tensor) else Tensor(t, dtype=dtype) for t in flat]
        shapes = [t.shape for t in flat] if self.multi_input else flat[0].shape
        self._prepare(shapes, flat[0].dtype)
        x = flat if self.multi_input else flat[0]
        collector = getattr(_losses, "active", None)
        _losses.active = [] if collector is None else collector
        try:
            return self._forward(x, bool(training))
        finally:
            if collector is None:
                self.losses = _losses.active
                _losses.active = None

    def _forward(self, x, training: bool):
        """``call`` plus regularization losses; the model's run loop calls this directly."""
        out = self.call(x, training=training)
        collector = getattr(_losses, "active", None)
        if collector is not None:
            for w in self._weights.values():
                if w.regularizer is not None:
                    collector.append(w.regularizer(w.tensor))
            if self.activity_regularizer is not None:
                collector.append(self.activity_regularizer(out) * (1.0 / out.shape[0]))
        return out


def _assign(t: Tensor, array: np.ndarray) -> None:
    """Replace ``t``'s values in place of identity (optimizers hold the Tensor object)."""
    from ..device import get_backend

    t.data = get_backend(t.device).from_numpy(np.array(array, dtype=t.dtype, order="C"))


def check_channels(layer: Layer, input_shape: Shape, axis: int, expected: int | None, what: str):
    """A built layer's weights fix its input size along ``axis``."""
    got = input_shape[axis]
    if expected is not None and got != expected:
        raise ValueError(
            f"{layer.where}: was built for {expected} input {what} but is called on input "
            f"shape {fmt_shape(input_shape)} ({got} {what}); a shared layer needs inputs of the "
            "same size"
        )


def prod(shape) -> int:
    return math.prod(int(s) for s in shape)
