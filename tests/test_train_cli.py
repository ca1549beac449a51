"""``tinycnn train`` / ``tinycnn evaluate`` end to end on a small MNIST model (``--limit``)."""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers as L
from tinycnn.cli import main
from tinycnn.train.cli import _use_run_settings


def mlp(input_shape=(1, 28, 28), num_classes=10):
    """A small MNIST classifier (the CLI's MODEL may be ``package.module:function``)."""
    return tc.Sequential(
        [
            tc.Input(input_shape),
            L.Flatten(),
            L.Dense(32, activation="tanh"),
            L.Dropout(0.1),
            L.Dense(num_classes, activation="softmax"),
        ],
        name="mnist_mlp",
    )


def conv_last(input_shape=(28, 28, 1), num_classes=10):
    """A Keras-style channels-last model: the command line gives it (N, H, W, C) batches."""
    x = inp = tc.Input(input_shape)
    x = L.Conv2D(8, 3, activation="relu", data_format="channels_last")(x)
    x = L.MaxPool2D(2, data_format="channels_last")(x)
    out = L.Dense(num_classes, activation="softmax")(L.Flatten()(x))
    return tc.Model(inp, out, name="conv_last")


def test_a_channels_last_model_trains_evaluates_and_is_drawn(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:conv_last"
    argv = ["train", model, "--epochs", "2", "--limit", "1000", "--quiet", "--augment", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert float(out.split("test accuracy: ")[1].split()[0]) > 0.5  # the images are not garbled
    assert main(["evaluate", model, "--limit", "200"]) == 0
    assert "conv_last with runs/conv_last/weights.npz on 200 mnist test images" in (
        capsys.readouterr().out
    )
    assert main(["maps", model, "-o", "m.png"]) == 0
    assert "mnist test image 0: label 7" in capsys.readouterr().out
    digit = tmp_path / "digit.npy"
    np.save(digit, tc.datasets.load_mnist("test", limit=1)[0][0, 0])
    assert main(["predict", model, str(digit)]) == 0
    assert f"{digit}: " in capsys.readouterr().out


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "tests.test_train_cli:mlp",
        "--epochs",
        "3",
        "--limit",
        "2000",
        "--out",
        str(out),
        "--quiet",
        "--batch-size",
        "50",
        "--augment",  # shifts help a CNN, not an MLP: keep this short run's threshold meaningful
        "0",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.index("Total params") < text.index("training mnist_mlp on mnist: 2000 images")
    assert "test accuracy: 0." in text and "on 2000 mnist test images" in text
    assert text.index("test accuracy") < text.index("rows: true class, columns: predicted")
    names = {"weights.npz", "history.json", "log.csv", "run.json", "checkpoint.npz"}
    if importlib.util.find_spec("matplotlib") is not None:
        names |= {"curves.png", "mistakes.png"}
        assert (
            "wrote weights.npz, history.json, log.csv, run.json, checkpoint.npz, curves.png, "
            "mistakes.png" in text
        )
    assert names <= {p.name for p in out.iterdir()}
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["history"]["val_accuracy"]) == 3
    assert hist["history"]["accuracy"][-1] > 0.7
    plots = importlib.util.find_spec("matplotlib") is not None
    assert (
        main(
            [
                "evaluate",
                "tests.test_train_cli:mlp",
                "--weights",
                str(out / "weights.npz"),
                "--limit",
                "2000",
                *(["--mistakes", str(out / "mistakes.png")] if plots else []),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    if plots:
        assert f"wrote {out / 'mistakes.png'}: the 32 surest mistakes" in text
    acc = float(text.split("accuracy ")[1].split(" ")[0])
    assert acc > 0.7
    # the confusion matrix: ten rows whose counts add up to the 2000 images, and whose
    # diagonal over the total is the accuracy printed above
    rows = [ln for ln in text.splitlines() if ln[:1].isdigit() and ln.rstrip().endswith("%")]
    counts = np.array(
        [[int(c.replace(",", "")) for c in r.split("|")[0].split()[1:]] for r in rows]
    )
    assert counts.shape == (10, 10) and counts.sum() == 2000
    assert abs(np.trace(counts) / 2000 - acc) < 1e-4
    assert "most frequent mistakes (true → predicted):" in text
    # a run's directory stands for its weights.npz, and gives its settings as the file does
    args = argparse.Namespace(weights=str(out), model="tests.test_train_cli:mlp", data=None)
    assert _use_run_settings(args)["epochs"] == 3 and args.weights == str(out / "weights.npz")
    assert (
        main(["evaluate", "tests.test_train_cli:mlp", "--weights", str(out), "--limit", "2000"])
        == 0
    )
    assert float(capsys.readouterr().out.split("accuracy ")[1].split(" ")[0]) == acc


def test_evaluate_finds_the_weights_train_wrote(tmp_path, monkeypatch, capsys):
    """Without --weights, evaluate takes the latest run's weights (train's default output), and
    says what to do when there is none: never an evaluation of untrained weights.  A second
    run writes runs/MODEL-2: the first run's weights are kept."""
    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:mlp"
    with pytest.raises(SystemExit):  # a run that cannot start leaves no directory behind
        main(["train", model, "--input-shape", "1,20,20", "--dataset", "mnist", "--limit", "9"])
    assert "mnist images are 1x28x28" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    with pytest.raises(SystemExit):
        main(["evaluate", model, "--limit", "100"])
    err = capsys.readouterr().err
    assert "no weights to use: no run of mnist_mlp in runs/ has weights.npz" in err
    assert f"tinycnn train {model}" in err and "--weights FILE" in err
    accuracy = {}
    for run, epochs in (("mnist_mlp", "1"), ("mnist_mlp-2", "2")):
        argv = ["train", model, "--epochs", epochs, "--limit", "200", "--quiet", "--augment", "0"]
        first = (tmp_path / "runs" / "mnist_mlp" / "weights.npz").read_bytes() if accuracy else b""
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert (tmp_path / "runs" / run / "weights.npz").is_file()
        if accuracy:  # the first run is untouched
            assert (tmp_path / "runs" / "mnist_mlp" / "weights.npz").read_bytes() == first
            assert "earlier runs of mnist_mlp are kept: this one writes to runs/mnist_mlp-2" in out
        accuracy[run] = out.split("test accuracy: ")[1].split(",")[0]
        assert main(["evaluate", model, "--limit", "200"]) == 0
        text = capsys.readouterr().out
        assert (
            f"with runs/{run}/weights.npz on 200 mnist test images: accuracy {accuracy[run]},"
            in text
        )
    (tmp_path / "runs" / "mnist_mlp-3").mkdir()  # an interrupted run: no weights, skipped
    (tmp_path / "runs" / "mnist_mlp-old").mkdir()  # not a run number
    assert main(["evaluate", model, "--limit", "200"]) == 0
    assert "runs/mnist_mlp-2/weights.npz" in capsys.readouterr().out


def test_run_directories(tmp_path):
    from tinycnn.train.cli import latest_weights, new_run_dir

    assert new_run_dir("m", tmp_path) == tmp_path / "m"
    assert latest_weights("m", tmp_path) is None
    for name in ("m", "m-2", "m-10", "m-x", "m-1", "mm-3", "m-4.txt"):
        (tmp_path / name).mkdir()
    assert new_run_dir("m", tmp_path) == tmp_path / "m-11"  # numbers, not names, order runs
    assert latest_weights("m", tmp_path) is None
    for name in ("m", "m-2", "mm-3"):
        (tmp_path / name / "weights.npz").write_bytes(b"")
    assert latest_weights("m", tmp_path) == tmp_path / "m-2" / "weights.npz"


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(
            [
                "train",
                "tests.test_train_cli:mlp",
                "--input-shape",
                "3,64,64",
                "--out",
                str(tmp_path),
            ]
        )
    assert e.value.code == 2
    assert "no bundled dataset fits input shape (3, 64, 64)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "tests.test_train_cli:mlp", "--epochs", "0"])
    assert "argument --epochs: must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "tests.test_train_cli:mlp", "--weights", str(tmp_path / "none.npz")])
    assert "none.npz: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "tests.test_train_cli:mlp", "--weights", str(tmp_path)])
    assert "a directory without weights.npz" in capsys.readouterr().err


def test_same_seed_same_weights(tmp_path, capsys):
    """``--seed`` fixes the whole run, initial weights included."""
    weights = []
    for run in ("a", "b"):
        out = tmp_path / run
        argv = ["train", "tests.test_train_cli:mlp", "--epochs", "1", "--limit", "300",
                "--out", str(out), "--quiet", "--seed", "7"]  # fmt: skip
        assert main(argv) == 0
        weights.append(np.load(out / "weights.npz"))
    capsys.readouterr()
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key], err_msg=key)


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys):
    """Ctrl-C in epoch 3 of 4: the two finished epochs are in checkpoint.npz, and ``--resume``
    ends with the weights, history and log of the run that was never interrupted, bit for bit
    (shuffles, dropout masks and shifts are drawn per epoch from the seed)."""
    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:mlp"
    argv = ["train", model, "--epochs", "4", "--limit", "200", "--quiet", "--augment", "1"]
    assert main([*argv, "--out", "whole"]) == 0
    capsys.readouterr()

    step = tc.optim.Optimizer.step
    calls = []

    def interrupted(self):  # 2 steps per epoch: the 5th is epoch 3's first
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        step(self)

    monkeypatch.setattr(tc.optim.Optimizer, "step", interrupted)
    assert main(argv) == 130
    out = capsys.readouterr().out
    assert (
        "interrupted in epoch 3 of 4: the 2 finished epochs are saved in "
        "runs/mnist_mlp/checkpoint.npz; continue with "
        f"`tinycnn train {model} --resume runs/mnist_mlp`" in out
    )
    assert not (tmp_path / "runs" / "mnist_mlp" / "weights.npz").exists()
    monkeypatch.setattr(tc.optim.Optimizer, "step", step)

    with pytest.raises(SystemExit):  # a resumed run keeps its settings
        main(["train", model, "--resume", "--epochs", "9"])
    assert "--epochs 9 differs from the run's 4; a resumed run keeps its settings" in (
        capsys.readouterr().err
    )
    log = tmp_path / "runs" / "mnist_mlp" / "log.csv"  # epoch 3 logged, then interrupted
    log.write_text(log.read_text() + "2,0.5,1.0,0.5,1.0,0.001\n")
    assert main(["train", model, "--resume", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "resuming runs/mnist_mlp at epoch 3: training mnist_mlp on mnist" in out
    assert "2 epochs in" in out
    run, whole = tmp_path / "runs" / "mnist_mlp", tmp_path / "whole"
    a, b = np.load(run / "weights.npz"), np.load(whole / "weights.npz")
    assert a.files == b.files
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (run, whole))
    assert ha["history"] == hb["history"] and ha["epoch"] == hb["epoch"] == [0, 1, 2, 3]
    assert (run / "log.csv").read_text() == (whole / "log.csv").read_text()

    with pytest.raises(SystemExit):  # nothing left to resume
        main(["train", model, "--resume"])
    assert "no unfinished run of mnist_mlp in runs/" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", model, "--resume", "whole"])
    assert "the run finished its 4 epochs already" in capsys.readouterr().err


def test_evaluate_builds_the_model_the_run_trained(tmp_path, monkeypatch, capsys):
    """run.json gives evaluate (and predict, maps) the run's --input-shape and --num-classes."""
    monkeypatch.chdir(tmp_path)
    argv = ["train", "lenet5", "--input-shape", "1,28,28", "--epochs", "1", "--limit", "200",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["evaluate", "lenet5", "--limit", "100"]) == 0  # no --input-shape needed
    assert "on 100 mnist test images: accuracy" in capsys.readouterr().out
    assert main(["maps", "lenet5", "-o", "m.png"]) == 0
    assert "mnist test image 0: label 7" in capsys.readouterr().out
    (tmp_path / "runs" / "lenet5" / "run.json").write_text("{not json")
    with pytest.raises(SystemExit):
        main(["evaluate", "lenet5", "--limit", "100"])
    assert "runs/lenet5/run.json: not a readable run.json (" in capsys.readouterr().err


def test_runs_lists_finished_and_stopped_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["runs"]) == 0
    assert "no runs in runs/ (tinycnn train MODEL makes one)" in capsys.readouterr().out
    model = "tests.test_train_cli:mlp"
    argv = ["train", model, "--epochs", "2", "--limit", "200", "--quiet", "--augment", "0"]
    assert main(argv) == 0 and main(argv) == 0  # runs/mnist_mlp and runs/mnist_mlp-2
    (tmp_path / "runs" / "mnist_mlp-2" / "weights.npz").unlink()  # as if stopped after 2
    (tmp_path / "runs" / "mnist_mlp-10").mkdir()  # numbers sort as numbers
    (tmp_path / "runs" / "mnist_mlp-10" / "run.json").write_text(
        json.dumps({"model": model, "epochs": 5, "dataset": "mnist"})
    )
    capsys.readouterr()
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "model", "epochs", "data", "last", "logged", "state"]
    rows = [line.split() for line in lines[2:5]]
    assert [r[0] for r in rows] == ["runs/mnist_mlp", "runs/mnist_mlp-2", "runs/mnist_mlp-10"]
    assert rows[0][2:4] == ["2/2", "mnist"] and rows[0][4] == "val_accuracy"
    assert rows[0][-1] == "finished" and rows[1][-1] == "stopped"
    assert rows[2][2] == "0/5" and lines[4].endswith("no epoch finished")
    assert lines[5] == f"resume runs/mnist_mlp-2: tinycnn train {model} --resume runs/mnist_mlp-2"
    assert lines[6] == (
        f"resume runs/mnist_mlp-10: tinycnn train {model} --resume runs/mnist_mlp-10"
    )
    assert main(["runs", "lenet5"]) == 0
    assert "no runs of lenet5 in runs/" in capsys.readouterr().out
    (tmp_path / "runs" / "mnist_mlp-10" / "run.json").write_text("{broken")  # listed, not fatal
    assert main(["runs"]) == 0
    assert capsys.readouterr().out.splitlines()[4].endswith("run.json unreadable")


def test_ctrl_c_before_the_first_step_says_nothing_was_saved(tmp_path, monkeypatch, capsys):
    """Interrupted while fit checks the data (model.history does not exist yet): --resume
    starts the run again, with its settings, and ends where an uninterrupted run does."""
    import tinycnn.train.loop as loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    check_inputs = loop.check_inputs
    monkeypatch.setattr(loop, "check_inputs", interrupted)
    argv = ["train", "tests.test_train_cli:mlp", "--epochs", "2", "--limit", "50", "--quiet"]
    assert main(argv) == 130
    assert (
        "interrupted in epoch 1 of 2: no epoch finished, nothing saved; start it again with its "
        f"settings: `tinycnn train {argv[1]} --resume runs/mnist_mlp`" in capsys.readouterr().out
    )
    monkeypatch.setattr(loop, "check_inputs", check_inputs)
    assert main(["train", argv[1], "--resume", "--quiet"]) == 0  # from the start, its settings
    assert "resuming runs/mnist_mlp at epoch 1: training" in capsys.readouterr().out
    assert main([*argv, "--out", "whole"]) == 0  # the same run, never interrupted
    run, whole = tmp_path / "runs" / "mnist_mlp", tmp_path / "whole"
    a, b = np.load(run / "weights.npz"), np.load(whole / "weights.npz")
    for key in b.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert (run / "log.csv").read_text() == (whole / "log.csv").read_text()


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_a_new_run_never_overwrites_one_given_with_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:mlp"
    argv = ["train", model, "--epochs", "1", "--limit", "100", "--quiet", "--augment", "0"]
    assert main([*argv, "--out", "run"]) == 0
    before = _files(tmp_path / "run")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*argv, "--out", "run", "--lr", "0.1"])
    assert (
        "--out run: holds a run already (run.json, checkpoint.npz, weights.npz); a new run never "
        "overwrites one: give another --out, or delete run first" in capsys.readouterr().err
    )
    (tmp_path / "run" / "weights.npz").unlink()  # a stopped run: resuming is what was meant
    del before["weights.npz"]
    with pytest.raises(SystemExit):
        main([*argv, "--out", "run"])
    assert (
        "holds a run already (run.json, checkpoint.npz); a new run never overwrites one: "
        f"continue it with `tinycnn train {model} --resume run`, give another --out"
    ) in capsys.readouterr().err
    assert _files(tmp_path / "run") == before  # not a byte changed
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        main([*argv, "--out", "file"])
    assert "--out file: is a file, not a directory" in capsys.readouterr().err


def test_runs_started_at_once_never_share_a_directory(tmp_path, monkeypatch, capsys):
    """Another run takes the directory while this one loads its data: this one moves on to the
    next number, or, with the same --out, is refused; the other's run.json is untouched."""
    import tinycnn.train.cli as train_cli

    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:mlp"
    argv = ["train", model, "--epochs", "1", "--limit", "100", "--quiet", "--augment", "0"]
    load = train_cli._load
    other = '{"model": "another run"}\n'

    def meanwhile(directory):
        def loading(*args, **kwargs):
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "run.json").write_text(other)
            return load(*args, **kwargs)

        return loading

    monkeypatch.setattr(train_cli, "_load", meanwhile(tmp_path / "runs" / "mnist_mlp"))
    assert main(argv) == 0
    assert "this one writes to runs/mnist_mlp-2" in capsys.readouterr().out
    assert (tmp_path / "runs" / "mnist_mlp" / "run.json").read_text() == other
    assert json.loads((tmp_path / "runs" / "mnist_mlp-2" / "run.json").read_text())["model"] == (
        model
    )
    assert (tmp_path / "runs" / "mnist_mlp-2" / "weights.npz").is_file()
    monkeypatch.setattr(train_cli, "_load", meanwhile(tmp_path / "same"))
    with pytest.raises(SystemExit):
        main([*argv, "--out", "same"])
    assert "--out same: holds a run already (run.json)" in capsys.readouterr().err
    assert _files(tmp_path / "same") == {"run.json": other.encode()}


def test_a_disk_error_keeps_the_saved_epochs_and_resume_finishes_the_run(
    tmp_path, monkeypatch, capsys
):
    """A full disk stops the run saying which epochs checkpoint.npz holds; --resume continues,
    and also finishes a run stopped after its last checkpoint but before weights.npz, with the
    results of the run that never stopped."""
    from tinycnn import io

    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:mlp"
    argv = ["train", model, "--epochs", "3", "--limit", "200", "--quiet", "--augment", "1"]
    assert main([*argv, "--out", "whole"]) == 0
    save_state, calls = io.save_state, []

    def disk_full_after(n):
        def save(path, *args, **kwargs):
            calls.append(path)
            if len(calls) > n:
                raise OSError(28, "No space left on device")
            return save_state(path, *args, **kwargs)

        return save

    monkeypatch.setattr(io, "save_state", disk_full_after(1))  # epoch 1's checkpoint only
    with pytest.raises((SystemExit, OSError)):
        main([*argv, "--out", "full"])
    out = capsys.readouterr().out
    assert (
        "training stopped by an error: the finished epoch is saved in full/checkpoint.npz; "
        f"continue with `tinycnn train {model} --resume full`" in out
    )
    assert io.load_meta(tmp_path / "full" / "checkpoint.npz")["epoch"] == 1

    calls.clear()
    monkeypatch.setattr(io, "save_state", disk_full_after(2))  # epochs 2 and 3, no weights.npz
    with pytest.raises((SystemExit, OSError)):
        main(["train", model, "--resume", "full", "--quiet"])
    out = capsys.readouterr().out
    assert "weights.npz not written: the 3 finished epochs are saved in full/checkpoint.npz" in out
    assert not (tmp_path / "full" / "weights.npz").exists()

    monkeypatch.setattr(io, "save_state", save_state)
    assert main(["train", model, "--resume", "full", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "finishing full: its 3 epochs are trained (in checkpoint.npz)" in out
    assert "wrote weights.npz, history.json" in out
    full, whole = tmp_path / "full", tmp_path / "whole"
    a, b = np.load(full / "weights.npz"), np.load(whole / "weights.npz")
    for key in b.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (full, whole))
    assert ha["history"] == hb["history"] and ha["epoch"] == [0, 1, 2]
    assert (full / "log.csv").read_text() == (whole / "log.csv").read_text()
    with pytest.raises(SystemExit):
        main(["train", model, "--resume", "full"])
    assert "the run finished its 3 epochs already" in capsys.readouterr().err


def test_resume_refuses_files_tinycnn_train_did_not_write(tmp_path, monkeypatch, capsys):
    from tinycnn import io

    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:mlp"
    argv = ["train", model, "--epochs", "2", "--limit", "100", "--quiet", "--augment", "0"]
    assert main([*argv, "--out", "run"]) == 0
    run = tmp_path / "run"
    (run / "weights.npz").unlink()
    checkpoint, settings = (run / "checkpoint.npz").read_bytes(), (run / "run.json").read_text()
    capsys.readouterr()

    def refused(message, where="run"):
        with pytest.raises(SystemExit):
            main(["train", model, "--resume", where])
        assert message in capsys.readouterr().err

    tc.graph.clear_session()  # the layer names of the run's model
    trained = mlp()
    trained.compile(optimizer=tc.optim.Adam.keras(None), loss="categorical_crossentropy")
    io.save_checkpoint(run / "checkpoint.npz", trained, trained.optimizer, 1)  # ModelCheckpoint's
    refused(
        "--resume run: run/checkpoint.npz holds no training history, so tinycnn train did not "
        "write it (a ModelCheckpoint file?)"
    )
    (run / "checkpoint.npz").write_bytes(checkpoint)
    for key, value, rule in (
        ("epochs", "five", "not an integer"),
        ("optimizer", "lion", "not one of adam, sgd, rmsprop, adamw"),
        ("input_shape", 5, "not a list of integers"),
        ("lr", None, "not a number"),
    ):
        (run / "run.json").write_text(json.dumps({**json.loads(settings), key: value}))
        refused(f"run/run.json: {key} is {value!r}, {rule}; repair or delete it")
    (run / "run.json").unlink()
    refused("--resume run: not a tinycnn train run to continue (it has no run.json)")
    (run / "checkpoint.npz").unlink()
    refused("(it has no run.json and no checkpoint.npz)")
    (run / "run.json").write_text(settings)  # stopped before its first epoch ended
    assert main(["train", model, "--resume", "run", "--quiet"]) == 0
    assert "resuming run at epoch 1: training mnist_mlp" in capsys.readouterr().out
    refused("--resume run: the run finished its 2 epochs already (its weights.npz is written)")


def test_runs_lists_every_run_whatever_its_checkpoint_holds(tmp_path, monkeypatch, capsys):
    """One odd checkpoint is one odd row: the listing goes on."""
    from tinycnn import io

    monkeypatch.chdir(tmp_path)
    for name, history in (
        ("m", {"history": {"val_loss": [0.5, None], "loss": [0.5, 0.25]}}),  # NaN: JSON null
        ("m-2", ["not", "a", "dict"]),
        ("m-3", {"history": {"loss": 7}}),
    ):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "run.json").write_text('{"model": "m", "epochs": 4}')
        meta = {"kind": "training", "epoch": 2, "history": history}
        io.save_state(tmp_path / "runs" / name / "checkpoint.npz", {}, meta)
    assert main(["runs"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:5]]
    assert rows[0] == ["runs/m", "m", "2/4", "loss", "0.2500", "stopped"]
    assert rows[1] == ["runs/m-2", "m", "?/4", "checkpoint", "unreadable"]
    assert rows[2] == ["runs/m-3", "m", "?/4", "checkpoint", "unreadable"]


def test_a_run_being_trained_is_locked_against_a_second_train(tmp_path, monkeypatch, capsys):
    """While a process trains a run, ``--resume`` of that run is refused naming the process,
    ``--resume`` alone passes it over and ``tinycnn runs`` says it is training; once that
    process is gone (killed: the OS drops its lock), the run resumes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tinycnn.train import runlock

    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:mlp"
    argv = ["train", model, "--epochs", "2", "--limit", "200", "--quiet", "--augment", "0"]
    run = tmp_path / "runs" / "mnist_mlp"
    seen = []
    step = tc.optim.Optimizer.step

    def watched(self):  # this process holds the lock while it trains
        seen.append(runlock.busy(run))
        step(self)

    monkeypatch.setattr(tc.optim.Optimizer, "step", watched)
    assert main(argv) == 0
    monkeypatch.setattr(tc.optim.Optimizer, "step", step)
    assert seen and all(e is not None and e.pid == os.getpid() for e in seen)
    assert runlock.busy(run) is None  # released when the command ended ...
    assert not (run / "train.lock").exists()  # ... and its file deleted
    (run / "weights.npz").unlink()  # as if stopped after its last epoch
    capsys.readouterr()

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from tinycnn.train.runlock import holding\n"
         "with holding(sys.argv[1]):\n    print('held', flush=True); sys.stdin.read()",
         str(run)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(tc.__file__).parents[1])},
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(SystemExit):
            main(["train", model, "--resume", "runs/mnist_mlp"])
        assert (
            f"--resume runs/mnist_mlp: runs/mnist_mlp is being trained by process {holder.pid} "
            "now; two runs at once would write over each other's epochs"
        ) in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["train", model, "--resume"])
        assert (
            "no unfinished run of mnist_mlp in runs/ (one with a run.json and no "
            f"weights.npz yet); runs/mnist_mlp is being trained by process {holder.pid} now "
            "(not stopped)"
        ) in capsys.readouterr().err
        assert main(["runs"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[2].endswith(f"training (pid {holder.pid})")
        assert "--resume" not in out
    finally:
        holder.kill()
        holder.wait()
    assert (run / "train.lock").is_file()  # a process killed outright leaves its file ...
    assert runlock.busy(run) is None  # ... unlocked
    assert main(["train", model, "--resume", "--quiet"]) == 0
    assert (run / "weights.npz").is_file() and not (run / "train.lock").exists()


def test_the_run_lock_admits_one_holder_at_a_time_under_contention(tmp_path):
    """Four processes take and drop the lock of one run as fast as they can; whoever holds it
    creates a marker file exclusively, so two holders at once (a lock taken on a lock file
    already unlinked) would fail.  Every process gets the lock some of the time."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import os, sys\n"
        "from tinycnn.train.runlock import RunBusy, holding\n"
        "run, got = sys.argv[1], 0\n"
        "for _ in range(1000):\n"
        "    try:\n"
        "        with holding(run):\n"
        "            fd = os.open(os.path.join(run, 'marker'), os.O_CREAT | os.O_EXCL)\n"
        "            os.close(fd); os.unlink(os.path.join(run, 'marker')); got += 1\n"
        "    except RunBusy:\n"
        "        pass\n"
        "print(got)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(tc.__file__).parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(4)
    ]  # fmt: skip
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    assert all(int(out) > 0 for out, _ in results)
    assert not (tmp_path / "train.lock").exists()


def tiny_imagenet_head(input_shape=(1, 28, 28), num_classes=1000):
    """A stand-in zoo builder: ImageNet's 1000 classes unless told otherwise."""
    return tc.Sequential(
        [tc.Input(input_shape), L.Flatten(), L.Dense(num_classes, activation="softmax")],
        name="tiny_zoo",
    )


def test_a_zoo_model_is_built_with_one_output_per_class_of_the_dataset(
    tmp_path, monkeypatch, capsys
):
    """Zoo builders default to ImageNet's 1000 classes; on a bundled dataset (10 classes) the
    command line builds them with 10, as with --data.  A model of another width is refused
    before any image is read or any run directory made."""
    import zoo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(zoo.MODELS, "tiny_zoo", tiny_imagenet_head)
    argv = ["--epochs", "1", "--limit", "100", "--quiet", "--augment", "0"]
    assert main(["train", "tiny_zoo", *argv]) == 0
    assert (
        json.loads((tmp_path / "runs" / "tiny_zoo" / "run.json").read_text())["num_classes"] == 10
    )
    assert main(["evaluate", "tiny_zoo", "--limit", "50"]) == 0
    assert "tiny_zoo with runs/tiny_zoo/weights.npz on 50 mnist test images" in (
        capsys.readouterr().out
    )
    for cmd in (["train", *argv], ["evaluate", "--limit", "50"]):
        with pytest.raises(SystemExit) as e:
            main([cmd[0], "tests.test_train_cli:mlp", "--num-classes", "3", *cmd[1:]])
        assert e.value.code == 2
        assert (
            "mnist_mlp has 3 outputs but mnist has 10 classes: give --num-classes 10 (if MODEL "
            "takes it) or a model with one output per class" in capsys.readouterr().err
        )
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny_zoo"]


def two_heads(input_shape=(1, 28, 28), num_classes=10):
    x = tc.Input(input_shape)
    h = L.Flatten()(x)
    return tc.Model(x, [L.Dense(num_classes)(h), L.Dense(1)(h)], name="two_heads")


def test_bad_settings_are_refused_before_a_run_directory_is_made(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = "tests.test_train_cli:mlp"
    cases = [
        (["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        (["--limit", "0"], "argument --limit: must be >= 1, got 0"),
        (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
        (["--augment", "-1"], "argument --augment: must be >= 0, got -1"),
        (["--val-split", "1.5"], "argument --val-split: must be in [0, 1), got 1.5"),
        (["--lr", "nan"], "argument --lr: must be a finite number, got nan"),
        (["--lr", "-1"], "argument --lr: must be >= 0, got -1"),
        (["--augment", "28"], "--augment 28: must be smaller than the images' 28×28"),
        (
            ["--limit", "5"],
            "--val-split 0.1 of 5 training images (--limit 5) holds out 0 to validate on and "
            "leaves 5 to train on; both need images: give a larger --limit, or --val-split 0",
        ),
    ]
    for flags, message in cases:
        with pytest.raises(SystemExit) as e:
            main(["train", model, "--epochs", "1", *flags])
        assert e.value.code == 2
        assert message in capsys.readouterr().err, flags
    with pytest.raises(SystemExit):
        main(["maps", model, "--index", "-1"])
    assert "argument --index: must be >= 0, got -1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "tests.test_train_cli:two_heads", "--epochs", "1"])
    assert (
        "two_heads has 2 outputs ((None, 10), (None, 1)); tinycnn train, evaluate, predict and "
        "maps take a classifier with one output" in capsys.readouterr().err
    )
    assert not (tmp_path / "runs").exists()


def test_out_never_overwrites_files_a_run_would_write(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mywork"
    mine.mkdir()
    (mine / "log.csv").write_text("my notes\n")
    (mine / "history.json").write_text("{}")
    argv = ["train", "tests.test_train_cli:mlp", "--epochs", "1", "--limit", "100", "--quiet"]
    with pytest.raises(SystemExit):
        main([*argv, "--out", "mywork"])
    assert (
        "--out mywork: holds log.csv, history.json, which a run writes; a run never overwrites "
        "files it did not write: give another --out, or move them away first"
    ) in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["history.json", "log.csv"]
    assert (mine / "log.csv").read_text() == "my notes\n"
    (mine / "log.csv").unlink()
    (mine / "history.json").unlink()
    (mine / "notes.txt").write_text("kept")  # other files may stay beside the run
    assert main([*argv, "--out", "mywork"]) == 0
    assert (mine / "notes.txt").read_text() == "kept" and (mine / "weights.npz").is_file()
