"""A user's own image as a model input (tinycnn.datasets.images) and ``tinycnn predict``."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import cli
from tinycnn.datasets import load_image, mnist_like
from tinycnn.graph import clear_session

Image = pytest.importorskip("PIL.Image", reason="needs Pillow (the plot extra)")


def _as_paper(digit: np.ndarray, path, scale=4, offset=(10, 5), size=(150, 130)):
    """An MNIST digit drawn the way a user would: dark grey ink on white, larger, off-centre."""
    big = np.kron(digit, np.ones((scale, scale)))
    canvas = np.ones(size)
    r, c = offset
    canvas[r : r + big.shape[0], c : c + big.shape[1]] = 1 - 0.9 * big
    Image.fromarray((canvas * 255).round().astype(np.uint8)).save(path)
    return path


def _centre_of_mass(a):
    yy, xx = np.indices(a.shape)
    return (yy * a).sum() / a.sum(), (xx * a).sum() / a.sum()


def test_a_photographed_mnist_digit_comes_back_as_mnist(tmp_path):
    x, _ = tc.datasets.load_mnist("test", limit=20)
    for i, digit in enumerate(x[:, 0]):
        got = load_image(_as_paper(digit, tmp_path / f"{i}.png"), (1, 28, 28))[0]
        assert got.shape == (28, 28) and got.dtype == np.float32
        assert 0.0 <= got.min() and got.max() <= 1.0
        assert np.corrcoef(got.ravel(), digit.ravel())[0, 1] > 0.9, i
        cy, cx = _centre_of_mass(got)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # MNIST's own centre
        ink = np.argwhere(got > 0.05)
        assert (ink.max(axis=0) - ink.min(axis=0) + 1).max() <= 21  # the 20x20 box (+ blur)
    padded = load_image(tmp_path / "0.png", (1, 32, 32))[0]
    np.testing.assert_array_equal(
        padded[2:30, 2:30], load_image(tmp_path / "0.png", (1, 28, 28))[0]
    )
    assert not padded[:2].any() and not padded[:, :2].any()
    assert load_image(tmp_path / "0.png", (1, 64, 64)).shape == (1, 64, 64)


def test_npy_transparent_png_and_rgb(tmp_path):
    x, _ = tc.datasets.load_mnist("test", limit=1)
    np.save(tmp_path / "d.npy", x[0, 0])  # already MNIST: light on black, [0, 1]
    got = load_image(tmp_path / "d.npy", (1, 28, 28))[0]
    assert np.corrcoef(got.ravel(), x[0, 0].ravel())[0, 1] > 0.95
    np.save(tmp_path / "d255.npy", (x[0] * 255).astype(np.uint8))  # (1, H, W), 8-bit
    np.testing.assert_allclose(load_image(tmp_path / "d255.npy", (1, 28, 28)), got[None], atol=0.02)
    rgba = np.zeros((40, 40, 4), np.uint8)  # black strokes on a transparent background
    rgba[8:32, 18:22] = (0, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    one = load_image(tmp_path / "t.png", (1, 28, 28))[0]
    assert one.max() > 0.9 and one[0].max() == 0.0  # the stroke is ink, the rest paper
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 50
    Image.fromarray(rgb).save(tmp_path / "c.png")
    colour = load_image(tmp_path / "c.png", (3, 32, 32))
    assert colour.shape == (3, 32, 32)
    np.testing.assert_allclose(colour.mean(axis=(1, 2)), [200 / 255, 0, 50 / 255], atol=1e-3)


def test_bad_images_are_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image file Pillow can read"):
        load_image(tmp_path / "notes.png", (1, 28, 28))
    with pytest.raises(ValueError, match="no such file"):
        load_image(tmp_path / "missing.png", (1, 28, 28))
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(tmp_path / "blank.png")
    with pytest.raises(ValueError, match="no ink found"):
        load_image(tmp_path / "blank.png", (1, 28, 28))
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"expected an image array .* got shape \(2, 3, 4, 5\)"):
        load_image(tmp_path / "cube.npy", (1, 28, 28))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "k.png")
    with pytest.raises(ValueError, match="fit 1- or 3-channel models; this one takes 2"):
        load_image(tmp_path / "k.png", (2, 8, 8))
    with pytest.raises(ValueError, match="no ink found"):
        mnist_like(np.zeros((5, 5)))


@pytest.fixture
def digits(tmp_path):
    x, y = tc.datasets.load_mnist("test", limit=3)
    return [str(_as_paper(d, tmp_path / f"digit{i}.png")) for i, d in enumerate(x[:, 0])]


def test_cli_predict(tmp_path, digits, capsys):
    import zoo

    clear_session()
    weights = tmp_path / "w.npz"
    zoo.lenet5().save_weights(weights)
    assert cli.main(["predict", "lenet5", "--weights", str(weights), *digits]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"lenet5 ({weights}):"  # a softmax model: its own probabilities
    assert len(lines) == 4 and all(ln.startswith(f"  {d}: ") for ln, d in zip(lines[1:], digits))
    shares = [float(v) for v in re.findall(r"\(([\d.]+) %\)", lines[1])]
    assert len(shares) == 3 and shares == sorted(shares, reverse=True)
    assert cli.main(["predict", "tests.test_cli:tiny", "--input-shape", "1,28,28", digits[0]]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "tiny (untrained initial weights) (softmax of the model's logits):"
    assert "; then " in out[1]
    with pytest.raises(SystemExit):
        cli.main(["predict", "lenet5", "--top", "0", digits[0]])
    assert "argument --top: must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["predict", "lenet5", str(tmp_path / "none.png")])
    assert "none.png: no such file" in capsys.readouterr().err
    # a folder stands for the images in it, in name order
    assert cli.main(["predict", "lenet5", "--weights", str(weights), str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [ln.split(": ")[0].strip() for ln in lines] == digits
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit):
        cli.main(["predict", "lenet5", str(empty)])
    assert f"{empty}: no images in it" in capsys.readouterr().err


def test_cli_maps_of_an_own_image(tmp_path, digits, capsys):
    out = tmp_path / "m.png"
    assert cli.main(["maps", "lenet5", "--image", digits[0], "-o", str(out)]) == 0
    assert f"lenet5 (untrained initial weights), {digits[0]}: predicted " in capsys.readouterr().out
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_16_bit_and_float_images_keep_their_values(tmp_path):
    """Pillow's RGB conversion clips them at 255: a 16-bit PNG would read as white."""
    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    Image.fromarray((ramp * 65535).round().astype(np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(ramp.astype(np.float32), mode="F").save(tmp_path / "f.tiff")
    for name in ("g16.png", "f.tiff"):
        got = load_image(tmp_path / name, (1, 32, 32), prepare="resize")[0]
        np.testing.assert_allclose(got, ramp, atol=2e-3, err_msg=name)
    rgb = load_image(tmp_path / "g16.png", (3, 32, 32))
    assert rgb.shape == (3, 32, 32) and abs(rgb.mean() - 0.5) < 0.01
    Image.fromarray((ramp * 4095).astype(np.float32), mode="F").save(tmp_path / "f12.tiff")
    with pytest.raises(ValueError, match=r"f12.tiff: float values from 0 to 4095; a float image"):
        load_image(tmp_path / "f12.tiff", (1, 32, 32), prepare="resize")


def test_a_photo_is_read_upright_by_its_exif_orientation(tmp_path):
    a = np.zeros((20, 30), np.uint8)
    a[:, :5] = 255  # a bright band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to show": the band is at the top when shown
    Image.fromarray(a).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    got = load_image(tmp_path / "phone.jpg", (1, 30, 20), prepare="resize")[0]
    assert got.shape == (30, 20)
    assert got[:4].mean() > 0.8 and got[8:].mean() < 0.1, got.mean(axis=1)


def test_npy_values_are_scaled_by_their_type_or_refused(tmp_path):
    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    np.save(tmp_path / "u16.npy", (ramp * 65535).round().astype(np.uint16))  # 16-bit
    np.save(tmp_path / "f255.npy", ramp * 255)  # 8-bit values as floats
    for name in ("u16.npy", "f255.npy"):
        got = load_image(tmp_path / name, (1, 32, 32), prepare="resize")[0]
        np.testing.assert_allclose(got, ramp, atol=2e-3, err_msg=name)
    nan = ramp.copy()
    nan[3, 4] = np.nan
    arrays = {
        "minus.npy": (ramp * 2 - 1, r"values from -1 to 1; an image array holds values in"),
        "wide.npy": (ramp * 4095, r"values from 0 to 4095; an image array holds values in"),
        "nan.npy": (nan, "the array has 1 NaN/Inf values"),
        "empty.npy": (np.zeros((0, 5)), r"the array is empty \(shape \(0, 5\)\)"),
        "text.npy": (np.array([["1", "2"]]), "expected a numeric image array, got dtype <U1"),
    }
    for name, (a, message) in arrays.items():
        np.save(tmp_path / name, a)
        for prepare in ("mnist", "resize"):
            with pytest.raises(ValueError, match=f"{name}: {message}"):
                load_image(tmp_path / name, (1, 28, 28), prepare=prepare)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "u16.npy").read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cut.npy: not a .npy array numpy can read \(Failed"):
        load_image(tmp_path / "cut.npy", (1, 28, 28))
    np.savez(tmp_path / "two.npz", a=ramp, b=ramp)
    (tmp_path / "two.npz").rename(tmp_path / "two.npy")
    with pytest.raises(ValueError, match=r"two.npy: not a .npy array \(an .npz archive"):
        load_image(tmp_path / "two.npy", (1, 28, 28))


def test_an_image_past_pillows_size_limit_is_refused(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 900 pixels: over twice the limit
    with pytest.raises(ValueError, match=r"big.png: too large to read \(Image size \(900 pixels"):
        load_image(tmp_path / "big.png", (1, 28, 28))
