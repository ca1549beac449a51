"""fit / evaluate / predict on a stand-in model with the Model interface (Dense -> tanh ->
dropout -> Dense -> softmax), plus losses, metrics, data checks, progress, history, resume."""

from __future__ import annotations

import io as stdio
import json
from collections import OrderedDict

import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
from tinycnn import activations, optim, train
from tinycnn.train import callbacks, losses, metrics
from tinycnn.train.progress import resolve_verbose


class Head:
    """An output layer as the loop sees it: ``activation`` + ``activation_name``."""

    def __init__(self, activation):
        self.activation_name = activation
        self.activation = activations.get(activation)


class MLP:
    """A stand-in for tinycnn.Model: what fit/evaluate/predict/checkpoints use, nothing more."""

    def __init__(
        self, n_in=2, hidden=16, n_out=3, activation="softmax", dropout=0.0, seed=0, l2=0.0
    ):
        rng = np.random.default_rng(seed)
        self.name = "mlp"
        self.input_shape = (None, n_in)
        self.output_shape = (None, n_out)
        self.w = OrderedDict(
            w1=tc.init.glorot_uniform((hidden, n_in), rng=rng),
            b1=np.zeros(hidden, np.float32),
            w2=tc.init.glorot_uniform((n_out, hidden), rng=rng),
            b2=np.zeros(n_out, np.float32),
        )
        self.w = OrderedDict((k, tc.tensor(v, requires_grad=True)) for k, v in self.w.items())
        self.layers = [Head(activation)]
        self.dropout, self.l2 = dropout, l2
        self.losses = []
        self.calls = 0

    def __call__(self, x, training=False):
        self.calls += 1
        x = x if isinstance(x, tc.Tensor) else tc.tensor(np.asarray(x, np.float32))
        h = F.tanh(F.linear(x, self.w["w1"], self.w["b1"]))
        if training and self.dropout:
            h = F.dropout(h, self.dropout, True)
        out = self.layers[-1].activation(F.linear(h, self.w["w2"], self.w["b2"]))
        self.losses = [(self.w["w1"] * self.w["w1"]).sum() * self.l2] if self.l2 else []
        return out

    def parameters(self):
        return list(self.w.values())

    def state_dict(self):
        return OrderedDict((k, t.numpy().copy()) for k, t in self.w.items())

    def load_state_dict(self, state):
        for k, t in self.w.items():
            t.data = np.array(state[k], dtype=t.dtype)

    def apply_constraints(self):
        pass


def blobs(n=600, seed=0, one_hot=False, n_cls=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_cls, n)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])[:n_cls]
    x = (centers[y] + 0.6 * rng.standard_normal((n, 2))).astype(np.float32)
    return x, (np.eye(n_cls, dtype=np.float32)[y] if one_hot else y)


def compiled(loss="sparse_categorical_crossentropy", metrics_=("accuracy",), lr=0.05, **kw):
    model = MLP(**kw)
    train.compile(model, optimizer=optim.Adam(lr), loss=loss, metrics=list(metrics_))
    return model


def weights(model):
    return [v.copy() for v in model.state_dict().values()]


# ---------------------------------------------------------------------------------- fit
def test_fit_learns_and_records_history(capsys):
    x, y = blobs(one_hot=True)
    model = compiled("categorical_crossentropy")
    h = train.fit(model, x, y, epochs=5, batch_size=32, validation_split=0.2, verbose=2, seed=1)
    assert list(h.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(h.history["loss"]) == 5 and h.epoch == [0, 1, 2, 3, 4]
    assert h.params == {"epochs": 5, "steps": 15, "batch_size": 32, "samples": 480, "verbose": 2}
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.9 and h.history["val_accuracy"][-1] > 0.9
    assert model.history is h
    out = [line for line in capsys.readouterr().out.splitlines() if "compiling" not in line]
    assert len(out) == 5 and out[0].startswith("Epoch 1/5 - 15 steps - ")
    assert "ms/step" in out[0] and "samples/s" in out[0] and "val_accuracy: " in out[0]


def test_validation_split_takes_the_last_fraction_before_shuffling():
    x, y = blobs(200)
    model = compiled()
    h = train.fit(model, x, y, epochs=1, batch_size=16, validation_split=0.25, verbose=0, seed=0)
    assert h.params["samples"] == 150
    loss, acc = train.evaluate(model, x[150:], y[150:], verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(loss, rel=1e-6)
    assert h.history["val_accuracy"][0] == pytest.approx(acc)


def test_validation_data_and_evaluate_forms():
    x, y = blobs(300)
    model = compiled(metrics_=("accuracy", metrics.TopKAccuracy(2)))
    h = train.fit(model, x[:200], y[:200], validation_data=(x[200:], y[200:]), verbose=0, seed=0)
    assert "val_top_2_accuracy" in h.history
    d = train.evaluate(model, x[200:], y[200:], return_dict=True, verbose=0)
    assert set(d) == {"loss", "accuracy", "top_2_accuracy"}
    assert d["loss"] == pytest.approx(h.history["val_loss"][0], rel=1e-6)
    bare = compiled(metrics_=())
    assert isinstance(train.evaluate(bare, x, y, verbose=0), float)


def test_seeded_fit_repeats_exactly():
    x, y = blobs(256)
    runs = []
    for _ in range(2):
        model = compiled(dropout=0.3)
        train.fit(model, x, y, epochs=2, batch_size=32, verbose=0, seed=7)
        runs.append(weights(model))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seeded", [True, False])
def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path, seeded):
    x, y = blobs(256)
    seed = 3 if seeded else None

    def run(**kw):
        if not seeded:
            tc.manual_seed(11)
        model = compiled(dropout=0.3)
        cb = callbacks.ModelCheckpoint(tmp_path / "ep{epoch}.npz")
        train.fit(model, x, y, epochs=4, batch_size=32, verbose=0, seed=seed, callbacks=[cb], **kw)
        return model

    full = run()
    resumed = compiled(dropout=0.3, seed=99)  # different initial weights: all must come back
    tc.manual_seed(12345)  # and a different RNG state
    meta = tc.io.load_checkpoint(tmp_path / "ep2.npz", resumed, resumed.optimizer)
    assert meta["epoch"] == 2
    h = train.fit(
        resumed, x, y, epochs=4, batch_size=32, verbose=0, seed=seed, initial_epoch=meta["epoch"]
    )
    assert h.epoch == [2, 3]
    for a, b in zip(weights(full), weights(resumed)):
        np.testing.assert_array_equal(a, b)


def test_regularization_losses_are_added():
    x, y = blobs(64)
    plain, reg = compiled(metrics_=()), compiled(metrics_=(), l2=0.5)
    lp = train.evaluate(plain, x, y, verbose=0)
    lr_ = train.evaluate(reg, x, y, verbose=0)
    w1 = reg.w["w1"].numpy()
    assert lr_ == pytest.approx(lp + 0.5 * (w1 * w1).sum(), rel=1e-5)


def test_low_level_loop_still_works():
    x, y = blobs(64)
    model = MLP()
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = weights(model)
    loss = F.cross_entropy(model(tc.tensor(x)), tc.tensor(y))
    loss.backward()
    opt.step()
    assert not np.array_equal(before[0], weights(model)[0])


# ------------------------------------------------------------------------ losses & fusion
def test_softmax_output_is_fused_and_restored(monkeypatch):
    x, y = blobs(100)
    model = compiled()
    head = model.layers[-1]
    act = head.activation
    sums_to_one = []
    original = MLP.__call__

    def spy(self, xb, training=False):
        out = original(self, xb, training)
        sums_to_one.append(bool(np.allclose(out.numpy().sum(-1), 1.0, rtol=1e-4)))
        return out

    monkeypatch.setattr(MLP, "__call__", spy)
    train.fit(model, x, y, epochs=1, batch_size=50, validation_split=0.2, verbose=0)
    assert len(sums_to_one) == 3 and not any(sums_to_one)  # logits in training and validation
    assert head.activation is act  # restored
    p = train.predict(model, x, batch_size=30)
    assert p.shape == (100, 3) and all(sums_to_one[3:])  # predict keeps the softmax
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)


def test_fused_loss_equals_keras_formula_on_probabilities():
    x, y = blobs(100, one_hot=True)
    model = compiled("categorical_crossentropy", metrics_=())
    fused = train.evaluate(model, x, y, verbose=0)
    p = train.predict(model, x)
    keras = -(y * np.log(np.clip(p / p.sum(-1, keepdims=True), 1e-7, 1 - 1e-7))).sum(-1).mean()
    assert fused == pytest.approx(keras, rel=1e-5)
    # the unfused path (an output layer the loop does not recognise) gives Keras' value too
    model.layers[-1].activation_name = "custom"
    assert train.evaluate(model, x, y, verbose=0) == pytest.approx(keras, rel=1e-5)
    sparse = compiled(metrics_=())
    sparse.load_state_dict(model.state_dict())
    assert train.evaluate(sparse, x, y.argmax(1), verbose=0) == pytest.approx(keras, rel=1e-5)


def test_binary_crossentropy_with_sigmoid_and_mse():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    model = compiled("binary_crossentropy", n_out=1, activation="sigmoid")
    h = train.fit(model, x, y, epochs=8, batch_size=20, verbose=0, seed=0)
    assert h.history["accuracy"][-1] > 0.9
    p = train.predict(model, x)[:, 0].astype(np.float64)
    ref = -(y * np.log(np.clip(p, 1e-7, 1)) + (1 - y) * np.log(np.clip(1 - p, 1e-7, 1))).mean()
    assert train.evaluate(model, x, y, verbose=0)[0] == pytest.approx(ref, rel=1e-4)
    reg = compiled("mse", metrics_=(), n_out=1, activation=None)
    target = (x[:, :1] * 2).astype(np.float32)
    h = train.fit(reg, x, target, epochs=20, batch_size=20, verbose=0, seed=0)
    assert h.history["loss"][-1] < 0.2 * h.history["loss"][0]


def test_clip_log_gradient():
    p = tc.tensor(np.array([1e-9, 0.3, 1.0], np.float64), requires_grad=True)
    y = losses.clip_log(p)
    np.testing.assert_allclose(y.numpy(), np.log([1e-7, 0.3, 1 - 1e-7]))
    y.sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [0.0, 1 / 0.3, 0.0])


def test_metrics():
    out = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    labels = np.array([2, 0, 0])
    top1, top2 = metrics.TopKAccuracy(1), metrics.TopKAccuracy(2)
    for m in (top1, top2):
        m.update(out, labels, False)
    assert top1.result() == pytest.approx(1 / 3) and top2.result() == pytest.approx(2 / 3)
    cat = metrics.get("accuracy", "categorical_crossentropy", 2, 3)
    cat.update(out, np.eye(3)[labels], False)
    assert cat.name == "accuracy" and cat.result() == pytest.approx(1 / 3)
    assert isinstance(metrics.get("acc", "binary_crossentropy"), metrics.BinaryAccuracy)
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        metrics.get("f1", "mse")


# ---------------------------------------------------------------------------- data checks
@pytest.mark.parametrize(
    "mutate, loss, message",
    [
        (lambda x, y: (x[:-1], y), None, "x has 99 samples but y has 100"),
        (
            lambda x, y: (np.where(np.arange(100)[:, None] == 17, np.nan, x), y),
            None,
            r"x contains 2 NaN/Inf values in 1 samples \(first: sample 17\)",
        ),
        (
            lambda x, y: (x, np.where(np.arange(100) == 5, 3, y)),
            None,
            r"label y\[5\] = 3 is out of range for a model with 3 outputs \(valid: 0..2\)",
        ),
        (lambda x, y: (x, -y - 1), None, r"label y\[0\] = -\d is out of range"),
        (
            lambda x, y: (x[:, :1], y),
            None,
            r"the model takes samples of shape \(2,\), x has \(1,\)",
        ),
        (lambda x, y: (x, y + 0.5), None, r"label y\[0\] = .* is not an integer"),
        (
            lambda x, y: (x, np.eye(3)[y]),
            None,
            "one-hot rows\\? use loss='categorical_crossentropy'",
        ),
        (lambda x, y: (x, y), "categorical_crossentropy", "look like class indices"),
        (
            lambda x, y: (x, np.where(np.eye(3)[y] > 0, np.inf, 0.0)),
            "categorical_crossentropy",
            "y contains",
        ),
        (lambda x, y: (x, np.eye(3)[y] * 2), "categorical_crossentropy", "probabilities in"),
    ],
)
def test_bad_data_is_rejected_before_training(mutate, loss, message):
    x, y = blobs(100)
    model = compiled(loss or "sparse_categorical_crossentropy")
    before = weights(model)
    bx, by = mutate(x, y)
    with pytest.raises(ValueError, match=message):
        train.fit(model, bx, by, verbose=0)
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)


def test_misuse_errors():
    x, y = blobs(20)
    with pytest.raises(RuntimeError, match="compile the model first"):
        train.fit(MLP(), x, y)
    model = compiled()
    with pytest.raises(ValueError, match="validation_split must be in \\[0, 1\\)"):
        train.fit(model, x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        train.fit(model, x, y, batch_size=0, verbose=0)
    for bad in (0, -1, 1.5, True):  # was: range() errors, or an empty array for -1
        with pytest.raises(
            ValueError, match=f"predict: batch_size must be a positive int, got {bad}"
        ):
            train.predict(model, x, batch_size=bad)
        with pytest.raises(
            ValueError, match=f"evaluate: batch_size must be a positive int, got {bad}"
        ):
            train.evaluate(model, x, y, batch_size=bad, verbose=0)
    assert train.predict(model, x, batch_size=np.int64(7)).shape[0] == len(x)
    with pytest.raises(ValueError, match="epochs and initial_epoch must be ints >= 0, got -1"):
        train.fit(model, x, y, epochs=-1, verbose=0)  # was: silently no training
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        train.compile(MLP(), "adam", "hinge")
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'"):
        train.compile(MLP(), "adagrad", "mse")
    with pytest.raises(ValueError, match="one sample without its batch axis: pass x\\[None\\]"):
        train.predict(model, x[0])


def test_compile_optimizer_forms():
    model = MLP()
    train.compile(model, "adam", "mse")
    opt = model.optimizer
    assert isinstance(opt, optim.Adam) and opt.hyper["eps"] == 1e-7
    assert opt.params == model.parameters()
    train.compile(model, optim.SGD(model.parameters(), lr=0.3), "mse")
    assert model.optimizer.lr == 0.3


# ---------------------------------------------------------------------------- progress etc.
def test_progress_bar_and_compile_notice(monkeypatch):
    x, y = blobs(64)
    model = compiled()
    original = model.__call__
    slow = {"first": True}

    def call(xb, training=False):  # make the first step look like a kernel compilation
        if slow["first"]:
            slow["first"] = False
            import time

            time.sleep(0.4)
        return original(xb, training)

    monkeypatch.setattr(MLP, "__call__", lambda self, xb, training=False: call(xb, training))
    stream = stdio.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    h = train.fit(model, x, y, epochs=1, batch_size=8, verbose=1)
    text = stream.getvalue()
    assert "Epoch 1/1" in text and "ms/step" in text and "8/8" in text
    assert "compiling kernels… 0.4 s" in text
    assert h.compile_seconds == pytest.approx(0.4, abs=0.1)
    assert resolve_verbose("auto", stdio.StringIO()) == 2


def test_history_json_and_plot(tmp_path):
    x, y = blobs(100)
    model = compiled()
    h = train.fit(model, x, y, epochs=2, validation_split=0.2, verbose=0, seed=0)
    doc = json.loads(h.to_json(tmp_path / "history.json").read_text())
    assert doc["history"]["val_accuracy"] == h.history["val_accuracy"]
    pytest.importorskip("matplotlib")
    path = h.plot(tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_output_activation_restored_after_an_error(monkeypatch):
    x, y = blobs(40)
    model = compiled()
    act = model.layers[-1].activation

    def boom(self, xb, training=False):
        raise RuntimeError("boom")

    monkeypatch.setattr(MLP, "__call__", boom)
    with pytest.raises(RuntimeError, match="boom"):
        train.fit(model, x, y, verbose=0)
    assert model.layers[-1].activation is act


def test_random_translation():
    from tinycnn.train.augment import RandomTranslation

    rng = np.random.default_rng(0)
    x = rng.random((50, 2, 9, 7)).astype(np.float32)
    out = RandomTranslation(2)(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.flags.c_contiguous
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    shifts = set()
    for i in range(50):  # each image is the input shifted by some (dy, dx) in [-2, 2]^2
        found = [
            (a - 2, b - 2)
            for a in range(5)
            for b in range(5)
            if np.array_equal(out[i], padded[i, :, a : a + 9, b : b + 7])
        ]
        assert found
        shifts.update(found)
    assert len(shifts) > 10
    again = RandomTranslation(2)(x, np.random.default_rng(1))
    np.testing.assert_array_equal(out, again)
    assert RandomTranslation(0)(x, rng) is x
    for fill, mode in (("reflect", "reflect"), ("edge", "edge")):  # same shifts, other borders
        shifted = RandomTranslation(2, fill)(x, np.random.default_rng(1))
        padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=mode)
        for i in range(50):
            assert any(
                np.array_equal(shifted[i], padded[i, :, a : a + 9, b : b + 7])
                for a in range(5)
                for b in range(5)
            )
    assert repr(RandomTranslation(1, "edge")) == "RandomTranslation(1, fill='edge')"
    last = RandomTranslation(2, data_format="channels_last")(  # the same shifts on NHWC
        np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.random.default_rng(1)
    )
    np.testing.assert_array_equal(last, out.transpose(0, 2, 3, 1))
    with pytest.raises(ValueError, match="fill must be one of zeros, reflect, edge"):
        RandomTranslation(2, "wrap")
    for fill in ("zeros", "reflect"):
        with pytest.raises(ValueError, match=r"max_shift \(3\) must be smaller than .* \(3×3\)"):
            RandomTranslation(3, fill)(x[:, :, :3, :3], rng)
    with pytest.raises(TypeError, match="augment must be callable"):
        train.fit(compiled(), *blobs(10), augment=3, verbose=0)


def test_confusion_matrix_counts_and_report():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    m = metrics.confusion_matrix(t, p)
    slow = np.zeros((4, 4), np.int64)
    for a, b in zip(t, p):
        slow[a, b] += 1
    np.testing.assert_array_equal(m, slow)
    scores = np.eye(6)[p] * 0.9 + 0.01  # per-class scores: argmax, and the width sets k
    np.testing.assert_array_equal(metrics.confusion_matrix(np.eye(6)[t], scores)[:4, :4], slow)
    assert metrics.confusion_matrix(t, p, num_classes=5).shape == (5, 5)
    with pytest.raises(ValueError, match="class index 3 is out of range for num_classes=3"):
        metrics.confusion_matrix(t, p, num_classes=3)
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        metrics.confusion_matrix([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="must be >= 0"):
        metrics.confusion_matrix([0, -1], [0, 1])
    report = metrics.confusion_report(np.array([[5, 1, 0], [0, 0, 0], [2, 3, 1]]), ["a", "b", "c"])
    assert report.splitlines() == [
        "rows: true class, columns: predicted; acc = correct / images of the class",
        "       0    1    2 |   acc",
        "a 0    5    1    0 |  83.3 %",
        "b 1    0    0    0 |     –",
        "c 2    2    3    1 |  16.7 %",
        "most frequent mistakes (true → predicted): c → b (3), c → a (2), a → b (1)",
    ]


def test_history_round_trips_and_extends():
    from tinycnn.train.history import History

    h = History()
    h.append(0, {"loss": 1.0, "val_loss": float("nan")}, 0.5)
    h.params = {"epochs": 3}
    doc = h.to_dict()
    assert doc["history"]["val_loss"] == [None]  # JSON has no NaN
    json.dumps(doc, allow_nan=False)
    back = History.from_dict(doc)
    assert (
        back.epoch == [0] and back.epoch_seconds == [0.5] and np.isnan(back.history["val_loss"][0])
    )
    later = History()
    later.append(1, {"loss": 0.5, "val_loss": 0.7}, 0.25)
    later.append(2, {"loss": 0.25, "val_loss": 0.6}, 0.25)
    later.params = {"epochs": 3, "steps": 2}
    back.extend(later)
    assert back.epoch == [0, 1, 2] and back.history["loss"] == [1.0, 0.5, 0.25]
    assert back.history["val_loss"][1:] == [0.7, 0.6] and back.params == later.params


def _weighted_setup(loss, outputs, activation):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 4)).astype(np.float32)
    tc.manual_seed(1)
    model = tc.Sequential([tc.Input((4,)), tc.layers.Dense(outputs, activation=activation)])
    model.compile(optimizer=optim.SGD(None, lr=0.0), loss=loss)  # lr 0: the weights stay
    return model, x, rng


@pytest.mark.parametrize("kind", ["categorical", "sparse", "binary"])
def test_class_weight_scales_each_samples_loss_as_keras(kind):
    """The reported training loss is sum(w_i * loss_i) / N (Keras' reduction), with w_i the
    weight of sample i's class; a class not named weighs 1."""
    if kind == "binary":
        model, x, rng = _weighted_setup("binary_crossentropy", 1, "sigmoid")
        labels = rng.integers(0, 2, 12)
        y = labels[:, None].astype(np.float32)
        p = train.predict(model, x)[:, 0].astype(np.float64)
        per = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
        cw = {1: 3.0}
    else:
        loss = (
            "categorical_crossentropy"
            if kind == "categorical"
            else "sparse_categorical_crossentropy"
        )
        model, x, rng = _weighted_setup(loss, 3, "softmax")
        labels = rng.integers(0, 3, 12)
        y = np.eye(3, dtype=np.float32)[labels] if kind == "categorical" else labels
        p = model.predict(x).astype(np.float64)
        per = -np.log(p[np.arange(12), labels])
        cw = {0: 0.5, 2: 4.0}
    w = np.array([cw.get(int(c), 1.0) for c in labels])
    h = model.fit(x, y, batch_size=12, epochs=1, verbose=0, shuffle=False, class_weight=cw)
    assert h.history["loss"][0] == pytest.approx((w * per).sum() / 12, rel=1e-5)
    plain = model.fit(x, y, batch_size=12, epochs=1, verbose=0, shuffle=False)
    assert plain.history["loss"][0] == pytest.approx(per.mean(), rel=1e-5)


def test_class_weight_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    model, x, rng = _weighted_setup("sparse_categorical_crossentropy", 3, None)
    model.compile(
        optimizer=optim.SGD(None, lr=1.0),
        loss=tc.train.losses.get(tc.train.losses.SparseCategoricalCrossentropy(from_logits=True)),
    )
    labels = rng.integers(0, 3, 12)
    kernel = model.layers[-1].kernel.numpy().copy()
    bias = model.layers[-1].bias.numpy().copy()
    model.fit(x, labels, batch_size=12, epochs=1, verbose=0, shuffle=False,
              class_weight={1: 2.5})  # fmt: skip
    k = torch.tensor(kernel, requires_grad=True)
    b = torch.tensor(bias, requires_grad=True)
    per = torch.nn.functional.cross_entropy(
        torch.tensor(x) @ k.T + b, torch.tensor(labels), reduction="none"
    )
    w = torch.tensor([2.5 if c == 1 else 1.0 for c in labels])
    (per * w).mean().backward()
    np.testing.assert_allclose(
        model.layers[-1].kernel.numpy(), kernel - k.grad.numpy(), rtol=1e-5, atol=1e-6
    )


def test_balanced_class_weight_lifts_the_rare_class():
    from tinycnn.train.loop import sample_weights

    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.1).astype(np.int64)
    x = (rng.standard_normal((1000, 2)) + y[:, None]).astype(np.float32)
    loss = tc.train.losses.get("sparse_categorical_crossentropy")
    w = sample_weights(loss, y, "balanced", 2, np.float32)
    counts = np.bincount(y)
    np.testing.assert_allclose(w, (1000 / (2 * counts))[y], rtol=1e-6)  # n / (classes * count)
    # a 3-output model whose data holds 2 classes: scikit-learn divides by the 2 present
    np.testing.assert_allclose(sample_weights(loss, y, "balanced", 3, np.float32), w)
    # a class the data lacks may still be named, up to the model's outputs
    np.testing.assert_array_equal(sample_weights(loss, y, {2: 5.0}, 3, np.float32), 1.0)

    def rare_recall(cw):
        tc.manual_seed(0)
        model = tc.Sequential([tc.Input((2,)), tc.layers.Dense(2, activation="softmax")])
        model.compile(optimizer=optim.Adam(0.05), loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=10, batch_size=50, verbose=0, seed=0, class_weight=cw)
        return (model.predict(x).argmax(1)[y == 1] == 1).mean()

    assert rare_recall(None) < 0.3 < 0.7 < rare_recall("balanced")


def test_class_weight_errors():
    model, x, rng = _weighted_setup("sparse_categorical_crossentropy", 3, "softmax")
    y = rng.integers(0, 3, 12)
    for cw, error, message in [
        ({3: 1.0}, ValueError, r"names class 3, but the model tells 3 classes apart \(0..2\)"),
        ({0: -1.0}, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
        ({"cat": 1.0}, TypeError, "keys are class indices"),
        ("even", ValueError, "a dict {class: weight} or 'balanced'"),
        ([1.0, 2.0], TypeError, "a dict {class: weight} or 'balanced', got list"),
    ]:
        with pytest.raises(error, match=message):
            model.fit(x, y, verbose=0, class_weight=cw)
    mse, _, _ = _weighted_setup("mse", 3, None)
    with pytest.raises(TypeError, match="class_weight needs a classification loss"):
        mse.fit(x, np.zeros((12, 3), np.float32), verbose=0, class_weight={0: 2.0})
    binary, _, _ = _weighted_setup("binary_crossentropy", 2, "sigmoid")
    with pytest.raises(TypeError, match="needs one output"):
        binary.fit(x, np.zeros((12, 2), np.float32), verbose=0, class_weight={0: 2.0})


def test_sample_weight_weighs_samples_and_multiplies_class_weight():
    model, x, rng = _weighted_setup("sparse_categorical_crossentropy", 3, "softmax")
    labels = rng.integers(0, 3, 12)
    p = model.predict(x).astype(np.float64)
    per = -np.log(p[np.arange(12), labels])
    sw = rng.uniform(0, 2, 12)
    cw = {1: 3.0}
    both = sw * np.array([cw.get(int(c), 1.0) for c in labels])
    kw = dict(batch_size=12, epochs=1, verbose=0, shuffle=False)
    h = model.fit(x, labels, sample_weight=sw, **kw)
    assert h.history["loss"][0] == pytest.approx((sw * per).sum() / 12, rel=1e-5)
    h = model.fit(x, labels, sample_weight=sw, class_weight=cw, **kw)
    assert h.history["loss"][0] == pytest.approx((both * per).sum() / 12, rel=1e-5)
    # with validation_split the held-out last samples' weights are dropped
    h = model.fit(x, labels, sample_weight=sw, validation_split=0.25, **kw)
    assert h.history["loss"][0] == pytest.approx((sw[:9] * per[:9]).sum() / 9, rel=1e-5)
    assert h.history["val_loss"][0] == pytest.approx(per[9:].mean(), rel=1e-5)  # unweighted
    with pytest.raises(
        ValueError, match=r"one number per sample, shape \(12,\), got float64 of shape \(11,\)"
    ):
        model.fit(x, labels, sample_weight=sw[:11], **kw)
    with pytest.raises(ValueError, match=r"sample_weight\[2\] = -1.0 must be a finite number"):
        model.fit(x, labels, sample_weight=np.r_[1.0, 1.0, -1.0, np.ones(9)], **kw)


def test_mean_squared_error_takes_sample_weight_as_keras():
    """Was: TypeError 'mean_squared_error: class weights are for classification losses'."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    out = rng.standard_normal((6, 2))
    target = rng.standard_normal((6, 2))
    w = rng.uniform(0, 2, 6)
    o = tc.tensor(out, requires_grad=True)
    loss = losses.MeanSquaredError().weighted(o, tc.tensor(target), False, tc.tensor(w))
    loss.backward()
    ot = torch.tensor(out, requires_grad=True)
    ref = (torch.nn.functional.mse_loss(ot, torch.tensor(target), reduction="none").mean(1)
           * torch.tensor(w)).mean()  # fmt: skip
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(o.grad.numpy(), ot.grad.numpy(), rtol=1e-12)
    model = MLP(activation="linear", n_out=1)
    train.compile(model, optimizer=optim.SGD(None, lr=0.0), loss="mse")
    x, _ = blobs(12)
    y = rng.standard_normal(12).astype(np.float32)
    p = train.predict(model, x)[:, 0].astype(np.float64)
    sw = rng.uniform(0, 2, 12)
    h = train.fit(model, x, y, sample_weight=sw, batch_size=12, epochs=1, verbose=0)
    assert h.history["loss"][0] == pytest.approx((sw * (p - y) ** 2).sum() / 12, rel=1e-5)


def test_target_errors_show_the_value_given():
    sparse = losses.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match=r"label y\[1\] = inf is out of range"):
        sparse.prepare_target(np.array([1.0, np.inf]), (None, 3), np.float32)  # was: -2**63
    with pytest.raises(ValueError, match=r"label y\[1\] = 9223372036854775808 is out of range"):
        sparse.prepare_target(np.array([1, 2**63], np.uint64), (None, 3), np.float32)
    y = sparse.prepare_target(np.array([2.0, 0.0]), (None, 3), np.float32)
    assert y.dtype == np.int64 and y.tolist() == [2, 0]
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]; y\[2, 0\] = 2.0"):
        losses.BinaryCrossentropy().prepare_target(np.array([0.0, 1.0, 2.0]), (None, 1), np.float32)


def test_metrics_refuse_targets_of_another_shape():
    out = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    labels = np.array([1, 2, 2])
    with pytest.raises(ValueError, match=r"categorical_accuracy: targets have shape \(3,\), the "
                       r"outputs \(3, 3\).*use 'sparse_categorical_accuracy'"):  # fmt: skip
        metrics.CategoricalAccuracy().update(out, labels, False)  # was: silently 1/3
    with pytest.raises(ValueError, match=r"one class index per row, shape \(3,\) \(one-hot rows"):
        metrics.SparseCategoricalAccuracy().update(out, np.eye(3)[labels], False)  # broadcast
    with pytest.raises(ValueError, match=r"binary_accuracy: targets have shape \(1, 3\), the "
                       r"outputs \(3, 1\)"):  # fmt: skip
        metrics.BinaryAccuracy().update(out[:, :1], labels[None], False)
    binary = metrics.BinaryAccuracy()  # (N,) against (N, 1), as Keras: was 5/3
    binary.update(np.array([[0.4], [0.6], [0.9]]), np.array([0.0, 1.0, 0.0]), False)
    assert binary.result() == pytest.approx(2 / 3)
    model = compiled(metrics_=("categorical_accuracy",))
    x, y = blobs(30)
    with pytest.raises(ValueError, match="categorical_accuracy: targets have shape"):
        train.fit(model, x, y, epochs=1, verbose=0)
    # one score per pixel: the accuracy counts pixels, not images
    seg = metrics.SparseCategoricalAccuracy()
    scores = np.zeros((2, 2, 3))
    scores[..., 1] = 1.0
    seg.update(scores, np.array([[1, 0], [1, 1]]), False)
    assert seg.result() == 0.75


def test_top_k_accuracy_never_counts_a_nan_score_or_a_missing_label():
    """As Keras' in_top_k; was: every NaN row in the top k (a diverged model at 100 %)."""
    nan = np.nan
    out = np.array([[nan, nan, nan], [nan, 0.1, 0.2], [0.5, 0.5, 0.0], [-3.0, -2.0, -1.0]])
    for k, labels, want in [
        (1, [0, 0, 1, 2], [0, 0, 1, 1]),
        (2, [2, 1, 0, 1], [0, 1, 1, 1]),
        (3, [0, 1, 2, 5], [0, 1, 1, 0]),  # label 5 of 3 classes: not among them
    ]:
        m = metrics.TopKAccuracy(k)
        m.update(out, np.array(labels), False)
        assert m.result() == pytest.approx(np.mean(want)), (k, labels)
    assert metrics.TopKAccuracy(np.int64(3)).k == 3
    with pytest.raises(ValueError, match="k must be a positive int, got True"):
        metrics.TopKAccuracy(True)


def test_random_translation_takes_numpy_ints():
    from tinycnn.train.augment import RandomTranslation

    x = np.random.default_rng(0).random((4, 1, 6, 6))
    a = RandomTranslation(np.int64(2))(x, np.random.default_rng(1))
    np.testing.assert_array_equal(a, RandomTranslation(2)(x, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="max_shift must be an int >= 0, got True"):
        RandomTranslation(True)
