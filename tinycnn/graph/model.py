"""``Model``: a DAG of layer calls held as a ``networkx.DiGraph``, runnable on real tensors.

The graph's keys are integers given in creation order of the nodes (a topological order, so the
run loop is a plain walk over a cached list); names are only attributes, so renaming a layer never
touches an edge.  A model is itself a layer: it can be called inside another model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import networkx as nx
import numpy as np

from ..tensor import Tensor
from . import layer as layer_mod
from .layer import Layer, Weight, _assign
from .shapes import fmt_shape, input_shape_hint
from .symbolic import InputLayer, Node, SymbolicTensor


def image_output(d: dict) -> bool:
    """Whether the graph node with attributes ``d`` outputs images (a 4-d first output)."""
    return len((d["output_shapes"] or [()])[0]) == 4


def _as_list(x) -> tuple[list, bool]:
    if isinstance(x, (list, tuple)):
        return list(x), False
    return [x], True


class Model(Layer):
    """A model from symbolic ``inputs`` to ``outputs`` (Keras' functional API).

    Parameters
    ----------
    inputs : SymbolicTensor or list of SymbolicTensor
        Made by :func:`~tinycnn.graph.Input`.
    outputs : SymbolicTensor or list of SymbolicTensor
        Computed from ``inputs`` by calling layers.
    name : str, optional
        Default ``model``, ``model_1``, ...

    Calling the model on a Tensor or NumPy array (a list for several inputs) runs every layer and
    records the ops on the tape; calling it on symbolic tensors nests it in another model.
    """

    family = "model"
    _device = "cpu"  # where to() last moved a model that has no weights

    def __init__(self, inputs, outputs, name: str | None = None, trainable: bool = True):
        super().__init__(name=name)
        self._init_graph(inputs, outputs)
        if not trainable:
            self.trainable = False

    # ------------------------------------------------------------------------------ graph
    def _init_graph(self, inputs, outputs) -> None:
        self.inputs, self._single_input = _as_list(inputs)
        self.outputs, self._single_output = _as_list(outputs)
        for kind, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            if not tensors:
                raise ValueError(f'Model "{self.name}": {kind} is empty')
            for t in tensors:
                if not isinstance(t, SymbolicTensor):
                    raise TypeError(
                        f'Model "{self.name}": {kind} must be symbolic tensors from tc.Input(...)'
                        f" and layer calls, got {type(t).__name__}"
                    )
        for t in self.inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(
                    f'Model "{self.name}": input {t.name!r} is not made by tc.Input(...) '
                    f"(it is the output of a {type(t.node.layer).__name__})"
                )
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError(f'Model "{self.name}": the same Input is listed twice in inputs')

        found: dict[int, Node] = {}
        stack = [t.node for t in self.outputs]
        while stack:
            node = stack.pop()
            if node.seq in found:
                continue
            found[node.seq] = node
            stack.extend(t.node for t in node.flat_inputs)
        own_inputs = {t.node.seq for t in self.inputs}
        for node in found.values():
            if isinstance(node.layer, InputLayer) and node.seq not in own_inputs:
                raise ValueError(
                    f'Model "{self.name}": the outputs depend on Input "{node.layer.name}", which '
                    "is not in this model's inputs"
                )
        for t in self.inputs:
            found.setdefault(t.node.seq, t.node)
        self._order: list[Node] = sorted(found.values(), key=lambda n: n.seq)
        self._ids = {node.seq: i for i, node in enumerate(self._order)}

        self.layers: list[Layer] = []
        seen: dict[int, Layer] = {}
        names: dict[str, Layer] = {}
        for node in self._order:
            lyr = node.layer
            if id(lyr) in seen:
                continue
            seen[id(lyr)] = lyr
            if lyr.name in names:
                raise ValueError(
                    f'Model "{self.name}": two different layers are named "{lyr.name}" '
                    f"({type(names[lyr.name]).__name__} and {type(lyr).__name__}); layer names "
                    "must be unique in a model: pass name=... or call tc.graph.clear_session() "
                    "between builds"
                )
            names[lyr.name] = lyr
            self.layers.append(lyr)
        # the local name, not the property: a Sequential of only its input has a graph, but
        # its ``graph`` property refuses to show one
        self.graph = graph = self._make_graph()
        if not nx.is_directed_acyclic_graph(graph):  # pragma: no cover - by construction
            raise ValueError(f'Model "{self.name}": the graph has a cycle')
        self._plan = self._make_plan()
        self.dtype = self.inputs[0].dtype
        self.built = True

    def _make_graph(self) -> nx.DiGraph:
        g = nx.DiGraph(name=self.name)
        calls: dict[int, int] = {}  # the layer's calls in this model so far
        owner: dict[int, str] = {}  # weight -> the node (by name) that counts it
        for i, node in enumerate(self._order):
            lyr = node.layer
            k = calls[id(lyr)] = calls.get(id(lyr), -1) + 1
            shared_call = k > 0
            name = lyr.name if k == 0 else f"{lyr.name}[{k}]"
            # each weight counted once, on the first node that holds it: a later call, or a
            # nested model holding a layer called directly too, counts only the rest and
            # names the nodes that count the others
            params, reused = 0, {}
            for _, w in lyr._named_weights():
                first = owner.setdefault(id(w), name)
                if first == name:
                    params += w.tensor.size
                else:
                    reused[first] = reused.get(first, 0) + w.tensor.size
            in_shapes, out_shapes = node.input_shapes, node.output_shapes
            in_arg = in_shapes if lyr.multi_input else (in_shapes[0] if in_shapes else None)
            out_arg = out_shapes if isinstance(node.outputs, list) else out_shapes[0]
            g.add_node(
                i,
                node=node,
                layer=lyr,
                # numbered by its calls in this model: a layer that another model called
                # first is plain "name" here
                name=name,
                type=type(lyr).__name__,
                family=lyr.family,
                input_shapes=in_shapes,
                output_shapes=out_shapes,
                params=params,
                reused=list(reused.items()),  # [(earlier node, its weights used here)]
                macs=0 if in_arg is None else lyr.macs(in_arg, out_arg),
                block=node.block,
                shared=shared_call or len(lyr._nodes) > 1,
            )
        for i, node in enumerate(self._order):
            for slot, t in enumerate(node.flat_inputs):
                src = self._ids[t.node.seq]
                if g.has_edge(src, i):
                    g.edges[src, i]["tensors"].append((t.index, slot))
                else:
                    g.add_edge(src, i, tensors=[(t.index, slot)], shape=t.shape)
        return g

    def _make_plan(self) -> list:
        """Per node: (node, input keys, output keys, keys to free after it)."""
        consumers: dict[tuple[int, int], int] = {}
        for node in self._order:
            for t in node.flat_inputs:
                key = (t.node.seq, t.index)
                consumers[key] = consumers.get(key, 0) + 1
        keep = {(t.node.seq, t.index) for t in self.outputs}
        remaining = dict(consumers)
        plan = []
        for node in self._order:
            in_keys = [(t.node.seq, t.index) for t in node.flat_inputs]
            free = []
            for key in in_keys:
                remaining[key] -= 1
                if remaining[key] == 0 and key not in keep:
                    free.append(key)
            out_keys = [(node.seq, t.index) for t in node.flat_outputs]
            plan.append((node, in_keys, out_keys, free))
        return plan

    @property
    def where(self) -> str:
        return f'{type(self).__name__} "{self.name}"'

    # ------------------------------------------------------------------------------ shapes
    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if self._single_input else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if self._single_output else shapes

    @property
    def multi_input(self) -> bool:  # type: ignore[override]
        return not self._single_input

    def compute_output_shape(self, input_shape):
        return self._propagate(input_shape)[0]

    def _propagate(self, input_shape):
        """The output shape(s) for ``input_shape``, and the MACs of one sample at that shape
        (a nested model called on another image size does another amount of work)."""
        shapes, _ = (input_shape, False) if self.multi_input else ([input_shape], True)
        if len(shapes) != len(self.inputs):
            raise ValueError(f"{self.where}: expects {len(self.inputs)} inputs, got {len(shapes)}")
        known: dict[tuple[int, int], tuple] = {}
        for t, s in zip(self.inputs, shapes):
            want = t.shape
            if len(s) != len(want):
                raise ValueError(
                    f"{self.where}: input {t.name!r} expects shape {fmt_shape(want)}, got "
                    f"{fmt_shape(s)}"
                )
            known[(t.node.seq, t.index)] = (None, *s[1:])
        macs = 0
        for node, in_keys, out_keys, _ in self._plan:
            if isinstance(node.layer, InputLayer):
                continue
            ins = [known[k] for k in in_keys]
            arg = ins if node.layer.multi_input else ins[0]
            try:
                out = node.layer.compute_output_shape(arg)
            except ValueError as e:
                raise ValueError(f"{self.where}, called on new input shapes: {e}") from None
            macs += node.layer.macs(arg, out)
            for k, s in zip(out_keys, out if isinstance(out, list) else [out]):
                known[k] = s
        outs = [known[(t.node.seq, t.index)] for t in self.outputs]
        return (outs[0] if self._single_output else outs), macs

    def macs(self, input_shape, output_shape) -> int:
        return self._propagate(input_shape)[1]

    def describe(self) -> str:
        return f"{len(self.layers) - len(self.inputs)} layers"

    # ------------------------------------------------------------------------------ running
    def _call_eager(self, inputs, training):
        tensors = self._call_eager_inputs(inputs)
        outer = getattr(layer_mod._losses, "active", None)
        layer_mod._losses.active = [] if outer is None else outer
        try:
            return self._forward(tensors if self.multi_input else tensors[0], bool(training))
        finally:
            if outer is None:
                self.losses = layer_mod._losses.active
                layer_mod._losses.active = None

    def _call_eager_inputs(self, inputs, device: str = "cpu") -> list[Tensor]:
        """The real inputs, checked against the model's (arrays become tensors on ``device``)."""
        xs, single = _as_list(inputs)
        if self._single_input and not single:
            if len(xs) == 1 and isinstance(xs[0], (Tensor, np.ndarray)):
                single = True  # [x] for a one-input model, as Keras takes it
            elif not any(isinstance(x, (Tensor, np.ndarray)) for x in xs):
                xs = [Tensor(inputs, device=device, dtype=self.inputs[0].dtype)]
                single = True  # nested lists of numbers: the data
        if len(xs) != len(self.inputs) or single != self._single_input:
            want = "one input" if self._single_input else f"a list of {len(self.inputs)} inputs"
            got = "one input" if single else f"a list of {len(xs)}"
            raise ValueError(f'Model "{self.name}": expects {want}, got {got}')
        tensors = []
        for x, t in zip(xs, self.inputs):
            if not isinstance(x, Tensor):
                x = Tensor(x, device=device, dtype=t.dtype)
            if x.shape[1:] != t.shape[1:] or x.ndim != len(t.shape):
                raise ValueError(
                    f'Model "{self.name}": input "{t.name}" expects shape {fmt_shape(t.shape)} '
                    f"(any batch size), got {x.shape}{input_shape_hint(x.shape, t.shape[1:])}"
                )
            if x.dtype != t.dtype:
                raise TypeError(
                    f'Model "{self.name}": input "{t.name}" is {t.dtype}, got a {x.dtype} tensor; '
                    "cast it with .astype()"
                )
            tensors.append(x)
        sizes = {x.shape[0] for x in tensors}
        if len(sizes) > 1:
            got = ", ".join(f'"{t.name}" {x.shape[0]}' for x, t in zip(tensors, self.inputs))
            raise ValueError(
                f'Model "{self.name}": the inputs must have the same batch size, got {got}'
            )
        return tensors

    def call(self, inputs, training: bool = False):
        return self._run(inputs, training)

    def _run(self, inputs, training: bool, keep: dict | None = None):
        """Run the plan.  With ``keep`` (node seq -> name) return ``(outputs, kept)``, ``kept``
        holding the first output of each of those nodes by name."""
        xs = inputs if self.multi_input else [inputs]
        values: dict[tuple[int, int], Tensor] = {}
        for t, x in zip(self.inputs, xs):
            values[(t.node.seq, t.index)] = x
        kept: dict[str, Tensor] = {}
        for node, in_keys, out_keys, free in self._plan:
            lyr = node.layer
            if not isinstance(lyr, InputLayer):  # an input's value is already there
                ins = [values[k] for k in in_keys]
                mode = training if node.training is None else node.training
                out = lyr._forward(ins if lyr.multi_input else ins[0], mode)
                for k, v in zip(out_keys, out if isinstance(out, list) else [out]):
                    values[k] = v
            if keep and node.seq in keep:
                kept[keep[node.seq]] = values[out_keys[0]]
            for k in free:  # (an input has no inputs, so nothing to free)
                del values[k]
        outs = [values[(t.node.seq, t.index)] for t in self.outputs]
        outs = outs[0] if self._single_output else outs
        return (outs, kept) if keep is not None else outs

    def feature_maps(self, x, layers=None) -> dict[str, np.ndarray]:
        """What each layer computes from ``x`` (a batch), in inference mode: ``{layer name:
        its output as a NumPy array}``, in the order asked (by default, as the model runs).

        ``layers``: names (as in :meth:`summary`) to return; default every layer whose output
        is an image, ``(N, C, H, W)`` or ``(N, H, W, C)`` (input, convolutions, pooling,
        activations, merges).  See :func:`tinycnn.graph.maps.plot_feature_maps`."""
        from ..autograd import no_grad

        g = self.graph
        names = {g.nodes[n]["name"]: g.nodes[n]["node"].seq for n in g}
        if layers is None:
            wanted = [g.nodes[n]["name"] for n in g if image_output(g.nodes[n])]
        else:
            wanted = [layers] if isinstance(layers, str) else list(layers)
            unknown = [name for name in wanted if name not in names]
            if unknown:
                raise ValueError(
                    f'Model "{self.name}": no layer named {", ".join(map(repr, unknown))}; '
                    f"the layers are {', '.join(names)}"
                )
        keep = {names[name]: name for name in wanted}
        with no_grad():
            tensors = self._call_eager_inputs(x, self.device)
            _, kept = self._run(tensors if self.multi_input else tensors[0], False, keep)
        return {name: kept[name].numpy() for name in wanted}

    # ------------------------------------------------------------------------------ weights
    def _named_weights(self, prefix: str = "") -> Iterator[tuple[str, Weight]]:
        seen: set[int] = set()
        for lyr in self.layers:
            sub = prefix + lyr.name + "/" if isinstance(lyr, Model) else prefix
            for key, w in lyr._named_weights(sub):
                if id(w) not in seen:
                    seen.add(id(w))
                    yield key, w

    @Layer.trainable.setter  # type: ignore[attr-defined]
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for lyr in self.layers:
            lyr.trainable = value

    def parameters(self) -> list[Tensor]:
        """The trainable tensors (what an optimizer updates), in a stable order; a shared layer's
        weights appear once."""
        return [w.tensor for _, w in self._named_weights() if w.effective_trainable]

    def state_dict(self) -> OrderedDict:
        """``"layer/weight" -> ndarray`` (copies) for every weight, BN moving statistics
        included; a nested model's weights are prefixed with its name."""
        return OrderedDict((k, w.tensor.numpy().copy()) for k, w in self._named_weights())

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy ``state`` (from :meth:`state_dict`) into the weights, checking names, shapes and
        dtypes first so that nothing is changed when anything is wrong."""
        if not isinstance(state, Mapping):
            raise TypeError(
                f'Model "{self.name}": load_state_dict takes a dict of name -> array (from '
                f"state_dict()), got {type(state).__name__}"
            )
        own = OrderedDict(self._named_weights())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing weights: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected weights: {', '.join(unexpected)}")
        for key, w in own.items():
            if key not in state:
                continue
            a = np.asarray(state[key])
            if a.shape != w.tensor.shape:
                problems.append(f"{key}: shape {a.shape} in the state, {w.tensor.shape} here")
            elif a.dtype != w.tensor.dtype:
                problems.append(f"{key}: dtype {a.dtype} in the state, {w.tensor.dtype} here")
        if problems:
            raise ValueError(
                f'Model "{self.name}": cannot load the state dict:\n  ' + "\n  ".join(problems)
            )
        for key, w in own.items():
            if key in state:
                _assign(w.tensor, np.asarray(state[key]))

    def apply_constraints(self) -> None:
        """Project every constrained weight (``kernel_constraint=...``); the training loop calls
        this after each optimizer step."""
        for _, w in self._named_weights():
            if w.constraint is not None:
                _assign(w.tensor, w.constraint(w.tensor.numpy()))

    @property
    def device(self) -> str:
        """Where the model runs: the device of its weights, trainable or frozen (a model with
        no weights: the one last given to :meth:`to`, else ``"cpu"``).  ``fit``, ``evaluate``,
        ``predict`` and :meth:`feature_maps` put their inputs there."""
        weights = self.weights
        return weights[0].device if weights else self._device

    def to(self, device: str) -> Model:
        """Move every weight to ``device`` (in place: the tensors keep their identity)."""
        from ..device import check_device, get_backend

        device = check_device(device)
        self._device = device
        for _, w in self._named_weights():
            t = w.tensor
            if t.device != device:
                t.data = get_backend(device).from_numpy(np.ascontiguousarray(t.numpy()))
                t.device = device
                t.grad = None
        return self

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name`` (full hierarchical name), or at position ``index``."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f'Model "{self.name}": no layer at index {index}; it has '
                    f"{len(self.layers)} layers (the inputs included)"
                )
            return self.layers[index]
        for lyr in self.layers:
            if lyr.name == name:
                return lyr
        close = [lyr.name for lyr in self.layers if name and name in lyr.name][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f'Model "{self.name}": no layer named {name!r}{hint}')

    # ------------------------------------------------------------------------------ views
    def summary(
        self,
        depth: int | None = None,
        print_fn=None,
        return_string: bool = False,
        line_length: int | None = None,
    ):
        """Print (or return) a Keras-style table; see :func:`tinycnn.graph.summary.summary`."""
        from .summary import summary

        return summary(self, depth, print_fn, return_string, line_length)

    def explain(self, print_fn=None, return_string: bool = False, receptive_field: bool = False):
        """Print (or return) the seed's dimension walk-through, one line per layer (with
        ``receptive_field``, also each layer's receptive field and jump)."""
        from .explain import explain

        return explain(self, print_fn, return_string, receptive_field)

    def to_dot(self, **options: Any) -> str:
        """The Graphviz DOT source of the diagram (options as :meth:`draw`)."""
        from .render import to_dot

        return to_dot(self, **options)

    def draw(self, path: str | None = None, **options: Any):
        """Render the diagram with Graphviz' ``dot``; see :func:`tinycnn.graph.render.draw`."""
        from .render import draw

        return draw(self, path, **options)

    def _repr_svg_(self) -> str | None:
        from .render import repr_svg

        return repr_svg(self)

    # ------------------------------------------------------------------------------ training
    def compile(self, *args, **kwargs):
        from ..train import compile

        return compile(self, *args, **kwargs)

    def fit(self, *args, **kwargs):
        from ..train import fit

        return fit(self, *args, **kwargs)

    def evaluate(self, *args, **kwargs):
        from ..train import evaluate

        return evaluate(self, *args, **kwargs)

    def predict(self, *args, **kwargs):
        from ..train import predict

        return predict(self, *args, **kwargs)

    def save_weights(self, *args, **kwargs):
        from ..train import save_weights

        return save_weights(self, *args, **kwargs)

    def load_weights(self, *args, **kwargs):
        from ..train import load_weights

        return load_weights(self, *args, **kwargs)
