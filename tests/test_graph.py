"""The graph DSL: Input/Model/Sequential, blocks and names, branches, residuals, shared layers,
nested models, several outputs, and the model <-> training interface."""

import networkx as nx
import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers as L
from tinycnn.graph import clear_session


@pytest.fixture(autouse=True)
def _fresh_names():
    clear_session()
    yield
    clear_session()


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_input_and_symbolic_shapes():
    x = tc.Input((3, 8, 8))
    assert x.shape == (None, 3, 8, 8) and x.dtype == np.float32
    y = L.Conv2D(4, 3, name="c")(x)
    assert y.shape == (None, 4, 6, 6)
    assert "c" in repr(y)
    with pytest.raises(ValueError, match="without the batch"):
        tc.Input((3, 0, 8))
    with pytest.raises(TypeError, match="float32 or float64"):
        tc.Input((3,), dtype=np.int32)


def test_auto_names_are_keras_style_and_counted_per_block():
    a, b = L.Conv2D(1, 1), L.Conv2D(1, 1)
    assert (a.name, b.name) == ("conv2d", "conv2d_1")
    assert L.BatchNormalization().name == "batch_normalization"
    assert L.MaxPool2D().name == "max_pool2d"
    with tc.block("inception_3a"):
        with tc.block("branch2"):
            c = L.Conv2D(1, 1, name="conv3x3")
            d = L.Conv2D(1, 1)
        e = L.Conv2D(1, 1)
    assert c.name == "inception_3a/branch2/conv3x3"
    assert c.block == ("inception_3a", "branch2")
    assert d.name == "inception_3a/branch2/conv2d"
    assert e.name == "inception_3a/conv2d"
    named = L.Conv2D(1, 1, name="conv2d_2")
    assert named.name == "conv2d_2"
    assert L.Conv2D(1, 1).name == "conv2d_3"  # auto names skip names already taken
    with tc.block("a/b"):
        assert tc.graph.current_block() == ("a", "b")
    assert tc.graph.current_block() == ()
    with pytest.raises(ValueError, match="block name"):
        tc.block("bad name")
    with pytest.raises(ValueError, match="cannot contain '/'"):
        L.Conv2D(1, 1, name="a/b")


def test_block_as_decorator_and_nodes_record_block():
    @tc.block("stem")
    def stem(x):
        return L.Conv2D(2, 3, padding="same", name="conv")(x)

    inp = tc.Input((1, 5, 5))
    out = stem(inp)
    m = tc.Model(inp, out)
    blocks = {d["name"]: d["block"] for _, d in m.graph.nodes(data=True)}
    assert blocks == {"input": (), "stem/conv": ("stem",)}


def _inception(x):
    """An Inception-style module: four branches joined on channels."""
    with tc.block("inception"):
        b1 = L.Conv2D(4, 1, name="b1")(x)
        b2 = L.Conv2D(3, 1, activation="relu", name="b2_reduce")(x)
        b2 = L.Conv2D(5, 3, padding="same", name="b2")(b2)
        b3 = L.Conv2D(2, 5, padding=2, name="b3")(x)
        b4 = L.MaxPool2D(3, strides=1, padding="same", name="pool")(x)
        return L.Concatenate(name="concat")([b1, b2, b3, b4])


def test_inception_branch_concat_graph_and_run():
    inp = tc.Input((3, 8, 8))
    out = _inception(inp)
    assert out.shape == (None, 4 + 5 + 2 + 3, 8, 8)
    m = tc.Model(inp, out, name="inc")
    g = m.graph
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    assert sorted(g.nodes) == list(range(7))  # integer ids, never names
    names = nx.get_node_attributes(g, "name")
    concat = next(n for n, v in names.items() if v == "inception/concat")
    assert sorted(names[p] for p in g.predecessors(concat)) == [
        "inception/b1",
        "inception/b2",
        "inception/b3",
        "inception/pool",
    ]
    assert g.nodes[concat]["input_shapes"][0] == (None, 4, 8, 8)
    assert g.nodes[concat]["output_shapes"] == [(None, 14, 8, 8)]
    assert g.nodes[1]["params"] == 3 * 4 + 4 and g.nodes[1]["macs"] == 8 * 8 * 4 * 3
    assert list(nx.topological_sort(g))[0] == 0


def test_inception_runs_on_real_tensors():
    inp = tc.Input((3, 8, 8))
    m = tc.Model(inp, _inception(inp))
    x = rand(2, 3, 8, 8)
    y = m(x)
    assert y.shape == (2, 14, 8, 8)
    # the b1 branch is a 1x1 conv: check its slice of the output against NumPy
    b1 = m.get_layer("inception/b1")
    ref = np.einsum("oc,nchw->nohw", b1.kernel.numpy()[:, :, 0, 0], x)
    ref += b1.bias.numpy()[None, :, None, None]
    np.testing.assert_allclose(y.numpy()[:, :4], ref, rtol=1e-5, atol=1e-5)


def test_residual_add_and_gradients():
    inp = tc.Input((4, 6, 6))
    x = L.Conv2D(4, 3, padding="same", name="c1")(inp)
    x = L.Activation("relu")(x)
    x = L.Conv2D(4, 3, padding="same", name="c2")(x)
    out = L.Add(name="add")([x, inp])
    m = tc.Model(inp, out)
    xv = tc.tensor(rand(2, 4, 6, 6), requires_grad=True)
    y = m(xv)
    # the identity shortcut: d(sum y)/dx = 1 + the conv path's gradient
    y.sum().backward()
    assert xv.grad is not None and xv.grad.shape == (2, 4, 6, 6)
    with tc.no_grad():
        y2 = m(xv)
    np.testing.assert_allclose(y2.numpy(), y.numpy())
    assert not y2.requires_grad


def test_symbolic_arithmetic_builds_layers():
    inp = tc.Input((2, 4, 4))
    y = L.Conv2D(2, 1, name="c")(inp)
    s = y + inp
    t = 0.5 * s
    assert type(s.node.layer).__name__ == "Add"
    assert type(t.node.layer).__name__ == "Rescale"
    m = tc.Model(inp, t)
    x = rand(1, 2, 4, 4)
    conv = m.get_layer("c")
    c = np.einsum("oc,nchw->nohw", conv.kernel.numpy()[:, :, 0, 0], x)
    c += conv.bias.numpy()[None, :, None, None]
    np.testing.assert_allclose(m(x).numpy(), 0.5 * (c + x), rtol=1e-5, atol=1e-6)


def test_a_layer_shared_by_two_models_is_numbered_by_its_calls_in_each():
    """The second model calls ``shared`` once: there it is "shared" with its weights counted,
    not "shared[1]" after the first model's call; the first model's lines do not change."""
    shared = L.Dense(3, name="shared")
    a, b = tc.Input((3,), name="in_a"), tc.Input((3,), name="in_b")
    m1 = tc.Model(a, shared(a))
    m2 = tc.Model(b, L.Dense(2, name="head")(shared(shared(b))))
    names = [[d["name"] for _, d in m.graph.nodes(data=True)] for m in (m1, m2)]
    assert names == [["in_a", "shared"], ["in_b", "shared", "shared[1]", "head"]]
    assert [d["params"] for _, d in m2.graph.nodes(data=True)] == [0, 12, 0, 8]
    lines = m2.summary(return_string=True).splitlines()
    assert lines[5].split() == ["shared", "(Dense)", "(None,", "3)", "12", "9"]
    assert lines[6].split()[:5] == ["shared[1]", "(Dense)", "(None,", "3)", "shared"]


def test_shared_layer_shares_weights_and_accumulates_gradient():
    a, b = tc.Input((5,), name="a"), tc.Input((5,), name="b")
    shared = L.Dense(3, name="shared")
    ya, yb = shared(a), shared(b)
    out = L.Add()([ya, yb])
    m = tc.Model([a, b], out)
    assert len(m.graph) == 5 and [lyr.name for lyr in m.layers].count("shared") == 1
    assert len(m.parameters()) == 2  # kernel and bias once
    assert m.count_params() == 5 * 3 + 3
    nodes = [d for _, d in m.graph.nodes(data=True) if d["layer"] is shared]
    assert [d["params"] for d in nodes] == [18, 0] and all(d["shared"] for d in nodes)
    assert nodes[1]["name"] == "shared[1]"
    xa, xb = rand(2, 5), rand(2, 5, seed=1)
    y = m([xa, xb])
    w, bias = shared.kernel.numpy(), shared.bias.numpy()
    np.testing.assert_allclose(y.numpy(), xa @ w.T + xb @ w.T + 2 * bias, rtol=1e-5, atol=1e-6)
    y.sum().backward()
    # d/dW sum(x_a W^T + x_b W^T) = sum over both calls
    np.testing.assert_allclose(
        shared.kernel.grad.numpy(), np.tile((xa + xb).sum(0), (3, 1)), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(shared.bias.grad.numpy(), np.full(3, 4.0), rtol=1e-6)


def test_shared_layer_rejects_other_input_size():
    d = L.Dense(3, name="d")
    d(tc.Input((5,)))
    with pytest.raises(ValueError, match=r'Dense layer "d": was built for 5 input features.*\(7'):
        d(tc.Input((7,)))


def test_nested_model_as_a_layer():
    inner_in = tc.Input((2, 6, 6))
    h = L.Conv2D(3, 3, padding="same", name="conv")(inner_in)
    inner = tc.Model(inner_in, L.Activation("relu", name="relu")(h), name="encoder")
    inp = tc.Input((2, 6, 6))
    z = inner(inp)
    assert z.shape == (None, 3, 6, 6)
    out = L.Dense(1, name="head")(L.Flatten(name="flat")(z))
    m = tc.Model(inp, out, name="outer")
    assert [lyr.name for lyr in m.layers] == ["input_1", "encoder", "flat", "head"]
    assert list(m.state_dict()) == [
        "encoder/conv/kernel",
        "encoder/conv/bias",
        "head/kernel",
        "head/bias",
    ]
    assert m.count_params() == inner.count_params() + 3 * 36 + 1
    x = rand(2, 2, 6, 6)
    y = m(x)
    expect = inner(x).numpy().reshape(2, -1) @ m.get_layer("head").kernel.numpy().T
    np.testing.assert_allclose(
        y.numpy(), expect + m.get_layer("head").bias.numpy(), rtol=1e-5, atol=1e-5
    )
    y.sum().backward()
    assert inner.get_layer("conv").kernel.grad is not None
    # the nested model applies its layers' shape rules to a new input size
    assert inner(tc.Input((2, 10, 10))).shape == (None, 3, 10, 10)
    with pytest.raises(ValueError, match="encoder"):
        inner(tc.Input((5, 6, 6)))


def test_multiple_outputs_and_inputs():
    img, meta = tc.Input((1, 4, 4), name="img"), tc.Input((3,), name="meta")
    f = L.Flatten()(L.Conv2D(2, 3, name="conv")(img))
    joined = L.Concatenate(axis=1)([f, meta])
    cls = L.Dense(4, activation="softmax", name="cls")(joined)
    reg = L.Dense(1, name="reg")(joined)
    m = tc.Model([img, meta], [cls, reg])
    assert m.input_shape == [(None, 1, 4, 4), (None, 3)]
    assert m.output_shape == [(None, 4), (None, 1)]
    outs = m([rand(2, 1, 4, 4), rand(2, 3)])
    assert isinstance(outs, list) and [o.shape for o in outs] == [(2, 4), (2, 1)]
    np.testing.assert_allclose(outs[0].numpy().sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="expects a list of 2"):
        m(rand(2, 1, 4, 4))


def test_model_input_checks():
    m = tc.Sequential([tc.Input((3,)), L.Dense(2)])
    with pytest.raises(ValueError, match=r"expects shape \(None, 3\)"):
        m(rand(4, 5))
    with pytest.raises(TypeError, match="float32"):
        m(tc.tensor(rand(4, 3).astype(np.float64)))
    assert m(rand(4, 3).astype(np.float64)).dtype == np.float32  # NumPy input is cast
    assert m([rand(4, 3)]).shape == (4, 2)  # [x] for a one-input model, as Keras
    assert m(rand(4, 3).tolist()).shape == (4, 2)  # nested lists are the data
    with pytest.raises(ValueError, match="expects one input, got a list of 2"):
        m([rand(4, 3), rand(4, 3)])


def test_model_input_shape_errors_say_what_is_likely_wrong():
    inp = tc.Input((1, 8, 8))
    m = tc.Model(inp, L.Flatten()(L.Conv2D(2, 3)(inp)), name="net")
    cases = [
        ((1, 8, 8), "that is one sample without its batch axis: pass x[None]"),
        ((2, 8, 8, 1), "its channels are last but the model takes them first: pass "
         "x.transpose(0, 3, 1, 2) (a NumPy array; x.permute(0, 3, 1, 2) for a Tensor)"),
        ((2, 1, 9, 8), "the image size differs: resize or pad the images, or build the model "
         "for theirs"),
    ]  # fmt: skip
    for shape, hint in cases:
        with pytest.raises(ValueError) as info:
            m(np.zeros(shape, np.float32))
        assert f"(any batch size), got {shape}; {hint}" in str(info.value)
    m.compile(optimizer="adam", loss="mse")  # fit/evaluate/predict give the same hints
    with pytest.raises(ValueError, match="channels are last but the model takes them first"):
        m.predict(np.zeros((2, 8, 8, 1), np.float32))
    last = tc.Input((8, 8, 1))
    m2 = tc.Model(last, L.Conv2D(2, 3, data_format="channels_last")(last))
    with pytest.raises(ValueError, match="channels are first but the model takes them last"):
        m2(np.zeros((2, 1, 8, 8), np.float32))


def test_model_build_errors():
    a, b = tc.Input((3,)), tc.Input((3,))
    out = L.Add()([a, b])
    with pytest.raises(ValueError, match="not in this model's inputs"):
        tc.Model(a, out)
    with pytest.raises(TypeError, match="symbolic tensors"):
        tc.Model(a, np.zeros(3))
    with pytest.raises(ValueError, match="not made by tc.Input"):
        tc.Model(out, out)
    with pytest.raises(TypeError, match="mix symbolic"):
        L.Add()([a, tc.tensor(rand(1, 3))])
    x = tc.Input((3,))
    y = L.Dense(2, name="same")(x)
    z = L.Dense(2, name="same")(y)
    with pytest.raises(ValueError, match='two different layers are named "same"'):
        tc.Model(x, z)


def test_sequential_forms():
    m1 = tc.Sequential([tc.Input((1, 6, 6)), L.Conv2D(2, 3), L.Flatten(), L.Dense(3)])
    assert m1.output_shape == (None, 3) and m1.name == "sequential"
    m2 = tc.Sequential(input_shape=(4,))
    m2.add(L.Dense(2))
    m2.add(L.Activation("tanh"))
    assert m2.output_shape == (None, 2) and len(m2.layers) == 3
    m3 = tc.Sequential([L.Dense(2), L.Activation("sigmoid")])  # built on first call
    y = m3(rand(5, 7))
    assert y.shape == (5, 2) and m3.input_shape == (None, 7)
    with pytest.raises(TypeError, match="several inputs"):
        tc.Sequential([L.Add()])
    lazy = tc.Sequential([L.Dense(2)])
    with pytest.raises(ValueError, match="not built yet"):
        lazy.graph  # noqa: B018
    # a Sequential inside a functional model
    inp = tc.Input((7,))
    out = tc.Sequential([L.Dense(3), L.Dense(1)])(inp)
    assert tc.Model(inp, out).output_shape == (None, 1)


def test_training_flag_reaches_dropout_and_batchnorm():
    inp = tc.Input((50,))
    m = tc.Model(inp, L.Dropout(0.5, seed=0)(inp))
    x = np.ones((4, 50), np.float32)
    np.testing.assert_array_equal(m(x).numpy(), x)  # inference: identity
    y = m(x, training=True).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < (y == 0).mean() < 1
    forced = tc.Model(inp, L.Dropout(0.5)(inp, training=True))  # Keras' MC-dropout idiom
    assert (forced(x).numpy() == 0).any()


def test_parameters_state_dict_and_load():
    inp = tc.Input((2, 5, 5))
    x = L.Conv2D(3, 3, name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    out = L.Dense(2, name="fc")(L.Flatten()(x))
    m = tc.Model(inp, out)
    keys = list(m.state_dict())
    assert keys == [
        "conv/kernel",
        "conv/bias",
        "bn/gamma",
        "bn/beta",
        "bn/moving_mean",
        "bn/moving_variance",
        "fc/kernel",
        "fc/bias",
    ]
    assert m.state_dict()["conv/kernel"].shape == (3, 2, 3, 3)  # PyTorch layout
    assert m.state_dict()["fc/kernel"].shape == (2, 27)  # (out, in)
    params = m.parameters()
    assert len(params) == 6 and all(p.requires_grad for p in params)
    assert m.count_params() == sum(p.size for p in params) + 2 * 3
    assert not m.get_layer("bn").moving_mean.requires_grad

    state = {k: v + 1 for k, v in m.state_dict().items()}
    kernel = m.get_layer("conv").kernel
    m.load_state_dict(state)
    assert m.get_layer("conv").kernel is kernel  # the optimizer's tensors keep their identity
    np.testing.assert_array_equal(kernel.numpy(), state["conv/kernel"])
    bad = dict(state)
    bad["conv/kernel"] = np.zeros((3, 2, 5, 5), np.float32)
    bad["extra/w"] = np.zeros(1)
    del bad["fc/bias"]
    with pytest.raises(ValueError) as err:
        m.load_state_dict(bad)
    msg = str(err.value)
    assert "missing weights: fc/bias" in msg and "unexpected weights: extra/w" in msg
    assert "conv/kernel: shape (3, 2, 5, 5)" in msg
    np.testing.assert_array_equal(kernel.numpy(), state["conv/kernel"])  # nothing changed
    wrong_dtype = dict(state, **{"fc/bias": state["fc/bias"].astype(np.float64)})
    with pytest.raises(ValueError, match="fc/bias: dtype float64"):
        m.load_state_dict(wrong_dtype)


def test_trainable_false_freezes():
    inp = tc.Input((3,))
    d = L.Dense(2, name="d")
    m = tc.Model(inp, L.Dense(1)(d(inp)))
    d.trainable = False
    assert len(m.parameters()) == 2 and not d.kernel.requires_grad
    m.trainable = False
    assert m.parameters() == []
    assert m.count_params() == 3 * 2 + 2 + 3


def test_regularization_losses():
    inp = tc.Input((3,))
    d = L.Dense(
        2,
        kernel_regularizer=tc.regularizers.l2(0.1),
        bias_regularizer="l1",
        activity_regularizer=tc.regularizers.L1(0.5),
        name="d",
    )
    m = tc.Model(inp, d(inp))
    x = rand(4, 3)
    y = m(x)
    assert len(m.losses) == 3
    w, b = d.kernel.numpy(), d.bias.numpy()
    np.testing.assert_allclose(m.losses[0].item(), 0.1 * (w**2).sum(), rtol=1e-5)
    np.testing.assert_allclose(m.losses[1].item(), 0.01 * np.abs(b).sum(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m.losses[2].item(), 0.5 * np.abs(y.numpy()).sum() / 4, rtol=1e-5)
    total = y.sum() + m.losses[0]
    total.backward()
    np.testing.assert_allclose(
        d.kernel.grad.numpy(), np.tile(x.sum(0), (2, 1)) + 0.2 * w, rtol=1e-5, atol=1e-5
    )
    m(x)
    assert len(m.losses) == 3  # one forward call's losses, not an accumulation
    with pytest.raises(ValueError, match='Dense layer "dense": kernel_regularizer'):
        L.Dense(2, kernel_regularizer="l3")


def test_constraints_apply_after_step():
    inp = tc.Input((4,))
    d = L.Dense(
        3, kernel_constraint=tc.constraints.MaxNorm(1.0), bias_constraint="non_neg", name="d"
    )
    m = tc.Model(inp, d(inp))
    d.set_weights([np.full((3, 4), 2.0, np.float32), np.array([-1, 0, 1], np.float32)])
    m.apply_constraints()
    np.testing.assert_allclose(np.linalg.norm(d.kernel.numpy(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(d.bias.numpy(), [0, 0, 1])
    np.testing.assert_allclose(
        tc.constraints.UnitNorm()(np.array([[3.0, 4.0]])), [[0.6, 0.8]], rtol=1e-5
    )
    with pytest.raises(ValueError, match="constraint"):
        L.Dense(2, kernel_constraint="max")


def test_model_to_device_and_get_layer():
    m = tc.Sequential([tc.Input((3,)), L.Dense(2, name="fc")])
    k = m.get_layer("fc").kernel
    assert m.to("cpu") is m and m.get_layer("fc").kernel is k
    assert m.get_layer(index=1).name == "fc"
    with pytest.raises(ValueError, match="did you mean fc"):
        m.get_layer("f")


def test_layer_called_eagerly():
    conv = L.Conv2D(2, 3, padding="same", name="eager")
    y = conv(rand(1, 3, 5, 5))
    assert y.shape == (1, 2, 5, 5) and conv.built and conv.kernel.shape == (2, 3, 3, 3)
    with pytest.raises(ValueError, match="eager"):
        conv(rand(1, 4, 5, 5))


def test_float64_model_end_to_end():
    inp = tc.Input((2, 5, 5), dtype="float64")
    x = L.Conv2D(2, 3, name="c")(inp)
    out = L.Dense(1)(L.Flatten()(x))
    m = tc.Model(inp, out)
    assert m.get_layer("c").kernel.dtype == np.float64
    y = m(rand(3, 2, 5, 5).astype(np.float64))
    assert y.dtype == np.float64
    y.sum().backward()


def test_training_methods_delegate(monkeypatch):
    import sys
    import types

    calls = []
    fake = types.ModuleType("tinycnn.train")
    for name in ("compile", "fit", "evaluate", "predict", "save_weights", "load_weights"):
        setattr(fake, name, lambda model, *a, _n=name, **k: calls.append((_n, model, a, k)))
    monkeypatch.setitem(sys.modules, "tinycnn.train", fake)
    m = tc.Sequential([tc.Input((3,)), L.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    m.fit(1, 2, epochs=3)
    m.evaluate(1, 2)
    m.predict(1)
    m.save_weights("p")
    m.load_weights("p")
    assert [c[0] for c in calls] == [
        "compile",
        "fit",
        "evaluate",
        "predict",
        "save_weights",
        "load_weights",
    ]
    assert all(c[1] is m for c in calls) and calls[1][3] == {"epochs": 3}


def test_activation_and_regularizer_registries():
    x = tc.tensor(np.array([-2.0, 0.5, 7.0], np.float32))
    np.testing.assert_allclose(tc.activations.get("relu6")(x).numpy(), [0, 0.5, 6])
    np.testing.assert_allclose(
        tc.activations.get("silu")(x).numpy(), x.numpy() / (1 + np.exp(-x.numpy())), rtol=1e-6
    )
    assert tc.activations.get(None)(x) is x
    with pytest.raises(ValueError, match="valid names: relu"):
        tc.activations.get("gelu_fast")
    with pytest.raises(ValueError, match=">= 0"):
        tc.regularizers.L2(-1)
    reg = tc.regularizers.l1_l2(0.5, 0.25)
    w = tc.tensor(np.array([-1.0, 2.0], np.float32))
    assert reg(w).item() == pytest.approx(0.5 * 3 + 0.25 * 5)


def test_shapes_only_builds_zero_weights_and_restores():
    from tinycnn.graph.layer import shapes_only

    clear_session()
    state = tc.random.get_state()
    with shapes_only():
        with shapes_only():
            pass
        inp = tc.Input((3, 8, 8))  # nested exit restores the outer "on", not "off"
        m = tc.Model(inp, L.Dense(4)(L.Flatten()(L.Conv2D(5, 3)(inp))))
        with pytest.raises(ValueError, match="unknown name 'nope'"):
            L.Dense(2, kernel_initializer="nope")
    assert tc.random.get_state() == state  # nothing was drawn
    assert m.count_params() == (3 * 9 + 1) * 5 + (5 * 36 + 1) * 4
    assert all(not w.numpy().any() for w in m.weights)
    drawn = L.Dense(4)(L.Flatten()(inp))  # outside again: initializers run
    assert drawn.node.layer.kernel.numpy().any()


def test_nested_model_macs_follow_the_input_size():
    a = tc.Input((3, 8, 8))
    inner = tc.Model(a, L.Conv2D(4, 3, name="c")(a), name="inner")
    b = tc.Input((3, 8, 8))
    y = inner(L.Conv2D(3, 1, name="p")(inner(b)))
    m = tc.Model(b, y)
    macs = {m.graph.nodes[n]["name"]: m.graph.nodes[n]["macs"] for n in m.graph}
    assert macs["inner"] == 6 * 6 * 4 * 3 * 3 * 3  # 3,888 on the 8×8 input
    assert macs["inner[1]"] == 4 * 4 * 4 * 3 * 3 * 3  # 1,728 on the 6×6 one, not 3,888
    assert inner.macs((None, 3, 10, 10), (None, 4, 8, 8)) == 8 * 8 * 4 * 27


def test_sequential_survives_a_failed_build_and_says_when_unbuilt():
    s = tc.Sequential([L.Dense(4, name="d1"), L.Reshape((2, 2), name="r")])
    for attr in ("input_shape", "output_shape"):
        with pytest.raises(ValueError, match=r'Sequential "sequential": not built yet'):
            getattr(s, attr)
    with pytest.raises(ValueError, match=r"not built yet"):
        s.count_params()
    with pytest.raises(ValueError, match=r'Reshape layer "r": cannot reshape input shape'):
        s(rand(2, 3, 5))  # the lazy build fails in its second layer...
    assert s([rand(2, 5)]).shape == (2, 2, 2)  # ...and a later call builds it
    assert [s.graph.nodes[n]["name"] for n in s.graph][1:] == ["d1", "r"]
    assert s.count_params() == 24
    only_input = tc.Sequential([tc.Input((5,))])
    np.testing.assert_array_equal(only_input(rand(2, 5)).numpy(), rand(2, 5))
    with pytest.raises(ValueError, match="has no layers yet"):
        only_input.summary()
    with pytest.raises(TypeError, match="layers must be a list of layers, got one Dense"):
        tc.Sequential(L.Dense(2))
    seq = tc.Sequential([tc.Input((3,)), L.Dense(2)])
    with pytest.raises(ValueError, match="expects a 4-d input"):
        seq.add(L.Conv2D(2, 3))
    assert len(seq._stack) == 1 and seq(rand(1, 3)).shape == (1, 2)


def test_inputs_of_one_call_need_one_batch_size():
    a, b = tc.Input((3,), name="a"), tc.Input((3,), name="b")
    m = tc.Model([a, b], L.Add(name="add")([a, b]))
    with pytest.raises(
        ValueError, match=r'Model "model": the inputs must have the same batch size, got "a" 2, '
    ):
        m([rand(2, 3), rand(3, 3)])
    with pytest.raises(
        ValueError,
        match=r'Add layer "add_1": inputs must have the same batch size: input 0 has \(2, 3\), ',
    ):
        L.Add(name="add_1")([rand(2, 3), rand(3, 3)])
    with pytest.raises(
        ValueError, match=r'Concatenate layer "cat": inputs must have the same batch'
    ):
        L.Concatenate(name="cat")([rand(2, 3), rand(3, 3)])


def test_odd_calls_are_refused_naming_the_layer():
    x = tc.Input((3, 4, 4))
    with pytest.raises(ValueError, match=r'Add layer "add": called on an empty list of inputs'):
        L.Add(name="add")([])
    with pytest.raises(ValueError, match=r'Rescale layer "rescale": scale must be a finite number'):
        np.ones(3) * x  # one error, not an object array of three layers
    assert (np.float32(2.0) * x).shape == (None, 3, 4, 4)
    m = tc.Model(x, L.Conv2D(2, 1, name="c")(x))
    with pytest.raises(ValueError, match=r"^tensor: cannot make an array of \[\[1, 2\], \[3\]\]"):
        m([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"^tensor: cannot make an array of 'abc'"):
        m("abc")
    with pytest.raises(ValueError, match=r"^tensor: cannot make an array of 'abc'"):
        m.get_layer("c")("abc")
    with pytest.raises(TypeError, match=r'InputLayer layer "i": dtype must be float32 or float64'):
        tc.Input((3,), dtype=np.float16, name="i")
    with pytest.raises(TypeError, match=r'InputLayer layer "j": dtype must be float32 or float64'):
        tc.Input((3,), dtype="no-such-type", name="j")


def test_get_layer_and_load_state_dict_refuse_bad_arguments():
    a = tc.Input((3,))
    m = tc.Model(a, L.Dense(2, name="d")(a))
    assert m.get_layer(index=-1).name == "d"
    with pytest.raises(ValueError, match=r'Model "model": no layer at index 5; it has 2 layers'):
        m.get_layer(index=5)
    with pytest.raises(TypeError, match=r"load_state_dict takes a dict of name -> array"):
        m.load_state_dict([np.zeros((2, 3)), np.zeros(2)])
