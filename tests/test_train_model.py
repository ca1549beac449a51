"""Training through the real DSL: ``tc.Sequential``/``tc.Model`` methods delegate to
tinycnn.train; the output softmax is fused whatever layer applies it; weights round-trip."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers as L
from tinycnn import optim
from tinycnn.io import CheckpointError
from tinycnn.train.loop import _fusable_layer

from .test_train import blobs


def mlp(head="dense", seed=0, hidden=16, dropout=0.2):
    tc.manual_seed(seed)
    x = inp = tc.Input((2,))
    x = L.Dense(hidden, activation="tanh", name="fc1")(x)
    x = L.Dropout(dropout, name="drop")(x)
    if head == "dense":
        out = L.Dense(3, activation="softmax", name="predictions")(x)
    elif head == "activation":
        out = L.Activation("softmax", name="probs")(L.Dense(3, name="logits")(x))
    else:
        out = L.Softmax(name="probs")(L.Dense(3, name="logits")(x))
    return tc.Model(inp, out, name=f"mlp_{head}")


@pytest.mark.parametrize("head", ["dense", "activation", "softmax"])
def test_model_methods_train_and_fuse_the_softmax(head):
    x, y = blobs(300, one_hot=True)
    model = mlp(head)
    assert _fusable_layer(model, "softmax") is not None
    model.compile(optimizer=optim.Adam(0.02), loss="categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=4, batch_size=20, validation_split=0.2, verbose=0, seed=1)
    assert h.history["val_accuracy"][-1] > 0.9
    loss, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x, batch_size=64)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)  # softmax kept in predict
    keras = -(y * np.log(np.clip(p, 1e-7, 1 - 1e-7))).sum(-1).mean()
    assert loss == pytest.approx(keras, rel=1e-4)
    assert acc == pytest.approx((p.argmax(1) == y.argmax(1)).mean())


def test_a_frozen_model_compiles_evaluates_and_refuses_to_fit():
    x, y = blobs(60, one_hot=True)
    model = mlp()
    before = model.predict(x)
    model.trainable = False
    assert model.parameters() == [] and model.device == "cpu"
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, verbose=0)
    assert 0 < acc < 1 and loss > 0
    np.testing.assert_array_equal(model.predict(x), before)
    with pytest.raises(ValueError, match=r'model "mlp_dense" has no trainable weights.*compile'):
        model.fit(x, y, verbose=0)
    model.trainable = True  # unfrozen and compiled again, it trains
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(model.predict(x), before)


def test_sequential_and_seed_repeatability():
    x, y = blobs(200)

    def run():
        tc.manual_seed(0)
        model = tc.Sequential(
            [
                tc.Input((2,)),
                L.Dense(8, activation="tanh"),
                L.Dropout(0.3),
                L.Dense(3, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=4)
        return [v.copy() for v in model.state_dict().values()]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_wrong_input_shape_for_the_model():
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = blobs(20)
    with pytest.raises(ValueError, match=r"the model takes samples of shape \(2,\), x has \(3,\)"):
        model.fit(np.ones((20, 3), np.float32), y, verbose=0)


def test_save_and_load_weights_through_the_model(tmp_path):
    a, b = mlp(seed=0), mlp(seed=1)
    a.save_weights(tmp_path / "w.npz")
    b.load_weights(tmp_path / "w.npz")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
    wider = mlp(hidden=32)
    with pytest.raises(CheckpointError, match=r"fc1/kernel: shape \(16, 2\) in the file, \(32, 2"):
        wider.load_weights(tmp_path / "w.npz")
    other = tc.Sequential([tc.Input((5,)), L.Dense(4, name="a"), L.Dense(2, name="b")], name="x")
    with pytest.raises(CheckpointError, match="another architecture.*model 'mlp_dense'"):
        other.load_weights(tmp_path / "w.npz")


def test_lenet5_on_mnist_resumes_exactly(tmp_path):
    zoo = pytest.importorskip("zoo")
    x, y = tc.datasets.load_mnist("train", pad_to_32=True, one_hot=True, limit=600)

    def build():
        tc.graph.clear_session()
        model = zoo.lenet5()
        model.compile(
            optimizer=optim.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    full = build()
    ckpt = tc.callbacks.ModelCheckpoint(tmp_path / "e{epoch}.npz")
    shift = tc.train.augment.RandomTranslation(2)
    h = full.fit(
        x,
        y,
        epochs=3,
        batch_size=100,
        validation_split=0.2,
        verbose=0,
        seed=5,
        callbacks=[ckpt],
        augment=shift,
    )
    assert h.history["accuracy"][-1] > h.history["accuracy"][0]
    resumed = build()
    meta = tc.io.load_checkpoint(tmp_path / "e1.npz", resumed, resumed.optimizer)
    resumed.fit(
        x,
        y,
        epochs=3,
        batch_size=100,
        validation_split=0.2,
        verbose=0,
        seed=5,
        initial_epoch=meta["epoch"],
        augment=shift,
    )
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    p = resumed.predict(x[:10])
    assert p.shape == (10, 10)


def test_a_model_with_several_outputs_predicts_a_list_and_refuses_to_fit():
    """As Keras: predict returns one array per output; fit and evaluate, which need a loss
    per output, say that they do not support it (not an error from inside the loop)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4)).astype(np.float32)
    inp = tc.Input((4,))
    hidden = L.Dense(5, activation="relu")(inp)
    model = tc.Model(inp, [L.Dense(3)(hidden), L.Dense(1)(hidden)])
    got = model.predict(x, batch_size=3)
    whole = model(tc.tensor(x))
    assert isinstance(got, list) and [g.shape for g in got] == [(7, 3), (7, 1)]
    for g, w in zip(got, whole):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-6)
    model.compile(optimizer="adam", loss="mse")
    for run in (model.fit, model.evaluate):
        with pytest.raises(NotImplementedError, match=r"several outputs \(2: \(None, 3\), "
                           r"\(None, 1\)\) need a loss and a target per output"):  # fmt: skip
            run(x, np.zeros((7, 3), np.float32))


def test_a_classifier_ending_in_a_map_is_told_to_flatten_and_nan_input_names_the_call():
    """A Dense straight after a convolution reads only the map's last axis: the targets do not
    fit, and the message says how to end the model.  Bad input to predict says predict."""
    inp = tc.Input((1, 8, 8))
    model = tc.Model(inp, L.Dense(10, activation="softmax")(L.Conv2D(2, 3)(inp)))
    x = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    hint = (
        r"the model outputs \(2, 6, 10\) \(a map, not one vector per sample: a Dense on a map "
        r"reads only its last axis\); end the model with Flatten\(\) or "
        r"GlobalAveragePooling2D\(\) before the last Dense"
    )
    for loss, y in (
        ("categorical_crossentropy", np.eye(10)[[1, 2, 3, 4]]),
        ("sparse_categorical_crossentropy", np.array([1, 2, 3, 4])),
    ):
        model.compile(optimizer="adam", loss=loss)
        with pytest.raises(ValueError, match=rf"{loss}: targets have shape .* per sample, {hint}"):
            model.fit(x, y, verbose=0)
    x[2, 0, 1, 1] = np.nan
    nan = r"predict: x contains 1 NaN/Inf values in 1 samples \(first: sample 2\); clean or drop"
    with pytest.raises(ValueError, match=nan + " them before calling predict$"):
        model.predict(x)
