"""A user's own labelled images, one folder per class (tinycnn.datasets.folder), and
``tinycnn train/evaluate/predict/maps --data DIR``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinycnn import cli
from tinycnn.datasets import folder_classes, load_image_folder

Image = pytest.importorskip("PIL.Image", reason="needs Pillow (the plot extra)")


def _pattern(kind: str, rng, size=24) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    base = {
        "horizontal": (yy // 3) % 2,
        "vertical": (xx // 3) % 2,
        "dots": (yy % 4 == 0) & (xx % 4 == 0),
    }.get(kind, np.zeros((size, size)))
    return np.clip(base * 0.8 + rng.random((size, size)) * 0.2, 0, 1)


def make_folder(root, counts=None, split=False, rgb=False):
    """Stripes and dots as PNG files: ``root/<class>/i.png`` (or under train/ and test/)."""
    rng = np.random.default_rng(0)
    counts = counts or {"horizontal": 7, "vertical": 7, "dots": 7}
    for kind, n in counts.items():
        for i in range(n):
            part = ("train" if i % 5 != 4 else "test") if split else ""
            folder = root / part / kind
            folder.mkdir(parents=True, exist_ok=True)
            a = (_pattern(kind, rng) * 255).astype(np.uint8)
            img = Image.fromarray(np.stack([a, a // 2, a], -1) if rgb else a)
            img.save(folder / f"{i:02d}.png")
    return root


@pytest.mark.parametrize("split", [False, True])
def test_both_layouts_give_the_same_split(tmp_path, split):
    root = make_folder(tmp_path / "data", split=split)
    assert folder_classes(root) == ["dots", "horizontal", "vertical"]  # sorted folder names
    x, y = load_image_folder(root, "train", (1, 12, 12))
    assert x.shape == (18, 1, 12, 12) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    assert y.tolist()[:6] == [0, 1, 2, 0, 1, 2]  # the classes in turn
    xt, yt = load_image_folder(root, "test", (3, 8, 10), one_hot=True)
    assert xt.shape == (3, 3, 8, 10) and yt.argmax(1).tolist() == [0, 1, 2]
    # image 4 of each class is the test one, resized as Keras does (no inversion, no crop)
    a = np.asarray(Image.open(root / ("test" if split else "") / "dots" / "04.png"), np.float32)
    ref = np.asarray(Image.fromarray(a / 255, mode="F").resize((10, 8), Image.Resampling.LANCZOS))
    np.testing.assert_allclose(xt[0, 0], np.clip(ref, 0, 1), atol=1e-6)
    x2, y2 = load_image_folder(root, "train", (1, 12, 12), limit=4)
    assert y2.tolist() == [0, 1, 2, 0]  # limit keeps every class


def test_folder_errors_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        folder_classes(tmp_path / "none")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no class folders; put each class's images in a folder"):
        folder_classes(tmp_path / "flat")
    root = make_folder(tmp_path / "d", {"a": 3, "b": 0})
    (root / "b").mkdir(exist_ok=True)
    with pytest.raises(ValueError, match="class 'b' has no images in"):
        load_image_folder(root, "train", (1, 8, 8))
    small = make_folder(tmp_path / "small", {"a": 3, "b": 2})
    with pytest.raises(ValueError, match="no test images under .*give a class at least 5"):
        load_image_folder(small, "test", (1, 8, 8))
    both = make_folder(tmp_path / "both", {"a": 6, "b": 6}, split=True)
    (both / "test" / "c").mkdir()
    with pytest.raises(ValueError, match="train and .*test have different class folders"):
        folder_classes(both)
    bad = make_folder(tmp_path / "bad", {"a": 2, "b": 2})
    (bad / "a" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"broken.png: not an image file Pillow can read"):
        load_image_folder(bad, "train", (1, 8, 8))
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_image_folder(root, "val", (1, 8, 8))


def test_train_evaluate_predict_and_maps_on_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_folder(tmp_path / "shapes", {"horizontal": 10, "vertical": 10, "dots": 10})
    argv = ["train", "lenet5", "--data", "shapes", "--epochs", "30", "--batch-size", "8",
            "--quiet", "--augment", "0"]  # fmt: skip
    assert cli.main(argv) == 0  # a zoo model gets one output per class folder
    out = capsys.readouterr().out
    assert "training lenet5 on shapes/: 24 images" in out and "on 6 shapes/ test images" in out
    assert "\n      dots " in out and "\nhorizontal " in out  # the matrix names the classes
    run = json.loads((tmp_path / "runs" / "lenet5" / "run.json").read_text())
    assert run["classes"] == ["dots", "horizontal", "vertical"] and run["num_classes"] == 3
    assert run["data"] == str((tmp_path / "shapes").resolve())
    accuracy = float(out.split("test accuracy: ")[1].split()[0])
    assert accuracy >= 5 / 6  # stripes and dots are easy

    # the run tells evaluate, predict and maps the classes, the data and the preparation
    assert cli.main(["evaluate", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert f"on 6 shapes/ test images: accuracy {accuracy:.4f}" in out
    image = tmp_path / "shapes" / "vertical" / "04.png"
    assert cli.main(["predict", "lenet5", str(image), "--top", "1"]) == 0
    assert f"{image}: vertical (" in capsys.readouterr().out
    assert cli.main(["maps", "lenet5", "--index", "2", "-o", "m.png"]) == 0
    assert "shapes/ test image 2: label vertical, predicted vertical" in capsys.readouterr().out

    with pytest.raises(SystemExit):
        cli.main(["train", "lenet5", "--data", "shapes", "--dataset", "mnist"])
    assert "shapes and --dataset mnist: give one of them" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a model of the user's whose outputs do not fit
        cli.main(
            ["train", "tests.test_train_cli:mlp", "--data", "shapes", "--input-shape", "1,28,28"]
        )
    err = capsys.readouterr().err
    assert "mnist_mlp has 10 outputs but " in err
    assert "shapes has 3 classes (dots, horizontal, vertical)" in err
    assert "give --num-classes 3" in err


def test_uneven_classes_train_with_balanced_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_folder(tmp_path / "uneven", {"horizontal": 20, "vertical": 5, "dots": 10})
    argv = ["train", "lenet5", "--data", "uneven", "--epochs", "2", "--batch-size", "8",
            "--quiet", "--class-weight", "balanced"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "seed 0, balanced class weights" in out
    run = json.loads((tmp_path / "runs" / "lenet5" / "run.json").read_text())
    assert run["class_weight"] == "balanced"


def test_folders_that_are_not_classes_are_refused_or_skipped(tmp_path):
    tv = tmp_path / "tv"  # train/ and val/: not two classes called "train" and "val"
    make_folder(tv / "train", {"a": 5, "b": 5})
    make_folder(tv / "val", {"a": 5, "b": 5})
    with pytest.raises(ValueError, match=r"tv has a 'train' folder, which would be read as a cl"):
        folder_classes(tv)
    one = make_folder(tmp_path / "one", {"cats": 10})
    with pytest.raises(ValueError, match=r"one has one class folder, 'cats'; a classifier needs"):
        load_image_folder(one, "train", (1, 8, 8))
    root = make_folder(tmp_path / "d", {"a": 5, "b": 5})
    thumbs = root / "a" / ".thumbnails"
    thumbs.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(thumbs / f"{i}.png")
    x, y = load_image_folder(root, "train", (1, 8, 8))
    assert np.bincount(y).tolist() == [4, 4]  # the hidden folder's images are not a's
    with pytest.raises(ValueError, match="limit must be a positive int or None, got -1"):
        load_image_folder(root, "train", (1, 8, 8), limit=-1)
    (root / "b" / "gone.png").symlink_to(tmp_path / "moved.png")
    with pytest.raises(ValueError, match=r"gone.png: a broken link \(to .*moved.png\)"):
        load_image_folder(root, "train", (1, 8, 8))
