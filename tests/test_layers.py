"""Layers: argument checks, shape errors that name the layer and the rule, shape inference equal
to what the kernels produce (hypothesis), and numerics against NumPy and torch."""

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinycnn as tc
from tinycnn import layers as L
from tinycnn.graph import clear_session
from tinycnn.graph.shapes import same_pads
from tinycnn.testing import gradcheck

from .helpers import TF, needs_torch, torch


@pytest.fixture(autouse=True)
def _fresh_names():
    clear_session()


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def run(layer, *arrays, training=False):
    """Build a one-layer model on the arrays' shapes and run it (so the shape rule and the
    kernel are both exercised)."""
    inputs = [tc.Input(a.shape[1:], dtype=a.dtype) for a in arrays]
    sym = layer(inputs if len(inputs) > 1 else inputs[0])
    m = tc.Model(inputs if len(inputs) > 1 else inputs[0], sym)
    out = m(list(arrays) if len(arrays) > 1 else arrays[0], training=training)
    return sym.shape, out


# ------------------------------------------------------------------------------ arguments
BAD_ARGS = [
    (lambda: L.Conv2D(0, 3, name="c"), 'Conv2D layer "c": filters must be a positive int'),
    (lambda: L.Conv2D(4, (3, 0), name="c"), "kernel_size must be >= 1"),
    (lambda: L.Conv2D(4, 3, strides=0, name="c"), "strides must be >= 1"),
    (lambda: L.Conv2D(4, 3, padding="full", name="c"), 'padding must be "valid", "same"'),
    (lambda: L.Conv2D(4, 3, padding=-1, name="c"), "padding must be >= 0"),
    (lambda: L.Conv2D(6, 3, groups=4, name="c"), r"filters \(6\) must be divisible by groups"),
    (lambda: L.Conv2D(4, 3, activation="gelu2", name="c"), "activation: unknown 'gelu2'"),
    (lambda: L.Conv2D(4, 3, kernel_initializer="nope", name="c"), "kernel_initializer"),
    (lambda: L.Conv2D(4, 3, data_format="NCHW", name="c"), "data_format must be"),
    (lambda: L.Conv2D(4, 3, padding_mode="wrap", name="c"), "padding_mode must be one of"),
    (lambda: L.Dense(-1, name="d"), 'Dense layer "d": units must be a positive int'),
    (lambda: L.MaxPool2D(3, padding=2, name="p"), "more than half the 3×3 pool"),
    (lambda: L.MaxPool2D(2, padding="same", ceil_mode=True, name="p"), "ceil_mode applies"),
    (lambda: L.Dropout(1.0, name="dr"), r'Dropout layer "dr": rate must be in \[0, 1\)'),
    (lambda: L.BatchNormalization(momentum=1.5, name="bn"), "momentum must be in"),
    (lambda: L.BatchNormalization(axis=2, name="bn"), "axis must be 1"),
    (lambda: L.Activation("nope", name="a"), 'Activation layer "a": activation: unknown'),
    (lambda: L.Concatenate(axis=0, name="cat"), "axis must be a non-batch axis"),
    (lambda: L.Reshape((2, -1, -1), name="r"), "one -1"),
    (lambda: L.Rescale(float("nan"), name="s"), "scale must be a finite number"),
    (lambda: L.ReLU(max_value=-1, name="r"), "max_value must be a number >= 0"),
    (lambda: L.LocalResponseNormalization(size=0, name="n"), "size must be a positive int"),
    (lambda: L.ZeroPadding2D("same", name="z"), "padding must be an int or pairs"),
    (lambda: L.Conv2D(4, 3, bogus=1), "unexpected keyword argument"),
    (
        lambda: L.Conv2D(4, 3, padding=((1,), (1,)), name="c"),
        r'Conv2D layer "c": padding as pairs must be \(\(top, bottom\), \(left, right\)\)',
    ),
    (lambda: L.Conv2D(4, 3, padding_mode=[], name="c"), 'layer "c": padding_mode must be one'),
    (lambda: L.BatchNormalization(axis=1.0, name="bn"), 'layer "bn": axis must be 1'),
    (lambda: L.BatchNormalization(axis=True, name="bn"), 'layer "bn": axis must be 1'),
    (lambda: L.Softmax(axis=True, name="s"), 'layer "s": axis must be a non-batch axis'),
    (lambda: L.Reshape((2.5,), name="r"), 'layer "r": target_shape must be a tuple of ints'),
    (lambda: L.Reshape("12", name="r"), 'layer "r": target_shape must be a tuple of ints'),
    (lambda: L.ReLU(negative_slope=None, name="r"), 'layer "r": negative_slope must be a number'),
    (lambda: L.ReLU(max_value=True, name="r"), 'layer "r": max_value must be a number >= 0'),
    (lambda: L.LeakyReLU(float("inf"), name="r"), 'layer "r": negative_slope must be a finite'),
    (lambda: L.Dropout(0.5, seed="x", name="d"), 'Dropout layer "d": seed: expected a seed'),
    (lambda: L.Dropout(0.5, seed=-1, name="d"), 'Dropout layer "d": seed: '),
]


@pytest.mark.parametrize("make,message", BAD_ARGS, ids=[m for _, m in BAD_ARGS])
def test_bad_arguments_raise_naming_the_layer(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


# ------------------------------------------------------------------------------ shape errors
def test_conv_too_small_names_layer_rule_numbers_and_fix():
    x = tc.Input((1, 4, 4))
    with pytest.raises(ValueError) as err:
        L.Conv2D(6, 5, name="conv1")(x)
    msg = str(err.value)
    assert msg.startswith('Conv2D layer "conv1": input shape (None, 1, 4, 4): ')
    assert "H2 = (4 − 5 + 2·0)/1 + 1 = 0 is < 1" in msg
    assert 'padding="same"' in msg and "keeps 4×4" in msg


def test_dilated_and_strided_errors_show_effective_kernel():
    with pytest.raises(ValueError, match=r"H2 = \(5 − 7 \+ 2·0\)/2 \+ 1 = 0 is < 1.*dilated to 7"):
        L.Conv2D(1, 3, strides=2, dilation_rate=3, name="d")(tc.Input((1, 5, 9)))


def test_pool_too_small():
    with pytest.raises(
        ValueError, match=r'MaxPool2D layer "pool".*H2 = ⌊\(2 − 3 \+ 2·0\)/3⌋ \+ 1 = 0 is < 1'
    ):
        L.MaxPool2D(3, name="pool")(tc.Input((4, 2, 2)))


def test_reflect_and_circular_padding_larger_than_the_input_fail_when_written():
    with pytest.raises(
        ValueError,
        match=r'Conv2D layer "c": input shape \(None, 3, 2, 2\): padding_mode="reflect" needs each '
        r"padding < the input size, but the height padding is \(3, 3\) for an input height of 2",
    ):
        L.Conv2D(4, 1, padding=3, padding_mode="reflect", name="c")(tc.Input((3, 2, 2)))
    with pytest.raises(
        ValueError, match=r'padding_mode="circular" needs each padding <= the input'
    ):
        L.DepthwiseConv2D(5, padding="same", padding_mode="circular", name="d")(tc.Input((3, 1, 1)))
    shape, y = run(L.Conv2D(4, 1, padding=2, padding_mode="circular"), rand(1, 3, 2, 2))
    assert y.shape == (1, *shape[1:]) == (1, 4, 6, 6)


def test_ceil_mode_pool_with_asymmetric_padding_keeps_the_inferred_shape():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    pads = ((0, 1), (0, 1))
    for kind, expect in ((L.MaxPool2D, [[5, 7], [13, 15]]), (L.AveragePooling2D, None)):
        shape, y = run(kind(2, strides=2, padding=pads, ceil_mode=True), x)
        assert shape == (None, 1, 2, 2) and y.shape == (1, 1, 2, 2)  # was (1, 1, 3, 3)
        if expect is None:
            expect = x.reshape(2, 2, 2, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(y.numpy()[0, 0], expect)


def test_ceil_mode_pool_window_may_hang_past_the_edge_as_in_torch():
    shape, y = run(L.MaxPool2D(2, ceil_mode=True), rand(1, 2, 1, 1))
    assert shape == (None, 2, 1, 1) and y.shape == (1, 2, 1, 1)
    np.testing.assert_allclose(y.numpy(), rand(1, 2, 1, 1))
    if torch is not None:
        ref = TF.avg_pool2d(torch.tensor(rand(1, 2, 3, 3)), 2, 2, ceil_mode=True)
        _, y = run(L.AveragePooling2D(2, ceil_mode=True), rand(1, 2, 3, 3))
        np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"H2 = \(1 − 3 \+ 2·0\)/2 \+ 1 = 0 is < 1"):
        L.MaxPool2D(3, strides=2, ceil_mode=True, name="p")(tc.Input((2, 1, 1)))


def test_batchnorm_training_on_one_value_per_channel_names_the_layer():
    a = tc.Input((3, 1, 1))
    m = tc.Model(a, L.BatchNormalization(name="bn")(a))
    with pytest.raises(
        ValueError,
        match=r'BatchNormalization layer "bn": training needs more than 1 value per channel',
    ):
        m(rand(1, 3, 1, 1), training=True)
    assert m(rand(1, 3, 1, 1)).shape == (1, 3, 1, 1)
    assert m(rand(2, 3, 1, 1), training=True).shape == (2, 3, 1, 1)


@pytest.mark.parametrize(
    "make,shape,message",
    [
        (
            lambda: L.Conv2D(2, 3, name="c"),
            (10,),
            r'Conv2D layer "c": expects a 4-d input.*\(None, 10\)',
        ),
        (lambda: L.MaxPool2D(name="p"), (3, 8), r'MaxPool2D layer "p": expects a 4-d input'),
        (lambda: L.Conv2D(2, 1, groups=2, name="g"), (3, 4, 4), "not divisible by groups=2"),
        (lambda: L.Reshape((7, -1), name="r"), (10,), r"10 is not divisible by 7"),
        (lambda: L.Reshape((3, 3), name="r"), (10,), r"\(9 values\)"),
        (lambda: L.GlobalAveragePooling2D(name="gap"), (5,), "expects a 4-d input"),
        (lambda: L.ZeroPadding2D(name="z"), (5,), "expects a 4-d input"),
        (lambda: L.Softmax(axis=3, name="s"), (5,), "axis 3 is not a non-batch axis"),
        (lambda: L.LocalResponseNormalization(name="n"), (5,), 'layer "n": expects'),
        (lambda: L.BatchNormalization(name="bn"), (), 'layer "bn": expects at least'),
    ],
)
def test_shape_errors_are_value_errors_naming_the_layer(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make()(tc.Input(shape))


def test_merge_layers_name_every_mismatching_input():
    a = L.Conv2D(8, 1, name="a")(tc.Input((3, 8, 8)))
    b = L.Conv2D(8, 1, strides=2, name="b")(tc.Input((3, 8, 8)))
    c = L.Conv2D(4, 1, name="c")(tc.Input((3, 8, 8)))
    with pytest.raises(ValueError) as err:
        L.Add(name="add")([a, b, c])
    msg = str(err.value)
    assert msg == (
        'Add layer "add": inputs must have the same shape, or 1 on an axis to broadcast '
        "along it; "
        'input 0 "a" has (None, 8, 8, 8) but '
        'input 1 "b" has (None, 8, 4, 4) (axis 2: 4 is not 8 or 1, axis 3: 4 is not 8 or 1); '
        'input 2 "c" has (None, 4, 8, 8) (axis 1: 4 is not 8 or 1). For a residual connection, '
        "project the shortcut (a 1×1 Conv2D with the right filters and strides) to match."
    )
    with pytest.raises(ValueError) as err:
        L.Concatenate(name="cat")([a, b, c])
    msg = str(err.value)
    assert 'input 1 "b" has (None, 8, 4, 4)' in msg and '"c"' not in msg  # c only differs on C
    assert 'padding="same"' in msg
    with pytest.raises(ValueError, match="at least 2 inputs"):
        L.Multiply(name="m")([a])
    with pytest.raises(TypeError, match="expects a list"):
        L.Add(name="add2")(a)
    with pytest.raises(ValueError, match='input 1 "flatten" is 2-d'):
        L.Concatenate(name="cat2")([a, L.Flatten()(a)])


def test_elementwise_merge_errors_state_the_broadcast_rule_and_a_fitting_hint():
    clear_session()
    x = tc.Input((4, 8, 8), name="x")
    row, col = tc.Input((4, 1, 8), name="row"), tc.Input((4, 8, 1), name="col")
    wrong = tc.Input((3, 8, 8), name="wrong")
    with pytest.raises(ValueError) as err:
        L.Multiply(name="gate")([row, col, wrong])
    msg = str(err.value)
    # the inputs that fit are named with the shape they broadcast to; the hint is a gate's
    assert msg == (
        'Multiply layer "gate": inputs must have the same shape, or 1 on an axis to broadcast '
        "along it; "
        'input 0 "row" and input 1 "col" broadcast to (None, 4, 8, 8) but '
        'input 2 "wrong" has (None, 3, 8, 8) (axis 1: 3 is not 4 or 1). To gate a map per '
        "channel (squeeze-and-excitation), give the gate size 1 on height and width: "
        "Reshape((3, 1, 1)) of a Dense(3) output for the (None, 3, 8, 8) map "
        "(Reshape((1, 1, C)) when channels are last); to gate per pixel, give it 1 channel: "
        "(None, 1, 8, 8)."
    )
    assert "residual" not in msg
    with pytest.raises(ValueError, match="project the shortcut") as err:
        L.Add(name="res")([x, wrong])
    assert "squeeze" not in str(err.value)
    # a (None, C) gate of another rank: the Reshape that lines it up, with its numbers
    gate = L.Dense(4, activation="sigmoid", name="fc")(L.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError) as err:
        L.Multiply(name="scale")([x, gate])
    assert str(err.value) == (
        'Multiply layer "scale": inputs must have the same rank to broadcast, input 0 "x" is '
        '4-d (None, 4, 8, 8) but input 1 "fc" is 2-d (None, 4). Reshape((4, 1, 1)) makes '
        'input 1 "fc" (None, 4, 1, 1), which broadcasts over the height and width of '
        "(None, 4, 8, 8)."
    )
    with pytest.raises(ValueError, match=r'input 1 "flat" is 2-d \(None, 256\)\. Reshape the'):
        L.Add(name="add")([x, L.Flatten(name="flat")(x)])


BROADCASTS = [
    [(4, 8, 8), (1, 8, 8)],  # one map for every channel (a spatial gate)
    [(4, 8, 8), (4, 1, 1)],  # one value per channel (a squeeze-and-excitation gate)
    [(1, 8, 8), (4, 1, 1)],  # both broadcast: neither is the output's shape
    [(4, 1, 8), (4, 8, 1), (1, 1, 1)],
    [(3,), (1,)],
]


@pytest.mark.parametrize("shapes", BROADCASTS, ids=lambda s: "+".join(map(str, s)))
@pytest.mark.parametrize("kind", ["Add", "Multiply"])
def test_elementwise_merges_broadcast_size_one_axes_forward_and_backward(kind, shapes):
    clear_session()
    arrays = [rand(2, *s, seed=i, dtype=np.float64) for i, s in enumerate(shapes)]
    want = np.broadcast_shapes(*(a.shape for a in arrays))
    inputs = [tc.Input(s, dtype="float64") for s in shapes]
    y = getattr(L, kind)()(inputs)
    assert y.shape == (None, *want[1:])
    model = tc.Model(inputs, y)
    xs = [tc.tensor(a, requires_grad=True) for a in arrays]
    out = model(xs)
    ref = arrays[0]
    for a in arrays[1:]:
        ref = ref + a if kind == "Add" else ref * a
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    # backward: the upstream gradient (times the other factors) summed over the axes that
    # were broadcast, as NumPy's rule implies
    g = rand(*want, seed=9, dtype=np.float64)
    out.backward(tc.tensor(g))
    for i, (a, x) in enumerate(zip(arrays, xs)):
        others = [b for j, b in enumerate(arrays) if j != i]
        full = functools.reduce(np.multiply, others, g) if kind == "Multiply" else g
        axes = tuple(k for k, n in enumerate(a.shape) if n == 1 and want[k] > 1)
        np.testing.assert_allclose(x.grad.numpy(), full.sum(axis=axes, keepdims=True), rtol=1e-10)
    gradcheck(lambda *t: model(list(t)), [tc.tensor(a, requires_grad=True) for a in arrays])


def test_a_squeeze_and_excitation_gate_scales_each_channel():
    clear_session()
    x = inp = tc.Input((4, 5, 5), dtype="float64")
    s = L.GlobalAveragePooling2D(name="squeeze")(x)
    s = L.Dense(4, activation="sigmoid", name="excite")(s)
    s = L.Reshape((4, 1, 1), name="gate")(s)
    y = L.Multiply(name="scale")([x, s])
    z = x * s  # the symbolic product is the same layer
    assert y.shape == z.shape == (None, 4, 5, 5)
    model = tc.Model(inp, [y, z])
    data = rand(3, 4, 5, 5, dtype=np.float64)
    w, b = model.get_layer("excite").kernel.numpy(), model.get_layer("excite").bias.numpy()
    gate = 1 / (1 + np.exp(-(data.mean(axis=(2, 3)) @ w.T + b)))
    for out in model(data):
        np.testing.assert_allclose(out.numpy(), data * gate[:, :, None, None], rtol=1e-12)


def test_an_image_layer_on_a_3d_input_says_the_channel_axis_is_missing():
    clear_session()
    with pytest.raises(ValueError) as err:
        L.Conv2D(2, 3, name="c")(tc.Input((32, 28)))
    assert str(err.value) == (
        'Conv2D layer "c": expects a 4-d input (batch, channels, height, width) (batch '
        "included), got input shape (None, 32, 28) (3-d). A 3-d input has height and width but "
        "no channel axis: for one-channel images use Input((1, 32, 28)) and data of shape "
        "(N, 1, 32, 28) (x[:, None]); after a layer, Reshape((1, 32, 28))."
    )
    with pytest.raises(ValueError) as err:
        L.Conv2D(2, 3, data_format="channels_last", name="c")(tc.Input((32, 28)))
    assert "(batch, height, width, channels)" in str(err.value)
    assert str(err.value).endswith(
        "use Input((32, 28, 1)) and data of shape (N, 32, 28, 1) (x[..., None]); after a "
        "layer, Reshape((32, 28, 1))."
    )
    for layer in (
        L.MaxPool2D(name="p"),
        L.AveragePooling2D(name="a"),
        L.DepthwiseConv2D(3, name="d"),
        L.SeparableConv2D(2, 3, name="s"),
        L.GlobalAveragePooling2D(name="g"),
        L.ZeroPadding2D(name="z"),
    ):
        with pytest.raises(ValueError, match=r"no channel axis: .*Input\(\(1, 32, 28\)\)"):
            layer(tc.Input((32, 28)))
    # flat features (a Dense output) fed to a conv: the Flatten hint, not the channel one
    with pytest.raises(ValueError) as err:
        L.Conv2D(2, 3, name="c")(L.Dense(10)(tc.Input((5,))))
    assert str(err.value).endswith(
        "got input shape (None, 10) (2-d). Flatten/Reshape comes after convolutions, not before."
    )


def test_dense_on_wrong_features_and_dtype_mix():
    d = L.Dense(2, name="fc")
    d(tc.Input((4,)))
    with pytest.raises(ValueError, match=r'Dense layer "fc": was built for 4 input features'):
        d(tc.Input((5,)))
    a, b = tc.Input((3,)), tc.Input((3,), dtype=np.float64)
    with pytest.raises(TypeError, match="different dtypes"):
        L.Add(name="mix")([a, b])


# ------------------------------------------------------------------------------ property
def _conv_out(h, k, s, d, lo, hi):
    return (h + lo + hi - d * (k - 1) - 1) // s + 1


@st.composite
def conv_configs(draw):
    kind = draw(st.sampled_from(["conv", "depthwise", "separable"]))
    groups = draw(st.sampled_from([1, 2])) if kind == "conv" else 1
    c = draw(st.integers(1, 3)) * groups
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(
        st.one_of(
            st.sampled_from(["valid", "same"]),
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
        )
    )
    return kind, groups, c, (h, w), k, s, d, padding


def _make(kind, groups, k, s, d, padding):
    if kind == "conv":
        return L.Conv2D(2 * groups, k, strides=s, padding=padding, dilation_rate=d, groups=groups)
    if kind == "depthwise":
        return L.DepthwiseConv2D(k, strides=s, padding=padding, dilation_rate=d, depth_multiplier=2)
    return L.SeparableConv2D(3, k, strides=s, padding=padding, dilation_rate=d)


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(conv_configs())
def test_conv_shape_inference_matches_the_kernels(cfg):
    kind, groups, c, (h, w), k, s, d, padding = cfg
    layer = _make(kind, groups, k, s, d, padding)
    try:
        inferred = layer(tc.Input((c, h, w))).shape
    except ValueError as e:
        assert f'layer "{layer.name}"' in str(e) and "is < 1" in str(e)
        # illegal: the window does not fit the padded input along some axis
        pads = (
            padding
            if isinstance(padding, tuple)
            else ((padding, padding) if isinstance(padding, int) else (0, 0))
        )
        assert padding != "same"
        assert (
            min(
                _conv_out(h, k[0], s[0], d[0], pads[0], pads[0]),
                _conv_out(w, k[1], s[1], d[1], pads[1], pads[1]),
            )
            < 1
        )
        return
    y = layer(rand(2, c, h, w))
    assert y.shape == (2, *inferred[1:])
    if padding == "same":
        assert y.shape[2:] == (-(-h // s[0]), -(-w // s[1]))


@st.composite
def pool_configs(draw):
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(
        st.one_of(
            st.sampled_from(["valid", "same"]),
            st.tuples(st.integers(0, k[0] // 2), st.integers(0, k[1] // 2)),
        )
    )
    ceil = padding != "same" and draw(st.booleans())
    kind = draw(st.sampled_from([L.MaxPool2D, L.AveragePooling2D]))
    return kind, (h, w), k, s, padding, ceil


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(pool_configs())
def test_pool_shape_inference_matches_the_kernels(cfg):
    kind, (h, w), k, s, padding, ceil = cfg
    layer = kind(k, strides=s, padding=padding, ceil_mode=ceil)
    try:
        inferred = layer(tc.Input((2, h, w))).shape
    except ValueError as e:
        assert "is < 1" in str(e) and padding != "same"
        return
    y = layer(rand(1, 2, h, w))
    assert y.shape == (1, *inferred[1:])
    if torch is not None and padding != "same":
        fn = TF.max_pool2d if kind is L.MaxPool2D else TF.avg_pool2d
        pad = 0 if padding == "valid" else padding
        ref = fn(torch.tensor(rand(1, 2, h, w)), k, s, pad, ceil_mode=ceil)
        assert tuple(ref.shape) == y.shape


# ------------------------------------------------------------------------------ numerics
def _torch_same(x, k, s, d=(1, 1)):
    """Keras' "same" padding done by hand for torch."""
    (t, b), (l, r) = [
        same_pads(n, dd * (kk - 1) + 1, ss) for n, kk, ss, dd in zip(x.shape[2:], k, s, d)
    ]
    return TF.pad(x, (l, r, t, b))


@needs_torch
@pytest.mark.parametrize("k,s,d,groups", [(3, 2, 1, 1), (4, 1, 1, 2), (3, 1, 2, 1), (2, 3, 1, 1)])
def test_conv2d_same_padding_matches_keras_semantics(k, s, d, groups):
    x = rand(2, 4, 9, 8)
    layer = L.Conv2D(
        6, k, strides=s, padding="same", dilation_rate=d, groups=groups, activation="relu", name="c"
    )
    shape, y = run(layer, x)
    xt = _torch_same(torch.tensor(x), (k, k), (s, s), (d, d))
    ref = TF.relu(
        TF.conv2d(
            xt,
            torch.tensor(layer.kernel.numpy()),
            torch.tensor(layer.bias.numpy()),
            s,
            0,
            d,
            groups,
        )
    )
    assert y.shape == tuple(ref.shape) == (2, *shape[1:])
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


@needs_torch
def test_depthwise_and_separable_match_torch():
    x = rand(2, 3, 7, 7)
    dw = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="dw")
    _, y = run(dw, x)
    xt = _torch_same(torch.tensor(x), (3, 3), (2, 2))
    ref = TF.conv2d(
        xt, torch.tensor(dw.depthwise_kernel.numpy()), torch.tensor(dw.bias.numpy()), 2, groups=3
    )
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)
    sep = L.SeparableConv2D(5, 3, padding="same", name="sep")
    _, y = run(sep, x)
    mid = TF.conv2d(
        torch.tensor(x), torch.tensor(sep.depthwise_kernel.numpy()), None, 1, 1, groups=3
    )
    ref = TF.conv2d(mid, torch.tensor(sep.pointwise_kernel.numpy()), torch.tensor(sep.bias.numpy()))
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)
    assert sep.count_params() == 3 * 9 + 3 * 5 + 5
    assert dw.count_params() == 6 * 9 + 6


def test_conv_weights_layout_and_fans():
    conv = L.Conv2D(8, (3, 5), groups=2, name="c")
    conv(tc.Input((4, 9, 9)))
    assert conv.kernel.shape == (8, 2, 3, 5) and conv.bias.shape == (8,)
    limit = np.sqrt(6 / (2 * 15 + 8 * 15))  # Keras' glorot fans: C_in/g·kh·kw, C_out·kh·kw
    assert np.abs(conv.kernel.numpy()).max() <= limit
    assert np.abs(conv.kernel.numpy()).max() > 0.8 * limit
    np.testing.assert_array_equal(conv.bias.numpy(), 0)
    nobias = L.Conv2D(8, 3, use_bias=False, kernel_initializer="he_normal", name="nb")
    nobias(tc.Input((4, 9, 9)))
    assert [w.shape for w in nobias.weights] == [(8, 4, 3, 3)]


def test_channels_last_is_converted_at_the_layer():
    x = rand(2, 6, 7, 3)  # NHWC
    inp = tc.Input((6, 7, 3))
    c = L.Conv2D(4, 3, strides=2, padding="same", data_format="channels_last", name="c")
    p = L.MaxPool2D(2, padding="same", data_format="channels_last")
    z = L.ZeroPadding2D(((1, 0), (0, 2)), data_format="channels_last")
    g = L.GlobalAveragePooling2D(data_format="channels_last")
    bn = L.BatchNormalization(axis=-1)
    y1 = z(p(bn(c(inp))))
    assert y1.shape == (None, 3, 4, 4)
    m = tc.Model(inp, [y1, g(y1)])
    out, pooled = m(x)
    # the same computation in NCHW
    inp2 = tc.Input((3, 6, 7))
    c2 = L.Conv2D(4, 3, strides=2, padding="same", name="c2")
    y2 = L.ZeroPadding2D(((1, 0), (0, 2)))(
        L.MaxPool2D(2, padding="same")(L.BatchNormalization()(c2(inp2)))
    )
    m2 = tc.Model(inp2, y2)
    c2.set_weights(c.get_weights())
    ref = m2(x.transpose(0, 3, 1, 2)).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled.numpy(), ref.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def _window_reference(x, k, s, pads, reduce):
    """Slow obvious pooling over the real pixels only (padding excluded)."""
    (t, b), (l, r) = pads
    n, c, h, w = x.shape
    oh, ow = (h + t + b - k[0]) // s[0] + 1, (w + l + r - k[1]) // s[1] + 1
    out = np.zeros((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s[0] - t, j * s[1] - l
            win = x[:, :, max(r0, 0) : r0 + k[0], max(c0, 0) : c0 + k[1]]
            out[:, :, i, j] = reduce(win, axis=(2, 3))
    return out


@pytest.mark.parametrize("k,s,size", [(3, 2, 8), (3, 1, 5), (2, 2, 5), (4, 3, 7)])
def test_same_pooling_excludes_padding(k, s, size):
    x = rand(2, 3, size, size + 1)
    pads = [same_pads(n, k, s) for n in x.shape[2:]]
    _, y = run(L.AveragePooling2D(k, strides=s, padding="same"), x)
    np.testing.assert_allclose(
        y.numpy(), _window_reference(x, (k, k), (s, s), pads, np.mean), rtol=1e-5, atol=1e-6
    )
    _, y = run(L.MaxPool2D(k, strides=s, padding="same"), x)
    np.testing.assert_allclose(y.numpy(), _window_reference(x, (k, k), (s, s), pads, np.max))


def test_same_avg_pool_gradient():
    x = tc.tensor(rand(1, 2, 5, 6, dtype=np.float64), requires_grad=True)
    layer = L.AveragePooling2D(2, strides=2, padding="same")
    layer(tc.Input((2, 5, 6), dtype="float64"))
    gradcheck(lambda t: layer(t), [x])


@needs_torch
def test_explicit_avg_pool_counts_padding_like_torch():
    x = rand(1, 2, 6, 6)
    _, y = run(L.AveragePooling2D(3, strides=2, padding=1), x)
    ref = TF.avg_pool2d(torch.tensor(x), 3, 2, 1)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_batchnorm_keras_momentum_and_modes():
    x = rand(8, 3, 4, 4) * 2 + 1
    bn = L.BatchNormalization(momentum=0.9, epsilon=1e-3, name="bn")
    _, y = run(bn, x, training=True)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    ref = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-3)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-4)
    # Keras: moving = 0.9 * moving + 0.1 * batch (the unbiased variance, as PyTorch)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * mean, rtol=1e-5, atol=1e-6)
    n = x.size // 3
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)
    # inference uses the moving statistics
    inp = tc.Input((3, 4, 4))
    y_eval = tc.Model(inp, bn(inp))(x).numpy()
    mm, mv = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    np.testing.assert_allclose(
        y_eval,
        (x - mm[None, :, None, None]) / np.sqrt(mv[None, :, None, None] + 1e-3),
        rtol=1e-4,
        atol=1e-4,
    )
    assert bn.count_params() == 12 and len(bn.trainable_weights) == 2
    scaleless = L.BatchNormalization(scale=False, center=False)
    scaleless(tc.Input((5,)))
    assert [w.shape for w in scaleless.weights] == [(5,), (5,)]


def test_a_frozen_batchnorm_runs_in_inference_mode_while_the_head_trains():
    """Keras' fine-tuning rule: base.trainable = False freezes its BN statistics too."""
    from tinycnn.graph import clear_session

    clear_session()
    rng = np.random.default_rng(4)
    inp = tc.Input((3, 6, 6))
    feats = L.GlobalAveragePooling2D()(
        L.BatchNormalization(name="bn")(L.Conv2D(4, 3, name="conv")(inp))
    )
    base = tc.Model(inp, feats, name="base")
    x = (rng.standard_normal((32, 3, 6, 6)) * 3 + 2).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 32)]
    base(x, training=True)  # trainable: batch statistics, and the moving ones move
    bn = base.get_layer("bn")
    moved = bn.moving_mean.numpy().copy()
    assert np.abs(moved).max() > 0
    base.trainable = False
    before = {k: v.copy() for k, v in base.state_dict().items()}
    np.testing.assert_array_equal(base(x, training=True).numpy(), base(x).numpy())
    inp2 = tc.Input((3, 6, 6))
    model = tc.Model(inp2, L.Dense(2, activation="softmax", name="head")(base(inp2)))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    head = model.get_layer("head").kernel.numpy().copy()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for key, value in base.state_dict().items():  # moving statistics included
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert not np.array_equal(model.get_layer("head").kernel.numpy(), head)


def test_dense_flatten_reshape_and_activations():
    x = rand(3, 2, 3, 4)
    inp = tc.Input((2, 3, 4))
    f = L.Flatten()(inp)
    d = L.Dense(5, activation="tanh", name="fc")
    y = d(f)
    r = L.Reshape((-1, 4))(inp)
    relu6 = L.ReLU(max_value=0.5)(f)
    leaky = L.ReLU(negative_slope=0.1)(f)
    soft = L.Softmax()(y)
    scaled = L.Rescale(0.2, offset=1.0)(f)
    m = tc.Model(inp, [y, r, relu6, leaky, soft, scaled])
    ys, rs, r6, lk, sm, sc = (t.numpy() for t in m(x))
    flat = x.reshape(3, -1)
    dense = np.tanh(flat @ d.kernel.numpy().T + d.bias.numpy())
    np.testing.assert_allclose(ys, dense, rtol=1e-5, atol=1e-6)
    assert rs.shape == (3, 6, 4) and np.array_equal(rs, x.reshape(3, 6, 4))
    np.testing.assert_allclose(r6, np.clip(flat, 0, 0.5), atol=1e-7)
    np.testing.assert_allclose(lk, np.where(flat > 0, flat, 0.1 * flat), rtol=1e-6)
    e = np.exp(dense - dense.max(1, keepdims=True))
    np.testing.assert_allclose(sm, e / e.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(sc, flat * 0.2 + 1.0, rtol=1e-6)
    assert d.macs((None, 24), (None, 5)) == 120


@needs_torch
def test_lrn_and_zero_padding_and_global_pool():
    x = rand(2, 6, 4, 5)
    _, y = run(L.LocalResponseNormalization(5, 1e-2, 0.75, 2.0), x)
    ref = TF.local_response_norm(torch.tensor(x), 5, 1e-2, 0.75, 2.0)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    shape, y = run(L.ZeroPadding2D(((1, 2), (0, 3))), x)
    assert shape == (None, 6, 7, 8)
    np.testing.assert_array_equal(y.numpy(), np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 3))))
    shape, y = run(L.GlobalAveragePooling2D(keepdims=True), x)
    assert shape == (None, 6, 1, 1)
    np.testing.assert_allclose(y.numpy(), x.mean(axis=(2, 3), keepdims=True), rtol=1e-5)


def test_merge_layers_numerics():
    a, b, c = rand(2, 3, 4, 4), rand(2, 3, 4, 4, seed=1), rand(2, 2, 4, 4, seed=2)
    _, y = run(L.Add(), a, b, a)
    np.testing.assert_allclose(y.numpy(), 2 * a + b, rtol=1e-6)
    _, y = run(L.Multiply(), a, b)
    np.testing.assert_allclose(y.numpy(), a * b, rtol=1e-6)
    shape, y = run(L.Concatenate(), a, c)
    assert shape == (None, 5, 4, 4)
    np.testing.assert_array_equal(y.numpy(), np.concatenate([a, c], 1))
    shape, y = run(L.Concatenate(axis=-1), a, b)
    assert shape == (None, 3, 4, 8)


def test_conv_gradcheck_through_asymmetric_same_padding():
    x = tc.tensor(rand(1, 2, 5, 5, dtype=np.float64), requires_grad=True)
    conv = L.Conv2D(2, 3, strides=2, padding="same", name="c")
    conv(tc.Input((2, 6, 6), dtype="float64"))  # (0, 1) padding at 6, (1, 1) at 5
    gradcheck(lambda t, k, b: conv(t), [x, conv.kernel, conv.bias])
    x6 = tc.tensor(rand(1, 2, 6, 6, dtype=np.float64), requires_grad=True)
    gradcheck(lambda t: conv(t), [x6])


def test_the_default_concatenate_axis_on_channels_last_maps_is_said_to_be_height():
    """Concatenate's default axis 1 is NCHW's channels; on maps from channels-last layers it
    is their height, which Keras code (default -1) never means: a note, at the calling line.
    An explicit axis, or NCHW maps, give none."""
    import warnings

    clear_session()
    x = tc.Input((8, 8, 3))
    a = L.Conv2D(4, 1, data_format="channels_last", name="left")(x)
    b = L.ReLU()(L.Conv2D(4, 3, padding="same", data_format="channels_last")(x))
    with pytest.warns(UserWarning) as caught:
        joined = L.Concatenate(name="cat")([a, b])
    assert joined.shape == (None, 16, 8, 4)
    assert str(caught[0].message) == (
        'Concatenate layer "cat": joins along axis 1, the height of these channels-last maps '
        '(from "left", data_format="channels_last"); give axis=-1 to join their channels '
        "(Keras' default), or axis=1 to join along height without this note"
    )
    assert caught[0].filename == __file__
    y = tc.Input((3, 8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert L.Concatenate(axis=-1)([a, b]).shape == (None, 8, 8, 8)
        assert L.Concatenate(axis=1)([a, b]).shape == (None, 16, 8, 4)
        assert L.Concatenate()([L.Conv2D(4, 1)(y), L.Conv2D(2, 1)(y)]).shape == (None, 6, 8, 8)
