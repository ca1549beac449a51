"""Feature maps: Model.feature_maps, tinycnn.graph.maps and ``tinycnn maps``."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
from tinycnn import cli
from tinycnn import layers as L
from tinycnn.graph import clear_session
from tinycnn.graph import maps as M

PNG = b"\x89PNG\r\n\x1a\n"
pytest.importorskip("matplotlib", reason="needs matplotlib (the plot extra)")


def _small():
    clear_session()
    inp = tc.Input((2, 9, 9))
    x = L.Conv2D(3, 3, name="conv")(inp)
    x = L.ReLU(name="relu")(x)
    x = L.MaxPool2D(2, name="pool")(x)
    last = L.Conv2D(2, 1, name="last")(x)
    out = L.Dense(4, name="fc")(L.Flatten(name="flat")(last))
    return tc.Model(inp, out, name="small")


def test_feature_maps_are_the_layer_outputs():
    model = _small()
    x = np.random.default_rng(0).standard_normal((2, 2, 9, 9)).astype(np.float32)
    maps = model.feature_maps(x)
    assert list(maps) == ["input", "conv", "relu", "pool", "last"]  # the image outputs
    conv = model.get_layer("conv")
    ref = F.conv2d(tc.tensor(x), conv.kernel, conv.bias).numpy()
    np.testing.assert_allclose(maps["conv"], ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(maps["relu"], np.maximum(maps["conv"], 0))
    np.testing.assert_array_equal(maps["input"], x)
    assert maps["last"].shape == (2, 2, 3, 3)
    only = model.feature_maps(x, "fc")  # any layer by name, here a flat one
    np.testing.assert_allclose(only["fc"], model(x).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="no layer named 'nope'; the layers are input, conv"):
        model.feature_maps(x, ["conv", "nope"])


def test_feature_maps_record_no_tape():
    model = _small()
    x = tc.tensor(np.ones((1, 2, 9, 9), np.float32), requires_grad=True)
    out = model.feature_maps(x, ["conv"])["conv"]
    assert isinstance(out, np.ndarray) and out.shape == (1, 3, 7, 7)
    assert x.grad is None


def test_plot_writes_an_image_and_refuses_flat_layers(tmp_path):
    model = _small()
    image = np.random.default_rng(1).standard_normal((2, 9, 9)).astype(np.float32)
    path = M.plot_feature_maps(model, image, tmp_path / "m.png", channels=2, title="t")
    assert path.read_bytes()[:8] == PNG
    names, total = M.pick_layers(model)
    assert names == ["input", "conv", "pool", "last"] and total == 4  # inputs, convs, pools
    with pytest.raises(ValueError, match="fc has no spatial output to draw"):
        M.plot_feature_maps(model, image, tmp_path / "x.png", ["conv", "fc"])
    with pytest.raises(ValueError, match="channels must be >= 1"):
        M.plot_feature_maps(model, image, tmp_path / "x.png", channels=0)


def test_plot_channels_last(tmp_path):
    clear_session()
    inp = tc.Input((9, 9, 2))
    model = tc.Model(inp, L.Conv2D(3, 3, data_format="channels_last", name="c")(inp))
    a = np.arange(7 * 7 * 3).reshape(7, 7, 3)
    np.testing.assert_array_equal(M._hw_planes(a, True)[2], a[:, :, 2])  # (H, W, C) -> planes
    path = M.plot_feature_maps(model, np.zeros((9, 9, 2), np.float32), tmp_path / "c.png", ["c"])
    assert path.read_bytes()[:8] == PNG


def test_many_layers_are_thinned_evenly(monkeypatch):
    clear_session()
    inp = x = tc.Input((1, 8, 8))
    for k in range(20):
        x = L.Conv2D(1, 1, name=f"c{k}")(x)
    names, total = M.pick_layers(tc.Model(inp, x))
    assert total == 21 and len(names) == M.MAX_ROWS
    assert names[0] == "input" and names[-1] == "c19"


@pytest.fixture
def lenet_weights(tmp_path):
    import zoo

    clear_session()
    path = tmp_path / "w.npz"
    zoo.lenet5().save_weights(path)
    return path


def test_cli_maps(tmp_path, lenet_weights, capsys):
    out = tmp_path / "maps.png"
    argv = ["maps", "lenet5", "--weights", str(lenet_weights), "--index", "3", "-o", str(out)]
    assert cli.main([*argv, "--channels", "4"]) == 0
    text = capsys.readouterr().out
    assert f"lenet5 ({lenet_weights}), mnist test image 3: label 0, predicted" in text
    assert "5 layers, up to 4 channels each" in text and out.read_bytes()[:8] == PNG
    assert cli.main([*argv, "--layers", "conv2,pool2"]) == 0
    assert "2 layers, up to 8 channels" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--index", "10000"], "--index 10000: the mnist test split has 10000 images"),
        (["--layers", "conv1,convX"], "no layer named 'convX'"),
        (["--layers", "fc1"], "fc1 has no spatial output to draw"),
        (["--channels", "0"], "argument --channels: must be >= 1, got 0"),
    ],
)
def test_cli_maps_errors(tmp_path, lenet_weights, capsys, extra, message):
    argv = ["maps", "lenet5", "--weights", str(lenet_weights), "-o", str(tmp_path / "m.png")]
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, *extra])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()


def test_cli_maps_finds_the_trained_weights(tmp_path, lenet_weights, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["maps", "lenet5"]) == 0
    assert "(untrained initial weights)" in capsys.readouterr().out
    (tmp_path / "runs" / "lenet5").mkdir(parents=True)
    lenet_weights.rename(tmp_path / "runs" / "lenet5" / "weights.npz")
    assert cli.main(["maps", "lenet5"]) == 0
    assert "(runs/lenet5/weights.npz)" in capsys.readouterr().out
    assert (tmp_path / "lenet5_maps.png").read_bytes()[:8] == PNG
    with pytest.raises(SystemExit):
        cli.main(["maps", "lenet5", "--weights", "missing.npz"])
    assert "--weights missing.npz: no such file" in capsys.readouterr().err


def test_plot_filters(tmp_path, monkeypatch):
    import matplotlib.axes

    clear_session()
    inp = tc.Input((3, 8, 8))
    x = L.Conv2D(5, 3, name="rgb")(inp)
    model = tc.Model(inp, L.Conv2D(2, 3, name="deep")(L.MaxPool2D(2, name="pool")(x)))
    shown = []
    real = matplotlib.axes.Axes.imshow
    monkeypatch.setattr(
        matplotlib.axes.Axes, "imshow", lambda ax, a, **k: shown.append(a) or real(ax, a, **k)
    )
    path = M.plot_filters(model, tmp_path / "f.png")  # the first Conv2D: rgb
    assert path.read_bytes()[:8] == PNG
    kernel = model.get_layer("rgb").kernel.numpy()
    assert len(shown) == 5 and shown[0].shape == (3, 3, 3)  # one colour cell per filter
    k0 = np.moveaxis(kernel[0], 0, -1)
    np.testing.assert_allclose(shown[0], (k0 - k0.min()) / (k0.max() - k0.min()), rtol=1e-6)
    with pytest.raises(ValueError, match="deep reads 5 channels; filters are drawn for a layer"):
        M.plot_filters(model, tmp_path / "x.png", "deep")
    with pytest.raises(ValueError, match="pool is a MaxPool2D layer, not a Conv2D"):
        M.plot_filters(model, tmp_path / "x.png", "pool")
    clear_session()
    inp = tc.Input((1, 4, 4))
    with pytest.raises(ValueError, match='model "flat" has no Conv2D layer'):
        M.plot_filters(tc.Model(inp, L.Flatten()(inp), name="flat"), tmp_path / "x.png")


def test_cli_filters(tmp_path, lenet_weights, capsys):
    out = tmp_path / "f.png"
    assert (
        cli.main(["maps", "lenet5", "--weights", str(lenet_weights), "--filters", "-o", str(out)])
        == 0
    )
    assert capsys.readouterr().out.strip() == f"wrote {out}" and out.read_bytes()[:8] == PNG
    with pytest.raises(SystemExit):
        cli.main(["maps", "lenet5", "--filters", "--layers", "conv2", "-o", str(out)])
    assert "conv2 reads 6 channels" in capsys.readouterr().err


def test_mistakes_surest_first_and_drawn(tmp_path):
    from tinycnn.train.mistakes import plot_mistakes, worst_mistakes

    y = np.array([0, 1, 2, 0, 1])
    scores = np.array(
        [[0.9, 0.1, 0.0], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0]]
    )
    assert worst_mistakes(y, scores).tolist() == [3, 2, 1]  # wrong ones by their top score
    assert worst_mistakes(np.eye(3)[y], scores, count=2).tolist() == [3, 2]  # one-hot labels
    gray = np.random.default_rng(0).random((5, 1, 6, 6))
    path, n = plot_mistakes(gray, y, scores, tmp_path / "m.png", count=2, title="t")
    assert n == 2 and path.read_bytes()[:8] == PNG
    _, n = plot_mistakes(
        np.random.default_rng(0).random((5, 3, 6, 6)), y, scores, tmp_path / "c.png"
    )
    assert n == 3
    _, n = plot_mistakes(gray, scores.argmax(-1), scores, tmp_path / "none.png")
    assert n == 0 and (tmp_path / "none.png").exists()  # nothing wrong: an empty page, said so
    with pytest.raises(ValueError, match="count must be >= 1"):
        plot_mistakes(gray, y, scores, tmp_path / "x.png", count=0)
