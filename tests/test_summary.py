"""summary() and explain(): totals agree with the parameters, blocks collapse, the seed's
dimension walk-through."""

import re

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers as L
from tinycnn.graph import clear_session


@pytest.fixture(autouse=True)
def _fresh_names():
    clear_session()


def lenet5():
    x = inp = tc.Input((1, 32, 32))
    x = L.Conv2D(6, 5, activation="tanh", name="conv1")(x)
    x = L.AveragePooling2D(2, name="pool1")(x)
    x = L.Conv2D(16, 5, activation="tanh", name="conv2")(x)
    x = L.AveragePooling2D(2, name="pool2")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(120, activation="tanh", name="fc1")(x)
    x = L.Dense(84, activation="tanh", name="fc2")(x)
    out = L.Dense(10, activation="softmax", name="fc3")(x)
    return tc.Model(inp, out, name="lenet5")


def mini_inception():
    x = inp = tc.Input((3, 16, 16), name="image")
    with tc.block("stem"):
        x = L.Conv2D(16, 3, padding="same", use_bias=False, name="conv")(x)
        x = L.BatchNormalization(name="bn")(x)
        x = L.Activation("relu", name="relu")(x)
    with tc.block("mixed"):
        with tc.block("branch1"):
            b1 = L.Conv2D(8, 1, activation="relu", name="conv1x1")(x)
        with tc.block("branch2"):
            b2 = L.Conv2D(4, 1, activation="relu", name="reduce")(x)
            b2 = L.Conv2D(8, 3, padding="same", activation="relu", name="conv3x3")(b2)
        with tc.block("pool"):
            b3 = L.MaxPool2D(3, strides=1, padding="same", name="max")(x)
        y = L.Concatenate(name="concat")([b1, b2, b3])
        y = L.Conv2D(16, 1, name="project")(y)
        y = L.Add(name="residual")([x, y])
    y = L.GlobalAveragePooling2D(name="gap")(y)
    return tc.Model(inp, L.Dense(10, name="logits")(y), name="mini_inception")


def _number(text, label):
    return int(re.search(rf"^{label}: ([\d,]+)", text, re.M).group(1).replace(",", ""))


@pytest.mark.parametrize("build", [lenet5, mini_inception])
def test_summary_totals_equal_parameters(build):
    m = build()
    text = m.summary(return_string=True)
    trainable = sum(p.size for p in m.parameters())
    assert _number(text, "Trainable params") == trainable
    assert (
        _number(text, "Total params")
        == m.count_params()
        == sum(a.size for a in m.state_dict().values())
    )
    assert _number(text, "Non-trainable params") == m.count_params() - trainable
    assert _number(text, r"Total MACs \(one sample\)") == sum(
        d["macs"] for _, d in m.graph.nodes(data=True)
    )


def test_lenet5_summary_table():
    text = lenet5().summary(return_string=True)
    lines = text.splitlines()
    assert lines[0] == 'Model: "lenet5"'
    assert "Connected to" not in text  # a chain: nothing to connect
    row = next(line for line in lines if line.startswith(" conv1 (Conv2D)"))
    assert row.split()[2:] == ["(None,", "6,", "28,", "28)", "156", "117,600"]
    assert "Total params: 61,706 (241.04 KB)" in text
    assert "Total MACs (one sample): 416,520 (416.52 K)" in text
    # every layer output of one sample, input included
    values = 1024 + 4704 + 1176 + 1600 + 400 + 400 + 120 + 84 + 10
    assert f"Activation memory (one sample, float32): {values:,} values" in text


def test_summary_connected_to_depth_and_print_fn():
    m = mini_inception()
    text = m.summary(return_string=True)
    assert "Connected to" in text
    concat = text.splitlines()[
        [i for i, line in enumerate(text.splitlines()) if "mixed/concat (Concatenate)" in line][0] :
    ][:3]
    assert concat[0].endswith("mixed/branch1/conv1x1")
    assert concat[1].strip() == "mixed/branch2/conv3x3"
    assert concat[2].strip() == "mixed/pool/max"
    collapsed = m.summary(depth=0, return_string=True)
    assert "mixed (Block: 7 layers)" in collapsed
    assert "mixed/branch2" not in collapsed
    assert _number(collapsed, "Total params") == m.count_params()
    row = next(line for line in collapsed.splitlines() if line.startswith(" mixed (Block"))
    block_params = sum(
        m.graph.nodes[n]["params"] for n in m.graph if m.graph.nodes[n]["block"][:1] == ("mixed",)
    )
    assert f"{block_params:,}" in row
    mid = m.summary(depth=1, return_string=True)
    assert "mixed/branch2 (Block: 2 layers)" in mid and "mixed/concat (Concatenate)" in mid
    printed = []
    assert m.summary(print_fn=printed.append) is None
    assert printed == [text]
    short = m.summary(line_length=40, return_string=True)
    assert max(len(line) for line in short.splitlines()) <= 40


def test_summary_marks_shared_layers():
    a, b = tc.Input((4,), name="a"), tc.Input((4,), name="b")
    d = L.Dense(2, name="shared")
    m = tc.Model([a, b], L.Add(name="add")([d(a), d(b)]))
    text = m.summary(return_string=True)
    assert re.search(r"shared \(Dense\) .* 10 ", text)
    assert re.search(r"shared\[1\] \(Dense\) .* shared ", text)
    assert _number(text, "Total params") == 10


def test_explain_params_of_shared_layers_add_up_to_the_total():
    """A shared layer's weights are counted on its first call's line only; later calls say
    whose they are, so the lines add up to count_params()."""
    inner_in = tc.Input((4, 8, 8), name="inner_in")
    inner = tc.Model(inner_in, L.Conv2D(4, 1, name="pw")(inner_in), name="inner")
    conv = L.Conv2D(4, 3, padding="same", name="conv")
    bn = L.BatchNormalization(name="bn")
    dense = L.Dense(4, name="fc")
    x = inp = tc.Input((4, 8, 8), name="image")
    x = inner(bn(conv(bn(conv(x)))))
    x = inner(x)
    y = dense(dense(L.GlobalAveragePooling2D(name="gap")(x)))
    model = tc.Model(inp, y)
    lines = model.explain(return_string=True).splitlines()
    by_name = {line.split()[0]: line for line in lines[1:-1]}
    assert by_name["conv[1]"].endswith("→ 8×8×4; params shared with conv")
    assert by_name["bn[1]"].endswith("; params shared with bn")
    assert by_name["inner[1]"].endswith("; params shared with inner")
    assert by_name["fc[1]"].endswith("  Dense 4: 4 → 4; params shared with fc")
    assert by_name["conv"].endswith("; params (3·3·4 + 1)·4 = 148")
    counted = [re.search(r"; params (?:.* = )?([\d,]+)", line) for line in lines[1:-1]]
    total = sum(int(m.group(1).replace(",", "")) for m in counted if m)
    assert total == model.count_params() == 148 + 16 + 20 + 20
    assert lines[-1] == f"Total: {model.count_params():,} parameters"


def test_explain_lenet5_walkthrough():
    text = lenet5().explain(return_string=True)
    lines = text.splitlines()
    expect = [
        "input    Input: 32×32×1",
        "conv1    Conv2D 6@5×5 S=1 P=0: W2 = (32 − 5 + 2·0)/1 + 1 = 28 → 28×28×6, then tanh; "
        "params (5·5·1 + 1)·6 = 156",
        "pool1    AveragePooling2D 2×2 S=2: W2 = (28 − 2)/2 + 1 = 14 → 14×14×6",
        "conv2    Conv2D 16@5×5 S=1 P=0: W2 = (14 − 5 + 2·0)/1 + 1 = 10 → 10×10×16, then tanh; "
        "params (5·5·6 + 1)·16 = 2,416",
        "pool2    AveragePooling2D 2×2 S=2: W2 = (10 − 2)/2 + 1 = 5 → 5×5×16",
        "flatten  Flatten: 5×5×16 = 400",
        "fc1      Dense 120: 400 → 120, then tanh; params 400·120 + 120 = 48,120",
        "fc2      Dense 84: 120 → 84, then tanh; params 120·84 + 84 = 10,164",
        "fc3      Dense 10: 84 → 10, then softmax; params 84·10 + 10 = 850",
    ]
    assert lines[1:-1] == expect
    assert lines[-1] == "Total: 61,706 parameters"


def test_explain_branches_residuals_and_asymmetric_padding():
    text = mini_inception().explain(return_string=True)
    assert "Concatenate channels: 8 + 8 + 16 = 32 → 16×16×32" in text
    assert "Add: 16×16×16 + 16×16×16 (shapes agree) → 16×16×16" in text
    x = tc.Input((8, 6, 6), name="x")
    gate = L.Reshape((8, 1, 1), name="gate")(L.GlobalAveragePooling2D()(x))
    lines = tc.Model(x, x * gate).explain(return_string=True).splitlines()
    assert lines[-2].endswith("Multiply: 6×6×8 ⊙ 1×1×8 (size-1 axes broadcast) → 6×6×8")
    assert "BatchNormalization: shape unchanged → 16×16×16; params 4·16 = 64 (32 trainable)" in text
    assert "MaxPool2D 3×3 S=1 P=same: W2 = (16 − 3 + 2·1)/1 + 1 = 16" in text
    inp = tc.Input((3, 15, 12))
    y = L.Conv2D(4, 3, strides=2, padding="same", name="s2")(inp)
    y = L.MaxPool2D(3, strides=2, ceil_mode=True, name="ceil")(y)
    lines = tc.Model(inp, y).explain(return_string=True).splitlines()
    assert "H2 = (15 − 3 + 2·1)/2 + 1 = 8, W2 = (12 − 3 + 0 + 1)/2 + 1 = 6 → 8×6×4" in lines[2]
    assert "H2 = ⌈(8 − 3)/2⌉ + 1 = 4, W2 = ⌈(6 − 3)/2⌉ + 1 = 3 → 4×3×4" in lines[3]
    printed = []
    tc.Model(inp, y, name="small").explain(print_fn=printed.append)
    assert printed and printed[0].startswith('Model "small": dimension walk-through')


def test_summary_of_float64_model_counts_8_bytes():
    inp = tc.Input((3,), dtype=np.float64)
    m = tc.Model(inp, L.Dense(2)(inp))
    assert "Total params: 8 (64.00 B)" in m.summary(return_string=True)


def test_explain_receptive_field_of_flat_and_multi_input_models():
    a, b = tc.Input((3,), name="a"), tc.Input((3,), name="b")
    flat = tc.Model([a, b], L.Dense(2, name="d")(a))
    assert flat.explain(receptive_field=True, return_string=True).endswith(
        "Receptive field: no layer keeps a spatial layout"
    )
    small, big = tc.Input((3, 8, 8), name="small"), tc.Input((3, 10, 10), name="big")
    conv = L.Conv2D(4, 3, name="conv")
    gap = L.GlobalAveragePooling2D
    m = tc.Model([small, big], [gap(name="g1")(conv(small)), gap(name="g2")(conv(big))])
    assert m.explain(receptive_field=True, return_string=True).endswith(
        "Receptive field of conv[1], the last layer with spatial outputs: 3×3 pixels of the "
        "10×10 input"
    )


def test_summary_macs_of_a_nested_model_called_on_another_size():
    a = tc.Input((3, 8, 8))
    inner = tc.Model(a, L.Conv2D(4, 3, name="c")(a), name="inner")
    b = tc.Input((3, 12, 12))
    m = tc.Model(b, inner(b))
    text = m.summary(return_string=True)
    assert re.search(r"inner \(Model\) +\(None, 4, 10, 10\) +112 +10,800", text)
    assert _number(text, r"Total MACs \(one sample\)") == 10 * 10 * 4 * 27


def test_summary_depth_must_be_a_non_negative_int():
    m = lenet5()
    for depth in (-1, "1", True):
        with pytest.raises(ValueError, match=r"summary: depth must be an int >= 0 or None, got"):
            m.summary(depth=depth)


def test_explain_shows_the_ceil_mode_window_that_is_dropped(capsys):
    """W2 = ⌈(11 − 2 + 2·1)/2⌉ + 1 is 7, but the 7th window would start in the right padding:
    PyTorch drops it, and the line shows that step (it used to state 6 for the sum 7)."""
    inp = tc.Input((1, 11, 11))
    model = tc.Model(inp, L.MaxPool2D(2, strides=2, padding=1, ceil_mode=True)(inp))
    model.explain()
    out = capsys.readouterr().out
    assert (
        "W2 = ⌈(11 − 2 + 2·1)/2⌉ + 1 − 1 = 6 (the last window would start in the right "
        "padding: dropped) → 6×6×1" in out
    )
    assert model.output_shape == (None, 1, 6, 6)


def _conv_and_inner_model(inner_first: bool):
    """A conv called on its own and also inside a nested model: conv (3·3·1 + 1)·2 = 20, the
    nested model's own 1×1 conv (2 + 1)·2 = 6, and a 1×1 conv between them (1·1·2 + 1)·1 = 3."""
    conv = L.Conv2D(2, 3, padding="same", name="conv")
    a = tc.Input((1, 8, 8), name="a")
    inner = tc.Model(a, L.Conv2D(2, 1, name="pw")(conv(a)), name="inner")
    x = inp = tc.Input((1, 8, 8), name="image")
    first, second = (inner, conv) if inner_first else (conv, inner)
    x = first(x)
    with tc.block("body"):
        x = second(L.Conv2D(1, 1, name="back")(x))
    return tc.Model(inp, x, name="outer")


def _summary_params(text):
    """The parameters each row of the table counts ("shared": none; "6 (+20 shared)": 6)."""
    row = re.compile(
        r"^ \S+ \(.+?\)\s+\(.*?\)\s+(shared|[\d,]+)(?: \(\+[\d,]+ shared\))?\s+[\d,]+$"
    )
    found = [row.match(line) for line in text.splitlines()]
    return [0 if m[1] == "shared" else int(m[1].replace(",", "")) for m in found if m]


@pytest.mark.parametrize("inner_first", [False, True])
def test_a_layer_also_inside_a_nested_model_is_counted_once(inner_first):
    """The conv's 20 weights are counted on the first line that holds them: on the conv's own
    line, the nested model's then counts only its 6 (before, 20 + 26 + 3 = 49 for a total of
    29); after the nested model, the conv's line says whose they are.  So do the summary's
    rows, collapsed blocks included."""
    m = _conv_and_inner_model(inner_first)
    assert m.count_params() == 29
    lines = m.explain(return_string=True).splitlines()
    by_name = {line.split()[0]: line for line in lines[1:-1]}
    if inner_first:
        assert by_name["inner"].endswith("Model (2 layers): 8×8×1 → 8×8×2; params 26")
        assert by_name["conv"].endswith("→ 8×8×2; params shared with inner")
    else:
        assert by_name["conv"].endswith("→ 8×8×2; params (3·3·1 + 1)·2 = 20")
        assert by_name["inner"].endswith(
            "Model (2 layers): 8×8×1 → 8×8×2; params 26 − 20 shared with conv = 6"
        )
    assert by_name["body/back"].endswith("; params (1·1·2 + 1)·1 = 3")
    counted = [re.search(r"; params (?:.* = )?([\d,]+)$", line) for line in lines[1:-1]]
    assert sum(int(c.group(1).replace(",", "")) for c in counted if c) == 29
    assert lines[-1] == "Total: 29 parameters"

    text = m.summary(return_string=True)
    rows = _summary_params(text)
    assert len(rows) == 4  # image, and the three layers
    assert sum(rows) == _number(text, "Total params") == 29
    inner_row = next(line for line in text.splitlines() if line.startswith(" inner (Model)"))
    conv_row = next(line for line in text.splitlines() if line.startswith(" conv (Conv2D)"))
    if inner_first:
        assert re.search(r"\) +26 +", inner_row) and re.search(r"\) +shared +", conv_row)
    else:
        assert re.search(r"\) +6 \(\+20 shared\) +", inner_row)
        assert re.search(r"\) +20 +", conv_row)
    collapsed = m.summary(depth=0, return_string=True)
    rows = _summary_params(collapsed)
    assert len(rows) == 3  # image, the first layer, and the body block
    assert sum(rows) == 29
    body = next(line for line in collapsed.splitlines() if line.startswith(" body (Block"))
    assert re.search(rf"\) +{3 if inner_first else 9} +", body)
