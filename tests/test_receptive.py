"""Receptive fields (tinycnn.graph.receptive, explain(receptive_field=True)): the formula
against the gradient's footprint, against published values for the zoo, and the
walk-through lines."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers as L
from tinycnn.graph import clear_session
from tinycnn.graph.layer import shapes_only
from tinycnn.graph.receptive import receptive_fields


def _last_spatial(model):
    fields = receptive_fields(model)
    spatial = [n for n in model.graph if fields[n].size is not None]
    return fields[spatial[-1]]


def _footprint(model, x, oh, ow):
    """Rows and columns of the input that reach output pixel (oh, ow), from the gradient."""
    tx = tc.tensor(x, requires_grad=True)
    out = model(tx)
    mask = np.zeros(out.shape, np.float64)
    mask[0, :, oh, ow] = 1.0
    (out * tc.tensor(mask)).sum().backward()
    reach = np.abs(tx.grad.numpy()[0]).sum(axis=0) > 0
    rows, cols = np.flatnonzero(reach.any(axis=1)), np.flatnonzero(reach.any(axis=0))
    return (rows[0], rows[-1]), (cols[0], cols[-1])


def _net():
    """Dilation, strides, asymmetric kernels, depthwise and separable convs, average pooling,
    a residual add of two branches of different reach, a concat and a nested model, all with
    positive weights, so that no gradient cancels inside a field."""
    clear_session()
    pos = {"kernel_initializer": "ones"}
    inner_in = tc.Input((4, 14, 14), dtype="float64")
    inner = tc.Model(inner_in, L.Conv2D(4, (3, 1), strides=(1, 2), **pos)(inner_in), name="inner")
    inp = tc.Input((2, 64, 64), dtype="float64")
    x = L.Conv2D(4, 3, dilation_rate=2, **pos)(inp)  # r 5
    x = L.AveragePooling2D(2)(x)  # r 6, j 2
    a = L.Conv2D(4, (1, 3), padding="same", **pos)(x)
    b = L.DepthwiseConv2D(3, padding="same", depthwise_initializer="ones")(x)
    x = L.Add()([a, b])  # the wider branch decides: r 10 x 10
    x = L.SeparableConv2D(
        4, 3, strides=2, depthwise_initializer="ones", pointwise_initializer="ones"
    )(x)
    x = L.Concatenate()([x, L.Conv2D(4, 3, padding="same", **pos)(x)])
    x = L.Conv2D(4, 1, **pos)(x)
    return tc.Model(inp, inner(L.ReLU()(x)))


def test_formula_equals_the_gradient_footprint():
    model = _net()
    field = _last_spatial(model)
    x = np.ones((1, *model.input_shape[1:]))
    (r0, r1), (c0, c1) = _footprint(model, x, 4, 3)
    assert (r1 - r0 + 1, c1 - c0 + 1) == field.size
    # one output pixel further, the footprint moves by the jump
    (s0, _), (t0, _) = _footprint(model, x, 5, 4)
    assert (s0 - r0, t0 - c0) == field.jump
    assert field.size == (30, 22) and field.jump == (4, 8)


# Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
# Distill 2019, table 1 (the last spatial layer of each network).  ResNet-50 there is v1
# (stride on the first 1x1 of a stage: 483); the zoo's is torchvision's v1.5, stride on the 3x3:
# stem 7 + 2*2 = 11, j 4; stage 2: 11 + 3*2*4 = 35; stage 3: 35 + 2*4 (the strided 3x3) +
# 3*2*8 = 91; stage 4: 91 + 2*8 + 5*2*16 = 267; stage 5: 267 + 2*16 + 2*2*32 = 427.
PUBLISHED = {
    "alexnet": 195,
    "vgg16": 212,
    "inception_v3": 1311,
    "inception_v4": 2071,
    "inception_resnet_v2": 3039,
    "resnet50": 427,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_zoo_fields_match_the_published_values(name):
    import zoo

    clear_session()
    with shapes_only():
        model = getattr(zoo, name)()
    field = _last_spatial(model)
    assert field.size == (PUBLISHED[name],) * 2 and field.jump == (32, 32)


def test_explain_lines_give_the_field_and_its_formula():
    import zoo

    clear_session()
    lines = zoo.lenet5().explain(return_string=True, receptive_field=True).splitlines()
    assert "receptive field r = r + d·(F − 1)·j, jump j = j·S" in lines[0]
    assert lines[1].endswith("Input: 32×32×1 | RF 1×1, jump 1")
    assert lines[2].endswith("| RF 5×5, jump 1: r = 1 + (5 − 1)·1 = 5, j = 1·1 = 1")
    assert lines[3].endswith("| RF 6×6, jump 2: r = 5 + (2 − 1)·1 = 6, j = 1·2 = 2")
    assert lines[4].endswith("| RF 14×14, jump 2: r = 6 + (5 − 1)·2 = 14, j = 2·1 = 2")
    # Flatten moves values: each keeps its pixel's field; the first Dense mixes them all
    assert lines[6].endswith(
        "| RF 16×16, jump 4: each value is one pixel of one map: r and j unchanged"
    )
    assert lines[7].endswith("| RF: the whole input: every output reads every input pixel")
    assert "RF" not in lines[8]  # already global: said once
    assert lines[-1] == (
        "Receptive field of pool2, the last layer with spatial outputs: 16×16 pixels of the "
        "32×32 input"
    )
    plain = zoo.lenet5().explain(return_string=True)
    assert "RF" not in plain and "receptive" not in plain


def test_explain_per_axis_dilation_nested_and_larger_than_input():
    model = _net()
    text = model.explain(return_string=True, receptive_field=True)
    assert "H: r = 6 + (1 − 1)·2 = 6, j = 2·1 = 2; W: r = 6 + (3 − 1)·2 = 10" in text
    assert "RF 5×5, jump 1: r = 1 + 2·(3 − 1)·1 = 5" in text  # dilation 2
    # the inner model's own field and jump, per axis: its (3, 1) kernel with strides (1, 2)
    assert (
        "| RF 30×22, jump 4×8: its own field 3×1, jump 1×2: H: r = 22 + (3 − 1)·4 = 30, "
        "j = 4·1 = 4; W: r = 22 + (1 − 1)·4 = 22, j = 4·2 = 8"
    ) in text
    clear_session()
    inner_in = tc.Input((2, 12, 12))
    inner = tc.Model(inner_in, L.Conv2D(2, 3, strides=2)(L.Conv2D(2, 3)(inner_in)))
    inp = tc.Input((2, 28, 28))
    outer = tc.Model(inp, inner(L.Conv2D(2, 3, strides=2)(inp)))
    line = outer.explain(return_string=True, receptive_field=True).splitlines()[-3]
    assert line.endswith(
        "| RF 11×11, jump 4: its own field 5×5, jump 2: r = 3 + (5 − 1)·2 = 11, j = 2·2 = 4"
    )
    clear_session()
    inp = tc.Input((1, 8, 8))
    deep = L.Conv2D(1, 5, padding="same")(L.Conv2D(1, 5, padding="same")(inp))
    last = tc.Model(inp, deep).explain(return_string=True, receptive_field=True).splitlines()[-1]
    assert last.endswith("9×9 pixels of the 8×8 input (larger than the input: part of every "
                         "field lies in the padding)")  # fmt: skip


def test_cli_explain_receptive_field(capsys):
    from tinycnn import cli

    assert cli.main(["explain", "vgg16", "--rf"]) == 0
    out = capsys.readouterr().out
    assert "block5/pool" in out and out.rstrip().endswith(
        "Receptive field of block5/pool, the last layer with spatial outputs: 212×212 pixels "
        "of the 224×224 input"
    )


def test_a_layer_of_unknown_kind_that_resizes_makes_the_field_unknown():
    from tinycnn.graph.layer import Layer

    class EverySecond(Layer):  # a user's own subsampling layer: its rule is not known here
        def compute_output_shape(self, s):
            return (s[0], s[1], (s[2] + 1) // 2, (s[3] + 1) // 2)

        def call(self, x, training=False):
            return x[:, :, ::2, ::2]

    class Scale(Layer):  # pointwise: keeps the field
        def compute_output_shape(self, s):
            return s

        def call(self, x, training=False):
            return x * 2.0

    clear_session()
    inp = tc.Input((1, 16, 16))
    x = Scale(name="scale")(L.Conv2D(2, 3, name="c1")(inp))
    x = L.Conv2D(2, 3, name="c2")(EverySecond(name="sub")(x))
    model = tc.Model(inp, L.Dense(3)(L.Flatten()(x)))
    lines = model.explain(return_string=True, receptive_field=True).splitlines()
    by_name = {ln.split()[0]: ln for ln in lines[1:-2]}
    assert by_name["scale"].endswith("| RF 3×3, jump 1")
    assert by_name["sub"].endswith(
        "| RF: unknown: EverySecond resizes the image by a rule not known here"
    )
    assert "RF" not in by_name["c2"]  # stays unknown, said once
    assert "RF" not in by_name["flatten"]  # stays unknown
    assert by_name["dense"].endswith("| RF: the whole input: every output reads every input pixel")
    assert lines[-1] == (
        "Receptive field: unknown from sub on (EverySecond resizes the image by a rule not "
        "known here)"
    )


def test_explain_channels_last_model_reads_height_and_width_from_the_right_axes():
    clear_session()
    inp = tc.Input((32, 24, 3))  # (H, W, C): the layers below say so, the Input does not
    x = L.ReLU(name="act")(inp)
    x = L.Conv2D(8, 3, strides=(1, 2), data_format="channels_last", name="conv")(x)
    x = L.MaxPool2D(2, data_format="channels_last", name="pool")(x)
    model = tc.Model(inp, L.Dense(2)(L.Flatten(name="flat")(x)))
    lines = model.explain(return_string=True, receptive_field=True).splitlines()
    by_name = {ln.split()[0]: ln for ln in lines[1:-2]}
    assert "Input: 32×24×3 |" in by_name["input"]
    assert "ReLU: shape unchanged → 32×24×3" in by_name["act"]
    assert "H2 = (32 − 3 + 2·0)/1 + 1 = 30, W2 = ⌊(24 − 3 + 2·0)/2⌋ + 1 = 11" in by_name["conv"]
    assert "→ 30×11×8" in by_name["conv"] and "→ 15×5×8" in by_name["pool"]
    assert "Flatten: 15×5×8 = 600" in by_name["flat"]
    assert lines[-1].endswith("4×5 pixels of the 32×24 input")  # H: 3 + 1·1, W: 3 + 1·2


def _offset_branches():
    """Two branches over a stride-2 3×3 conv (r 3, j 2) that look at offset regions: a top-left
    padded 2×2 conv (its input pixels -2..2) and a "same" 2×2 conv (0..4)."""
    clear_session()
    pos = {"kernel_initializer": "ones"}
    inp = tc.Input((1, 20, 20), dtype="float64")
    x = L.Conv2D(2, 3, strides=2, **pos)(inp)
    a = L.Conv2D(2, 2, **pos)(L.ZeroPadding2D(((1, 0), (1, 0)))(x))
    b = L.Conv2D(2, 2, padding="same", **pos)(x)
    return inp, a, b, pos


def test_branches_that_see_offset_regions_add_up():
    """Add of a top-left padded 2x2 conv (pixels i-1..i of its input) and a "same" 2x2 conv
    (i..i+1): the union, not the larger of the two, as the gradient's footprint says."""
    inp, a, b, pos = _offset_branches()
    model = tc.Model(inp, L.Add(name="add")([a, b]))
    field = _last_spatial(model)
    (r0, r1), (c0, c1) = _footprint(model, np.ones((1, 1, 20, 20)), 4, 4)
    assert field.size == (r1 - r0 + 1, c1 - c0 + 1) == (7, 7) and field.jump == (2, 2)
    assert "the union of its inputs' fields, which are offset (-2..2, 0..4): r = 7" in field.formula


def test_dense_on_a_map_reads_its_last_axis_only():
    """On an (H, W, C) map a Dense is a 1x1 window (the gradient's footprint agrees); on a
    (C, H, W) map it mixes whole rows, so there is no one field per pixel from there on."""
    clear_session()
    cl = {"data_format": "channels_last", "kernel_initializer": "ones"}
    inp = tc.Input((12, 12, 2), dtype="float64")
    x = L.Dense(3, kernel_initializer="ones", name="mix")(L.Conv2D(3, 3, **cl)(inp))
    model = tc.Model(inp, L.Conv2D(2, 3, **cl)(x))
    fields = receptive_fields(model)
    assert _last_spatial(model).size == (5, 5)
    tx = tc.tensor(np.ones((1, 12, 12, 2)), requires_grad=True)
    out = model(tx)
    mask = np.zeros(out.shape)
    mask[0, 4, 6, :] = 1.0
    (out * tc.tensor(mask)).sum().backward()
    reach = np.abs(tx.grad.numpy()[0]).sum(axis=-1) > 0
    rows, cols = np.flatnonzero(reach.any(axis=1)), np.flatnonzero(reach.any(axis=0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (4, 8, 6, 10)
    dense = next(n for n in model.graph if model.graph.nodes[n]["layer"].name == "mix")
    assert fields[dense].size == (3, 3) and "1×1 window" in fields[dense].formula

    clear_session()
    inp = tc.Input((2, 12, 12))
    x = L.Dense(3, name="rows")(L.Conv2D(3, 3)(inp))
    model = tc.Model(inp, L.Conv2D(2, 3)(x))
    lines = model.explain(return_string=True, receptive_field=True).splitlines()
    by_name = {ln.split()[0]: ln for ln in lines[1:-2]}
    assert by_name["rows"].endswith(
        "| RF: unknown: Dense mixes the last axis (W) of a C×H×W map: each output sees whole rows"
    )
    assert lines[-1].startswith("Receptive field: unknown from rows on")


def test_flatten_and_reshape_move_pixels_without_mixing_them():
    """A flat Reshape keeps each value's field, as Flatten does (the gradient of one flat value
    reaches exactly its pixel's field); a Reshape to several axes makes the field unknown."""
    clear_session()
    pos = {"kernel_initializer": "ones"}
    inp = tc.Input((1, 9, 9), dtype="float64")
    x = L.Conv2D(2, 3, **pos)(inp)  # 7x7, r 3
    flat = L.Reshape((-1,), name="flat")(x)
    model = tc.Model(inp, flat)
    fields = receptive_fields(model)
    node = next(n for n in model.graph if model.graph.nodes[n]["name"] == "flat")
    assert fields[node].size == (3, 3) and "r and j unchanged" in fields[node].formula
    tx = tc.tensor(np.ones((1, 1, 9, 9)), requires_grad=True)
    mask = np.zeros((1, 98))
    mask[0, 2 * 7 + 4] = 1.0  # channel 0, pixel (2, 4)
    (model(tx) * tc.tensor(mask)).sum().backward()
    reach = np.flatnonzero(np.abs(tx.grad.numpy()[0, 0]).ravel() > 0)
    assert sorted({int(r) // 9 for r in reach}) == [2, 3, 4]
    assert sorted({int(r) % 9 for r in reach}) == [4, 5, 6]

    clear_session()
    inp = tc.Input((1, 9, 9))
    x = L.Reshape((2, 49), name="folded")(L.Conv2D(2, 3)(inp))
    lines = tc.Model(inp, x).explain(return_string=True, receptive_field=True).splitlines()
    assert lines[-1].startswith("Receptive field: unknown from folded on (Reshape to several axes")


def test_a_broadcast_gate_makes_the_field_whole_or_unknown():
    """Multiply by a (C, 1, 1) gate from global pooling: every output pixel reads the whole
    input (the gradient of one pixel reaches all of them).  A gate of height 1 that does not
    see the whole input is read by every row: no one field per pixel from there."""
    clear_session()
    inp = tc.Input((2, 9, 9), dtype="float64")
    x = L.Conv2D(2, 3, padding="same", kernel_initializer="ones")(inp)
    gate = L.GlobalAveragePooling2D()(x)
    gate = L.Dense(2, activation="sigmoid", kernel_initializer="ones", name="excite")(gate)
    model = tc.Model(inp, L.Multiply(name="scale")([x, L.Reshape((2, 1, 1))(gate)]))
    fields = receptive_fields(model)
    scale = next(n for n in model.graph if model.graph.nodes[n]["name"] == "scale")
    assert fields[scale].size is None and fields[scale].known
    assert _footprint(model, np.ones((1, 2, 9, 9)), 0, 0) == ((0, 8), (0, 8))

    clear_session()
    inp = tc.Input((2, 9, 9))
    x = L.Conv2D(2, 3, padding="same")(inp)
    row = L.AveragePooling2D((9, 1), strides=(9, 1), name="row")(x)  # (2, 1, 9): r 11×3
    model = tc.Model(inp, L.Add(name="add")([x, row]))
    lines = model.explain(return_string=True, receptive_field=True).splitlines()
    assert lines[-4].startswith("row ") and lines[-4].endswith(
        "→ 1×9×2 | RF 11×3, jump 9×1: H: r = 3 + (9 − 1)·1 = 11, j = 1·9 = 9; "
        "W: r = 3 + (1 − 1)·1 = 3, j = 1·1 = 1"
    )
    assert lines[-3].endswith(
        'Add: 9×9×2 + 1×9×2 (size-1 axes broadcast) → 9×9×2 | RF: unknown: input 1 "row" is '
        "broadcast from height 1: every output row reads its one row, so the field depends on "
        "where a pixel is"
    )
    assert lines[-1].startswith("Receptive field: unknown from add on (input 1")


def test_concatenate_along_channels_takes_the_union_of_the_fields():
    """Channels of two branches that look at offset regions (as in the Add above): a pixel of
    the concat sees both, 7×7, as the gradient of a 1×1 conv after it says."""
    inp, a, b, pos = _offset_branches()
    y = L.Concatenate(name="cat")([a, b])
    model = tc.Model(inp, L.Conv2D(1, 1, name="mix", **pos)(y))
    field = _last_spatial(model)
    (r0, r1), (c0, c1) = _footprint(model, np.ones((1, 1, 20, 20)), 4, 4)
    assert field.size == (r1 - r0 + 1, c1 - c0 + 1) == (7, 7) and field.jump == (2, 2)
    lines = model.explain(return_string=True, receptive_field=True).splitlines()
    assert lines[-4].startswith("cat ") and lines[-4].endswith(
        "Concatenate channels: 2 + 2 = 4 → 9×9×4 | RF 7×7, jump 2: the union of its inputs' "
        "fields, which are offset (-2..2, 0..4): r = 7"
    )
    # channels last: the channel axis is the last one (the default, 1, is the height there)
    clear_session()
    cl = {"data_format": "channels_last"}
    inp = tc.Input((12, 12, 1))
    a = L.Conv2D(2, 3, padding="same", **cl)(inp)
    b = L.Conv2D(2, 5, padding="same", **cl)(inp)
    y = L.Conv2D(2, 3, **cl)(L.Concatenate(axis=-1, name="cat")([a, b]))
    assert _last_spatial(tc.Model(inp, y)).size == (7, 7)  # the 5×5 branch, then 3×3


@pytest.mark.parametrize(
    "shape, axis, along, cl",
    [((1, 8, 8), 2, "height", False), ((1, 8, 8), 3, "width", False),
     ((8, 8, 1), 1, "height", True), ((8, 8, 1), -2, "width", True)],
)  # fmt: skip
def test_concatenate_along_height_or_width_makes_the_field_unknown(shape, axis, along, cl):
    """Joined along a spatial axis, the maps lie one after the other: pixels from the 3×3
    branch see 3 input columns, those from the 5×5 branch 5 (the gradient says so), and a
    window over the seam reads both ends of the input.  No one field: unknown from there
    (before, a width concat of C×H×W maps, or a height one of H×W×C, kept the 5×5)."""
    clear_session()
    kw = {"kernel_initializer": "ones"} | ({"data_format": "channels_last"} if cl else {})
    inp = tc.Input(shape, dtype="float64")
    a = L.Conv2D(2, 3, padding="same", **kw)(inp)
    b = L.Conv2D(2, 5, padding="same", **kw)(inp)
    y = L.Concatenate(axis=axis, name="cat")([a, b])
    model = tc.Model(inp, L.Conv2D(2, 3, name="after", **kw)(y))
    lines = model.explain(return_string=True, receptive_field=True).splitlines()
    by_name = {ln.split()[0]: ln for ln in lines[1:-2]}
    why = (
        f"Concatenate along {along} sets one input's pixels after another's, so the field "
        "depends on which input a pixel comes from and where it lands"
    )
    assert by_name["cat"].endswith(f"| RF: unknown: {why}")
    assert "RF" not in by_name["after"]  # stays unknown, said once
    assert lines[-1] == f"Receptive field: unknown from cat on ({why})"
    if along == "width" and not cl:
        cat = tc.Model(inp, y)
        x = np.ones((1, *shape))
        assert _footprint(cat, x, 4, 4)[1] == (3, 5)  # from the 3×3 branch
        assert _footprint(cat, x, 4, 8 + 4)[1] == (2, 6)  # from the 5×5 branch
        assert _footprint(model, x, 4, 7)[1] == (0, 7)  # over the seam: both ends
