"""Checkpoints: round trips, atomic writes under SIGKILL, corrupt files rejected, mismatches
explained."""

from __future__ import annotations

import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import OrderedDict
from io import BytesIO
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


def _zip_with(path, members, compression=zipfile.ZIP_STORED):
    """Write ``members`` (name -> bytes) as a zip, as np.savez would name them."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _npy(shape, data: bytes, descr="<f4") -> bytes:
    head = BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return head.getvalue() + data


def _meta_npy(doc) -> bytes:
    raw = json.dumps(doc).encode()
    return _npy((len(raw),), raw, "|u1")


def test_damaged_archives_are_rejected_with_the_file_name(tmp_path):
    """Damage zipfile does not read, or a header asking for more than the file holds, is a
    CheckpointError naming the file, not a RuntimeError, zlib.error or MemoryError."""
    good = save_state(tmp_path / "good.npz", {"w": np.arange(64, dtype=np.float32)})
    members = {n: zipfile.ZipFile(good).read(n) for n in zipfile.ZipFile(good).namelist()}
    blob = good.read_bytes()

    def patched(name, offset_in_local, offset_in_central, value):
        data = bytearray(blob)
        info = zipfile.ZipFile(good).getinfo(name)
        data[info.header_offset + offset_in_local] = value
        central = blob.index(b"PK\x01\x02")  # the central directory's entry of ``name``
        while blob[central + 46 : central + 46 + len(name)] != name.encode():
            central = blob.index(b"PK\x01\x02", central + 4)
        data[central + offset_in_central] = value
        return bytes(data)

    cases = {
        "encrypted": (
            patched("w.npy", 6, 8, 1),
            r"unreadable checkpoint \(File .*w.npy.* is encrypted",
        ),
        "method": (patched("w.npy", 8, 10, 99), "unreadable checkpoint.*compression method"),
    }
    deflated = _zip_with(tmp_path / "deflated.npz", members, zipfile.ZIP_DEFLATED).read_bytes()
    info = zipfile.ZipFile(tmp_path / "deflated.npz").getinfo("w.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged = bytearray(deflated)
    damaged[start : start + 4] = b"\xff\xff\xff\xff"  # a deflate block of the reserved type
    cases["deflate"] = (bytes(damaged), r"corrupt or truncated checkpoint \(error: Error -3")
    for name, (data, message) in cases.items():
        p = tmp_path / f"{name}.npz"
        p.write_bytes(data)
        with pytest.raises(CheckpointError, match=f"{name}.npz: {message}"):
            load_state(p)

    meta = {"format": "tinycnn-checkpoint", "version": 1, "names": ["w"]}
    bomb = _zip_with(
        tmp_path / "bomb.npz",
        {"__meta__.npy": _meta_npy(meta), "w.npy": _npy((1 << 45,), b"\0" * 16)},
    )
    with pytest.raises(
        CheckpointError,
        match=r"bomb.npz: corrupt checkpoint: array w declares shape \(35184372088832,\) of "
        r"float32 \(140,737,488,355,328 bytes\) but the file holds 16 bytes of it",
    ):
        load_state(bomb)
    short = _zip_with(
        tmp_path / "short.npz",
        {"__meta__.npy": _meta_npy(meta), "w.npy": _npy((3,), b"\0" * 16)},
    )
    with pytest.raises(CheckpointError, match=r"array w declares shape \(3,\) of float32 \(12 "):
        load_state(short)
    raw_pickle = pickle.dumps([1, 2])  # members that are not .npy: np.load hands out bytes
    for members, message in (
        ({"__meta__.npy": raw_pickle}, r"corrupt checkpoint \(__meta__ is not an .npy array\)"),
        ({"__meta__.npy": _meta_npy(meta), "w.npy": raw_pickle}, "unreadable checkpoint"),
    ):
        with pytest.raises(CheckpointError, match=f"raw.npz: {message}"):
            load_state(_zip_with(tmp_path / "raw.npz", members))
    for doc, message in (
        ([1, 2], r"not a tinycnn checkpoint \(format \[1, 2\]\)"),
        ({**meta, "version": "2"}, r"corrupt checkpoint metadata \(version '2', names \['w'\]"),
        ({**meta, "names": 5}, r"corrupt checkpoint metadata \(version 1, names 5; need an int"),
    ):
        odd = _zip_with(tmp_path / "odd.npz", {"__meta__.npy": _meta_npy(doc)})
        with pytest.raises(CheckpointError, match=f"odd.npz: {message}"):
            load_state(odd)
        with pytest.raises(CheckpointError, match=f"odd.npz: {message}"):
            io.load_meta(odd)


def test_saved_files_have_the_permissions_of_a_new_file_or_of_the_one_replaced(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save_state(tmp_path / "w.npz", {"w": np.ones(2)})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # as np.save's, not mkstemp's 0o600
        path.chmod(0o640)
        save_state(path, {"w": np.zeros(2)})
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        text = io.write_text(tmp_path / "h.json", "{}\n")
        assert stat.S_IMODE(text.stat().st_mode) == 0o644
    finally:
        os.umask(umask)


def test_a_failed_text_write_keeps_the_previous_file(tmp_path, monkeypatch):
    """history.json (History.to_json) and log.csv trims are written as checkpoints are."""
    path = tmp_path / "history.json"
    tc.train.History().to_json(path)
    before = path.read_text()
    history = tc.train.History()
    history.append(0, {"loss": 0.5}, 1.0)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        history.to_json(path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["history.json"]  # no temporary file left behind
    monkeypatch.undo()
    history.to_json(path)
    assert json.loads(path.read_text())["history"] == {"loss": [0.5]}
