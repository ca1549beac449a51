"""Checkpoints: round trips, atomic writes under SIGKILL, corrupt files rejected, mismatches
explained."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import io, optim
from tinycnn.io import CheckpointError, load_state, save_state

ROOT = Path(__file__).resolve().parents[1]


class TinyModel:
    """The part of the Model interface that checkpoints use."""

    def __init__(self, name="tiny", shapes=None, seed=0):
        rng = np.random.default_rng(seed)
        shapes = shapes or {"dense/kernel": (4, 3), "dense/bias": (4,), "bn/moving_mean": (4,)}
        self.name = name
        self.w = OrderedDict(
            (k, tc.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True))
            for k, s in shapes.items()
        )

    def parameters(self):
        return list(self.w.values())

    def state_dict(self):
        return OrderedDict((k, t.numpy().copy()) for k, t in self.w.items())

    def load_state_dict(self, state):
        for k, t in self.w.items():
            t.data = np.array(state[k], dtype=t.dtype)


def test_round_trip(tmp_path):
    arrays = OrderedDict(
        [
            ("b/kernel", np.arange(6, dtype=np.float32).reshape(2, 3)),
            ("a", np.float64(3.5) * np.ones((2, 2, 2))),
            ("steps", np.asarray(7, dtype=np.int64)),
            ("u8", np.arange(5, dtype=np.uint8)),
        ]
    )
    path = save_state(tmp_path / "c.npz", arrays, {"epoch": 3, "note": "hi"})
    got, meta = load_state(path)
    assert list(got) == list(arrays)  # saved order kept
    for k in arrays:
        assert got[k].dtype == arrays[k].dtype and got[k].shape == arrays[k].shape
        np.testing.assert_array_equal(got[k], arrays[k])
    assert meta["epoch"] == 3 and meta["note"] == "hi" and meta["format"] == "tinycnn-checkpoint"
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary left behind


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="only numeric arrays"):
        save_state(tmp_path / "x.npz", {"o": np.array([object()])})
    with pytest.raises(TypeError, match="meta must be JSON-serialisable"):
        save_state(tmp_path / "x.npz", {"a": np.ones(2)}, {"f": object()})
    with pytest.raises(ValueError, match="invalid array name"):
        save_state(tmp_path / "x.npz", {"__meta__": np.ones(2)})
    assert os.listdir(tmp_path) == []


def test_corrupt_and_foreign_files_are_rejected(tmp_path):
    good = save_state(tmp_path / "good.npz", {"w": np.arange(50_000, dtype=np.float32)})
    blob = good.read_bytes()
    cases = {
        "empty": (b"", r"the file is empty, not with an .npz's zip header"),
        "truncated-half": (blob[: len(blob) // 2], "corrupt or truncated checkpoint"),
        "truncated-tail": (blob[:-10], "corrupt or truncated checkpoint"),
        "text": (b"hello world", r"not a tinycnn checkpoint \(the file starts with b'hell', not"),
    }
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF  # inside the array's data: the zip CRC catches it
    cases["flipped-byte"] = (bytes(flipped), "corrupt or truncated checkpoint.*CRC")
    for name, (data, message) in cases.items():
        p = tmp_path / f"{name}.npz"
        p.write_bytes(data)
        with pytest.raises(CheckpointError, match=message):
            load_state(p)
    np.savez(tmp_path / "plain.npz", w=np.ones(2))
    with pytest.raises(CheckpointError, match="not a tinycnn checkpoint \\(no __meta__"):
        load_state(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_state(tmp_path / "nope.npz")


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["BOOM_PATH"]),))


def test_pickles_never_run(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOM_PATH", str(tmp_path / "pwned"))
    (tmp_path / "p.npz").write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(CheckpointError):
        load_state(tmp_path / "p.npz")
    # a real npz whose array member is a pickled object array
    np.savez(
        tmp_path / "o.npz",
        __meta__=np.frombuffer(b'{"format": "tinycnn-checkpoint", "names": ["x"]}', np.uint8),
        x=np.array([_Boom()], dtype=object),
    )
    with pytest.raises(CheckpointError, match="Object arrays cannot be loaded"):
        load_state(tmp_path / "o.npz")
    assert not (tmp_path / "pwned").exists()


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from tinycnn import io
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "hook":
        def hook():
            print("written", flush=True)
            time.sleep(60)
        io._before_replace = hook
        io.save_state(path, {"w": np.full(1000, 2.0)}, {"v": 2})
    else:  # save big checkpoints in a loop until killed
        big = np.full(40_000_000, 2.0, dtype=np.float32)
        print("saving", flush=True)
        while True:
            io.save_state(path, {"w": big}, {"v": 2})
    """
)


def _spawn(path, mode):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), mode], stdout=subprocess.PIPE, env=env
    )


def test_kill_between_write_and_rename_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_state(path, {"w": np.full(1000, 1.0)}, {"v": 1})
    child = _spawn(path, "hook")
    try:
        assert child.stdout.readline().strip() == b"written"
        leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
        assert len(leftovers) == 1  # the new file is complete, but not in place yet
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    arrays, meta = load_state(path)
    assert meta["v"] == 1 and (arrays["w"] == 1.0).all()


def test_kill_while_writing_a_large_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_state(path, {"w": np.full(10, 1.0, dtype=np.float32)}, {"v": 1})
    for delay in (0.05, 0.4):
        child = _spawn(path, "loop")
        try:
            assert child.stdout.readline().strip() == b"saving"
            time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        arrays, meta = load_state(path)  # the old file or a whole new one, never a mix
        assert meta["v"] in (1, 2)
        assert (arrays["w"] == meta["v"]).all()


def test_weights_round_trip_and_mismatches(tmp_path):
    a, b = TinyModel(seed=0), TinyModel(seed=1)
    io.save_weights(a, tmp_path / "w.npz")
    meta = io.load_weights(b, tmp_path / "w.npz")
    assert meta["model"] == "tiny" and meta["kind"] == "weights"
    for k in a.w:
        np.testing.assert_array_equal(a.w[k].numpy(), b.w[k].numpy())

    wrong_shape = TinyModel(
        shapes={"dense/kernel": (4, 5), "dense/bias": (4,), "bn/moving_mean": (4,)}
    )
    with pytest.raises(
        CheckpointError, match=r"dense/kernel: shape \(4, 3\) in the file, \(4, 5\)"
    ):
        io.load_weights(wrong_shape, tmp_path / "w.npz")
    wrong_dtype = TinyModel()
    wrong_dtype.w["dense/bias"] = tc.tensor(np.zeros(4, np.float64))
    with pytest.raises(CheckpointError, match="dense/bias: dtype float32 in the file, float64"):
        io.load_weights(wrong_dtype, tmp_path / "w.npz")
    extra = TinyModel(
        shapes={
            "dense/kernel": (4, 3),
            "dense/bias": (4,),
            "bn/moving_mean": (4,),
            "head/kernel": (2, 4),
        }
    )
    with pytest.raises(CheckpointError, match="missing from the file: head/kernel"):
        io.load_weights(extra, tmp_path / "w.npz")
    other = TinyModel(name="vgg", shapes={"conv1/kernel": (8, 3, 3, 3), "fc/kernel": (10, 8)})
    before = other.state_dict()
    with pytest.raises(CheckpointError, match="another architecture.*saved from model 'tiny'"):
        io.load_weights(other, tmp_path / "w.npz")
    for k, v in before.items():  # nothing was changed
        np.testing.assert_array_equal(other.w[k].numpy(), v)


def test_training_checkpoint_restores_optimizer_and_rng(tmp_path):
    model = TinyModel()
    opt = optim.Adam(model.parameters(), lr=0.01)
    for p in model.parameters():
        p.grad = tc.tensor(np.ones(p.shape, np.float32))
    opt.step()
    tc.manual_seed(5)
    np.random.default_rng(0)
    io.save_checkpoint(tmp_path / "t.npz", model, opt, epoch=4, extra={"history": {"loss": [1.0]}})
    want_next = tc.random.default_generator().random(3)

    model2 = TinyModel(seed=9)
    opt2 = optim.Adam(model2.parameters(), lr=0.5)
    tc.manual_seed(123)
    meta = io.load_checkpoint(tmp_path / "t.npz", model2, opt2)
    assert meta["epoch"] == 4 and meta["history"] == {"loss": [1.0]}
    np.testing.assert_array_equal(tc.random.default_generator().random(3), want_next)
    assert opt2.lr == 0.01 and opt2.state[0]["step"] == 1
    np.testing.assert_array_equal(opt2.state[0]["exp_avg"], opt.state[0]["exp_avg"])
    for k in model.w:
        np.testing.assert_array_equal(model.w[k].numpy(), model2.w[k].numpy())
    # load_weights also reads the model part of a training checkpoint
    model3 = TinyModel(seed=3)
    io.load_weights(model3, tmp_path / "t.npz")
    np.testing.assert_array_equal(model3.w["dense/kernel"].numpy(), model.w["dense/kernel"].numpy())
    with pytest.raises(CheckpointError, match="holds weights only"):
        io.save_weights(model, tmp_path / "w.npz")
        io.load_checkpoint(tmp_path / "w.npz", model)
    with pytest.raises(CheckpointError, match="state is of a Adam optimizer"):
        io.load_checkpoint(tmp_path / "t.npz", model2, optim.SGD(model2.parameters(), lr=0.1))


def test_renamed_layers_get_a_specific_message(tmp_path):
    a = TinyModel(shapes={"dense/kernel": (4, 3), "dense/bias": (4,)})
    b = TinyModel(shapes={"dense_2/kernel": (4, 3), "dense_2/bias": (4,)})
    io.save_weights(a, tmp_path / "w.npz")
    with pytest.raises(CheckpointError, match="names differ but the shapes match.*clear_session"):
        io.load_weights(b, tmp_path / "w.npz")
