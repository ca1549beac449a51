"""``Model.to("cuda")``, ``fit``/``evaluate``/``predict`` and ``tinycnn train --device cuda`` on
the device (the simulator without a GPU): the same numbers as the same run on "cpu"."""

from __future__ import annotations

import json

import numpy as np

import tinycnn as tc
from tinycnn import layers as L
from tinycnn.cli import main
from tinycnn.graph import clear_session
from tinycnn.train import metrics

RNG = np.random.default_rng(11)


def small_cnn(input_shape=(1, 8, 8), num_classes=3):
    clear_session()
    x = inp = tc.Input(input_shape)
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Activation("relu", name="relu")(x)
    x = L.MaxPool2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(num_classes, activation="softmax", name="head")(x)
    return tc.Model(inp, out, name="small_cnn")


def pooled_mlp(input_shape=(1, 28, 28), num_classes=10):
    """An MNIST model small enough for the simulator: 4x4 averages into one Dense layer."""
    clear_session()
    return tc.Sequential(
        [tc.Input(input_shape), L.AveragePooling2D(7), L.Flatten(),
         L.Dense(num_classes, activation="softmax")],
        name="pooled_mlp",
    )  # fmt: skip


def _run(device, state, x, y):
    model = small_cnn()
    model.load_state_dict(state)
    model.to(device)
    assert all(p.device == device for p in model.parameters())
    model.compile(optimizer=tc.optim.Adam(0.01), loss="categorical_crossentropy",
                  metrics=["accuracy", metrics.TopKAccuracy(2)])  # fmt: skip
    history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, seed=3, verbose=0)
    assert all(p.device == device for p in model.parameters())
    scores = model.evaluate(x, y, batch_size=8, verbose=0)
    probabilities = model.predict(x, batch_size=8)
    return history.history, scores, probabilities, model.state_dict()


def test_fit_evaluate_predict_on_cuda_match_cpu():
    x = RNG.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 16)]
    state = small_cnn().state_dict()
    cpu, cuda = _run("cpu", state, x, y), _run("cuda", state, x, y)
    assert cpu[0].keys() == cuda[0].keys()
    for key in cpu[0]:
        np.testing.assert_allclose(cuda[0][key], cpu[0][key], rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(cuda[1], cpu[1], rtol=1e-4)
    assert isinstance(cuda[2], np.ndarray) and cuda[2].shape == (16, 3)
    np.testing.assert_allclose(cuda[2], cpu[2], rtol=1e-4, atol=1e-6)
    for key in cpu[3]:  # the weights after training, BN moving statistics included
        np.testing.assert_allclose(cuda[3][key], cpu[3][key], rtol=1e-3, atol=1e-5, err_msg=key)
    assert cpu[0]["loss"][-1] < cpu[0]["loss"][0]


def test_metrics_reduce_device_tensors():
    out = RNG.standard_normal((16, 5))
    labels = RNG.integers(0, 5, 16)
    onehot = np.eye(5)[labels]
    cases = [
        (metrics.SparseCategoricalAccuracy, labels),
        (metrics.CategoricalAccuracy, onehot),
        (lambda: metrics.TopKAccuracy(2), labels),
        (lambda: metrics.TopKAccuracy(3), onehot),
        (metrics.BinaryAccuracy, (onehot > 0.5).astype(np.float64)),
    ]
    for make, target in cases:
        on_host, on_device = make(), make()
        on_host.update(out, target, True)
        on_device.update(tc.tensor(out, device="cuda"), tc.tensor(target, device="cuda"), True)
        assert 0 < on_host.result() < 1
        assert on_device.result() == on_host.result(), on_host.name


def test_cli_trains_on_cuda(tmp_path, capsys):
    out = tmp_path / "run"
    model = "tests.cuda.test_model_fit:pooled_mlp"
    argv = ["train", model, "--device", "cuda", "--epochs", "1", "--limit", "16",
            "--batch-size", "8", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "test accuracy: " in capsys.readouterr().out
    assert json.loads((out / "history.json").read_text())["history"]["loss"]
    argv = ["evaluate", model, "--device", "cuda", "--weights", str(out / "weights.npz"),
            "--limit", "16"]  # fmt: skip
    assert main(argv) == 0
    assert "accuracy " in capsys.readouterr().out


def test_frozen_and_weightless_models_run_where_they_were_moved():
    """The device is the weights' (trainable or not); a model without weights keeps the one
    given to ``to``.  Inputs of predict/evaluate/feature_maps go there."""
    x = RNG.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 8)]
    state = small_cnn().state_dict()
    results = {}
    for device in ("cpu", "cuda"):
        model = small_cnn()
        model.load_state_dict(state)
        model.trainable = False
        assert model.parameters() == []
        model.to(device)
        assert model.device == device
        model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
        results[device] = (model.predict(x, batch_size=4), model.evaluate(x, y, verbose=0),
                           model.feature_maps(x, ["pool"])["pool"])  # fmt: skip
    for got, want in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    clear_session()
    pooled = tc.Sequential([tc.Input((1, 8, 8)), L.AveragePooling2D(2), L.Flatten()])
    assert pooled.weights == [] and pooled.device == "cpu"
    assert pooled.to("cuda").device == "cuda"
    out = pooled(tc.tensor(x, device=pooled.device))
    assert out.device == "cuda"
    want = x.reshape(8, 1, 4, 2, 4, 2).mean((3, 5)).reshape(8, -1)
    np.testing.assert_allclose(pooled.predict(x), want, rtol=1e-5, atol=1e-7)


def test_class_weight_trains_the_same_on_both_devices():
    x = RNG.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    state = small_cnn().state_dict()
    runs = {}
    for device in ("cpu", "cuda"):
        model = small_cnn()
        model.load_state_dict(state)
        model.to(device)
        model.compile(optimizer=tc.optim.SGD(None, lr=0.1), loss="sparse_categorical_crossentropy")
        h = model.fit(x, y, epochs=1, batch_size=4, seed=0, verbose=0, class_weight="balanced")
        runs[device] = (h.history["loss"], model.state_dict())
    np.testing.assert_allclose(runs["cuda"][0], runs["cpu"][0], rtol=1e-5)
    for key in runs["cpu"][1]:
        np.testing.assert_allclose(runs["cuda"][1][key], runs["cpu"][1][key], rtol=1e-4, atol=1e-6)
