"""Callbacks: Keras' semantics driven directly, and inside fit (early stop, NaN, checkpoints)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from tinycnn import io, optim, train
from tinycnn.train import callbacks

from .test_train import MLP, blobs, compiled, weights


class FakeModel:
    """Weights are one number; ``stop_training`` and ``optimizer.lr`` as fit provides them."""

    def __init__(self):
        self.value = 0.0
        self.stop_training = False
        self.optimizer = optim.SGD([MLP().w["b1"]], lr=1.0)

    def state_dict(self):
        return {"v": np.array(self.value)}

    def load_state_dict(self, state):
        self.value = float(state["v"])


def drive(cb, values, key="val_loss", model=None):
    """Run ``cb`` over epochs whose monitored value is ``values``; the model's weight is the
    epoch index.  Returns (model, epochs run)."""
    model = model or FakeModel()
    cb.set_model(model)
    cb.on_train_begin({})
    ran = 0
    for epoch, v in enumerate(values):
        model.value = float(epoch)
        logs = {key: v}
        cb.on_epoch_end(epoch, logs)
        ran += 1
        if model.stop_training:
            break
    cb.on_train_end({})
    return model, ran


def test_early_stopping_patience_and_restore():
    cb = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    model, ran = drive(cb, [1.0, 0.5, 0.6, 0.55, 0.4])
    assert ran == 4 and cb.stopped_epoch == 3 and cb.best_epoch == 1
    assert model.value == 1.0  # the best epoch's weights
    cb = callbacks.EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05)
    _, ran = drive(cb, [0.5, 0.52, 0.9], key="val_accuracy")
    assert ran == 2  # +0.02 is below min_delta; mode 'max' inferred from the name
    values = [0.5, 0.45, 0.46, 0.47]
    assert drive(callbacks.EarlyStopping(patience=2), values)[1] == 4
    # improvements that do not beat the baseline do not reset the patience (Keras)
    assert drive(callbacks.EarlyStopping(patience=2, baseline=0.3), values)[1] == 3
    # restore_best_weights without stopping early: the best epoch still comes back
    cb = callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    model, ran = drive(cb, [3.0, 1.0, 2.0, 2.5])
    assert ran == 4 and model.value == 1.0


def test_reduce_lr_on_plateau():
    cb = callbacks.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_begin({})
    lrs = []
    for epoch, v in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]):
        logs = {"val_loss": v}
        cb.on_epoch_end(epoch, logs)
        lrs.append(logs["learning_rate"])
    # logged before the update; Keras counts the epoch that ends the cooldown toward patience
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2]
    assert model.optimizer.lr == 0.2  # floored at min_lr
    with pytest.raises(ValueError, match="factor must be in \\(0, 1\\)"):
        callbacks.ReduceLROnPlateau(factor=1.5)


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    cb = callbacks.CSVLogger(path)
    drive(cb, [0.5, 0.25])
    rows = list(csv.reader(open(path)))
    assert rows == [["epoch", "val_loss"], ["0", "0.5"], ["1", "0.25"]]
    cb = callbacks.CSVLogger(path, append=True)
    drive(cb, [0.125])
    assert list(csv.reader(open(path)))[-1] == ["0", "0.125"]
    assert len(list(csv.reader(open(path)))) == 4  # one header


def test_model_checkpoint_template_and_best_only(tmp_path):
    x, y = blobs(200)
    model = compiled()
    every = callbacks.ModelCheckpoint(
        tmp_path / "w-{epoch:02d}-{val_loss:.3f}.npz", save_weights_only=True
    )
    best = callbacks.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True, monitor="val_loss")
    h = train.fit(
        model, x, y, epochs=3, validation_split=0.25, verbose=0, seed=0, callbacks=[every, best]
    )
    names = sorted(p.name for p in tmp_path.glob("w-*.npz"))
    assert names == [f"w-{e + 1:02d}-{v:.3f}.npz" for e, v in enumerate(h.history["val_loss"])]
    assert io.load_state(tmp_path / names[0])[1]["kind"] == "weights"
    meta = io.load_state(tmp_path / "best.npz")[1]
    assert meta["kind"] == "training"
    assert meta["epoch"] == 1 + int(np.argmin(h.history["val_loss"]))
    with pytest.raises(KeyError, match="names 'val_acc', which is not in the logs"):
        train.fit(
            model,
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.ModelCheckpoint(tmp_path / "{val_acc}.npz")],
        )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow, on purpose
def test_terminate_on_nan_keeps_the_last_good_checkpoint(tmp_path, capsys):
    x, y = blobs(200)
    model = compiled(metrics_=())
    ckpt = callbacks.ModelCheckpoint(tmp_path / "last.npz")
    train.fit(model, x, y, epochs=2, verbose=0, seed=0, callbacks=[ckpt])
    good = weights(model)
    model.optimizer.lr = 1e38  # diverge: the weights overflow, the loss turns NaN/Inf
    h = train.fit(
        model, x, y, epochs=5, verbose=0, seed=0, callbacks=[callbacks.TerminateOnNaN(), ckpt]
    )
    out = capsys.readouterr().out
    assert "TerminateOnNaN: the loss is" in out and "epoch 1, batch" in out
    assert "the loss or the weights are NaN/Inf, not saving; keeping" in out
    assert len(h.epoch) == 1 and not math.isfinite(h.history["loss"][0])
    arrays, meta = io.load_state(tmp_path / "last.npz")
    assert meta["epoch"] == 2  # the checkpoint of the last good epoch
    for a, b in zip(arrays.values(), good):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow, on purpose
def test_early_stopping_restores_after_nan_in_fit():
    x, y = blobs(200)
    model = compiled(metrics_=(), lr=0.01)
    state = {}

    class Diverge(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                state["best"] = weights(self.model)
                self.model.optimizer.lr = 1e38

    early = callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    # callback order: EarlyStopping records epoch 1's weights before Diverge raises the lr
    train.fit(
        model,
        x,
        y,
        epochs=6,
        verbose=0,
        seed=0,
        callbacks=[early, Diverge(), callbacks.TerminateOnNaN()],
    )
    for a, b in zip(weights(model), state["best"]):
        np.testing.assert_array_equal(a, b)


def test_on_train_end_runs_when_interrupted(tmp_path):
    x, y = blobs(100)
    model = compiled()
    log = callbacks.CSVLogger(tmp_path / "log.csv")

    class Interrupt(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.fit(model, x, y, epochs=5, verbose=0, callbacks=[log, Interrupt()])
    assert log.file is None  # closed
    assert len(list(csv.reader(open(tmp_path / "log.csv")))) == 3
    with pytest.raises(TypeError, match="callbacks must be Callback instances"):
        train.fit(model, x, y, verbose=0, callbacks=[print])


def test_learning_rate_scheduler_in_fit():
    x, y = blobs(100)
    model = compiled()
    seen = []

    class Spy(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.model.optimizer.lr)

    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    h = train.fit(model, x, y, epochs=3, verbose=0, callbacks=[sched, Spy()])
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert h.history["learning_rate"] == pytest.approx(seen)
    with pytest.raises(ValueError, match="schedule\\(0\\) gave -1.0"):
        train.fit(
            model, x, y, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: -1.0)]
        )


def test_model_checkpoint_refuses_a_template_no_epoch_can_format(tmp_path):
    """Before the first epoch trains, not after it: the file name is formatted only then."""
    for template, why in (
        ("{}.npz", "a positional field; name epoch or a log"),
        ("{0}.npz", "a positional field"),
        ("ckpt-{epoch:s}.npz", "Unknown format code 's'"),
        ("ckpt-{epoch.real.x}.npz", "has no attribute 'x'"),
        ("ckpt-{epoch", "expected '}' before end of string"),
        ("ckpt-{val_loss:d}.npz", "Unknown format code 'd'"),
    ):
        with pytest.raises(ValueError) as e:
            callbacks.ModelCheckpoint(tmp_path / template)
        assert str(e.value).startswith(
            f"ModelCheckpoint: filepath {str(tmp_path / template)!r} is not a template over epoch "
            "(an int) and the logs (floats), as 'ckpt-{epoch:02d}-{val_loss:.3f}.npz': "
        )
        assert why in str(e.value)
    for template in ("w-{epoch:02d}-{val_loss:.3f}.npz", "ünï cödé {epoch}", "{loss!r}-{epoch:%}"):
        callbacks.ModelCheckpoint(tmp_path / template)  # fine


def test_callback_arguments_are_checked_when_built():
    """Were: int()/float() errors naming neither, or a comparison error after the first epoch."""
    for make, error, message in [
        (lambda: callbacks.EarlyStopping(patience="3"), TypeError, "patience must be an int"),
        (lambda: callbacks.EarlyStopping(patience=-1), ValueError, "patience must be >= 0"),
        (lambda: callbacks.EarlyStopping(min_delta="a"), TypeError, "min_delta must be a number"),
        (lambda: callbacks.EarlyStopping(baseline="x"), TypeError, "baseline must be a number"),
        (lambda: callbacks.EarlyStopping(baseline=math.nan), ValueError, "must be finite"),
        (lambda: callbacks.ReduceLROnPlateau(factor="a"), TypeError, "factor must be a number"),
        (lambda: callbacks.ReduceLROnPlateau(cooldown=1.5), TypeError, "cooldown must be an int"),
        (lambda: callbacks.ReduceLROnPlateau(min_lr=-1), ValueError, "min_lr must be >= 0"),
        (lambda: callbacks.CSVLogger("log.csv", separator=";;"), ValueError, "one character"),
    ]:
        with pytest.raises(error, match=message):
            make()
    cb = callbacks.EarlyStopping(patience=np.int64(1), baseline=np.float32(0.5))
    assert cb.patience == 1 and cb.baseline == 0.5


def test_learning_rate_scheduler_takes_keras_one_argument_schedules():
    x, y = blobs(60)
    model = compiled()
    sched = callbacks.LearningRateScheduler(lambda epoch: 0.1 * 0.5**epoch)  # was: TypeError
    h = train.fit(model, x, y, epochs=3, verbose=0, callbacks=[sched])
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    sched = callbacks.LearningRateScheduler(max)  # no signature: (epoch, lr)
    assert sched.with_lr
    with pytest.raises(TypeError, match=r"schedule must take \(epoch, lr\) or \(epoch\)"):
        callbacks.LearningRateScheduler(lambda: 0.1)
    for bad in ("0.1", None, np.array([0.1]), True):  # "0.1" was taken as 0.1
        with pytest.raises(ValueError, match=r"schedule\(0\) gave .*; need a number >= 0"):
            train.fit(
                model, x, y, verbose=0,
                callbacks=[callbacks.LearningRateScheduler(lambda e, lr, bad=bad: bad)],
            )  # fmt: skip


def test_csv_logger_used_again_takes_the_new_runs_columns(tmp_path):
    """As Keras: was the first run's columns, dropping the second run's val_loss."""
    path = tmp_path / "log.csv"
    cb = callbacks.CSVLogger(path)
    drive(cb, [0.5], key="loss")
    drive(cb, [0.25, 0.125])
    assert list(csv.reader(open(path))) == [["epoch", "val_loss"], ["0", "0.25"], ["1", "0.125"]]
