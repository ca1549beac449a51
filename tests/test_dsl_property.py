"""Random stacks of layers (hypothesis): the shape a model infers while it is written is the shape
its forward pass computes, ``count_params`` is the size of its weights, and a gradient reaches
every weight; a stack that cannot work raises, while it is written, an error naming the layer."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tinycnn as tc  # noqa: E402
from tinycnn import layers as L  # noqa: E402
from tinycnn.graph import clear_session  # noqa: E402

pairs = st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4)))
padding = st.sampled_from(["valid", "same"])


@st.composite
def layer_spec(draw):
    kind = draw(st.sampled_from(["conv", "depthwise", "separable", "max", "avg", "zeropad", "bn"]))
    if kind in ("conv", "depthwise", "separable"):
        strided = draw(st.booleans())
        args = {
            "kernel_size": draw(pairs),
            "padding": draw(padding),
            "strides": draw(pairs) if strided else 1,
            "dilation_rate": 1 if strided else draw(st.integers(1, 3)),
        }
        if kind != "depthwise":
            args["filters"] = draw(st.integers(1, 6))
        if kind != "conv":
            args["depth_multiplier"] = draw(st.integers(1, 2))
        elif draw(st.booleans()):
            args["groups"] = draw(st.sampled_from([1, 2, 3]))
        return kind, args
    if kind in ("max", "avg"):
        args = {"pool_size": draw(pairs), "padding": draw(padding)}
        if draw(st.booleans()):
            args["strides"] = draw(pairs)
        return kind, args
    if kind == "zeropad":
        return kind, {"padding": draw(st.one_of(st.integers(0, 2), st.tuples(pairs, pairs)))}
    return kind, {}


LAYERS = {
    "conv": L.Conv2D,
    "depthwise": L.DepthwiseConv2D,
    "separable": L.SeparableConv2D,
    "max": L.MaxPool2D,
    "avg": L.AveragePooling2D,
    "zeropad": L.ZeroPadding2D,
    "bn": L.BatchNormalization,
}


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    channels=st.integers(1, 6),
    size=st.tuples(st.integers(3, 16), st.integers(3, 16)),
    last=st.booleans(),
    specs=st.lists(layer_spec(), min_size=1, max_size=4),
    head=st.sampled_from([None, "flatten", "gap"]),
)
def test_inferred_shapes_are_the_computed_ones(channels, size, last, specs, head):
    clear_session()
    fmt = "channels_last" if last else "channels_first"
    shape = (*size, channels) if last else (channels, *size)
    x = inp = tc.Input(shape)
    for i, (kind, args) in enumerate(specs):
        name = f"{kind}{i}"
        cls = LAYERS[kind]
        extra = {"axis": -1 if last else 1} if kind == "bn" else {"data_format": fmt}
        try:
            layer = cls(**args, **extra, name=name)
            x = layer(x)
        except ValueError as e:  # refused while written: the message names the layer
            assert f'"{name}"' in str(e), str(e)
            event(f"refused at layer {i}")
            return
    fmt_args = {"data_format": fmt}
    if head == "flatten":
        x = L.Dense(3, name="head")(L.Flatten()(x))
    elif head == "gap":
        x = L.GlobalAveragePooling2D(**fmt_args)(x)
    model = tc.Model(inp, x)
    event(f"built {len(specs)} layers")
    batch = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    out = model(batch, training=True)
    assert out.shape == (2, *model.output_shape[1:]), (specs, out.shape, model.output_shape)
    assert model.count_params() == sum(w.numpy().size for w in model.weights)
    if not model.parameters():
        return
    out.sum().backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    channels=st.integers(1, 4),
    size=st.integers(4, 12),
    branches=st.lists(st.lists(layer_spec(), max_size=2), min_size=2, max_size=3),
    merge=st.sampled_from(["add", "concat", "multiply"]),
)
def test_merged_branches_infer_the_computed_shape(channels, size, branches, merge):
    """Inception- and ResNet-like: branches from one input, merged; a merge of branches that
    disagree is refused naming the merge layer and its inputs."""
    clear_session()
    inp = tc.Input((channels, size, size))
    ends = []
    for b, specs in enumerate(branches):
        x = inp
        for i, (kind, args) in enumerate(specs):
            name = f"b{b}_{kind}{i}"
            extra = {"axis": 1} if kind == "bn" else {}
            try:
                x = LAYERS[kind](**args, **extra, name=name)(x)
            except ValueError as e:
                assert f'"{name}"' in str(e), str(e)
                return
        ends.append(x)
    layer = {"add": L.Add, "concat": L.Concatenate, "multiply": L.Multiply}[merge](name="merge")
    try:
        y = layer(ends)
    except ValueError as e:
        assert str(e).startswith(f'{type(layer).__name__} layer "merge"'), str(e)
        event("merge refused")
        return
    event("merged")
    model = tc.Model(inp, y)
    batch = np.random.default_rng(1).standard_normal((2, channels, size, size)).astype(np.float32)
    out = model(batch, training=True)
    assert out.shape == (2, *model.output_shape[1:])
    if model.parameters():
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
