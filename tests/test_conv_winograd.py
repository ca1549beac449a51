"""Winograd F(2x2, 3x3) (``tinycnn/ops/cpu/_winograd.py``, ``_winograd_weight.py``): the
forward, the input gradient and the weight gradient against the float64 loop of
``test_conv.py``, float64 finite differences, im2col and torch; odd sizes, one output pixel,
every padding up to 2 (asymmetric too), whole-image blocks and bands of tile rows; its blocks,
the algorithm choice and the refusal of shapes it cannot do."""

import numba
import numpy as np
import pytest

import tinycnn as tc
import tinycnn.ops.conv as conv_op
import tinycnn.ops.cpu._winograd as winograd
import tinycnn.ops.cpu._winograd_weight as winograd_weight
from tinycnn.ops.conv import Conv2d
from tinycnn.testing import gradcheck

from .helpers import TF, check_op, needs_torch, rand
from .test_conv import reference_conv2d

# (N, C_in, H, W, C_out, padding (top, bottom, left, right))
CASES = [
    (2, 3, 7, 6, 4, (1, 1, 1, 1)),  # odd output height, even width
    (1, 2, 3, 3, 2, (0, 0, 0, 0)),  # a single output pixel (one tile, three of it dropped)
    (2, 4, 5, 9, 3, (2, 2, 2, 2)),  # the input gradient without padding
    (1, 3, 6, 5, 5, (0, 1, 2, 0)),  # asymmetric
    (3, 2, 4, 4, 2, (1, 0, 0, 1)),
    (1, 2, 18, 11, 3, (1, 1, 1, 1)),  # several bands when the blocks are small
]


def small_blocks(monkeypatch, tiles: int) -> None:
    """Blocks of at most ``tiles`` tiles, cut into bands of a single tile row if need be."""
    monkeypatch.setattr(winograd, "TILES", tiles)
    monkeypatch.setattr(winograd_weight, "WEIGHT_TILES", tiles)
    monkeypatch.setattr(winograd, "MIN_BAND", 1)


def no_im2col_weight(monkeypatch) -> None:
    """Make sure a winograd conv's weight gradient is Winograd's own."""
    import tinycnn.ops.cpu.conv as cpu_conv

    def boom(*args):
        raise AssertionError("a winograd conv ran im2col's weight gradient")

    monkeypatch.setattr(cpu_conv, "im2col_backward_weight", boom)


def _apply(x, w, b, pads, algorithm="winograd"):
    return Conv2d.apply(
        x, w, b, stride=(1, 1), padding=pads, dilation=(1, 1), groups=1, algorithm=algorithm
    )


def _grads(x, w, b, pads, algorithm, g):
    tx, tw, tb = (tc.tensor(a, requires_grad=True) for a in (x, w, b))
    out = _apply(tx, tw, tb, pads, algorithm)
    out.backward(tc.tensor(g))
    return out.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("tiles", [None, 12])  # 12: bands of one or two tile rows
@pytest.mark.parametrize("case", CASES)
def test_forward_and_gradients_match_loop_and_im2col(case, tiles, monkeypatch):
    if tiles:
        small_blocks(monkeypatch, tiles)
    n, c, h, w_, co, pads = case
    rng = np.random.default_rng(0)
    x, w, b = rand(rng, n, c, h, w_), rand(rng, co, c, 3, 3), rand(rng, co)
    ref = reference_conv2d(x, w, b, pads=pads)
    g = rand(rng, *ref.shape)
    theirs = _grads(x, w, b, pads, "im2col", g)
    no_im2col_weight(monkeypatch)
    ours = _grads(x, w, b, pads, "winograd", g)
    np.testing.assert_allclose(ours[0], ref, rtol=1e-12, atol=1e-12)
    for a, e in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
    out32 = _apply(*(tc.tensor(a.astype(np.float32)) for a in (x, w, b)), pads)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[5]])
def test_gradcheck_float64(case, monkeypatch):
    small_blocks(monkeypatch, 12)
    no_im2col_weight(monkeypatch)
    n, c, h, w_, co, pads = case
    rng = np.random.default_rng(1)
    arrays = (rand(rng, n, c, h, w_), rand(rng, co, c, 3, 3), rand(rng, co))
    tensors = [tc.tensor(a, requires_grad=True) for a in arrays]
    gradcheck(lambda x, w, b: _apply(x, w, b, pads), tensors)


@needs_torch
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_float32_matches_torch(padding):
    """A layer of a real net's width, chosen automatically (padding 1 is ``"same"``)."""
    rng = np.random.default_rng(2)
    arrays = [
        rand(rng, 4, 64, 16, 14, dtype=np.float32),
        rand(rng, 48, 64, 3, 3, dtype=np.float32) * 0.1,
        rand(rng, 48, dtype=np.float32),
    ]
    auto = conv_op.choose_algorithm((4, 64, 16, 14), (48, 64, 3, 3), (1, 1), (padding,) * 4, 1,
                                    winograd=True)  # fmt: skip
    assert auto == "winograd"
    check_op(
        lambda x, w, b: tc.functional.conv2d(x, w, b, padding=padding),
        lambda x, w, b: TF.conv2d(x, w, b, padding=padding),
        arrays,
        atol=2e-4,
        rtol=1e-4,
    )


# (2, 32, 5, 4) in float32: OpenBLAS sums a GEMM of 24 columns (two images a block) and one of
# 12 (one image) differently, so the blocks must not follow the thread count
@pytest.mark.parametrize("dtype, shape", [(np.float64, (5, 8, 9, 7)), (np.float32, (2, 32, 5, 4))])
@pytest.mark.parametrize("tiles", [12, None])  # 12: 25 bands in 8 lanes; None: 2 blocks
def test_one_and_two_threads_agree_bit_for_bit(tiles, dtype, shape, monkeypatch):
    """Each output and input-gradient element is the work of the one thread that owns its
    block; the blocks (the GEMMs' shapes) and the weight gradient's lanes are cut from the
    shapes, not from the thread count."""
    if tiles:
        small_blocks(monkeypatch, tiles)
    no_im2col_weight(monkeypatch)
    rng = np.random.default_rng(3)
    n, c, h, w_ = shape
    x, w = rand(rng, n, c, h, w_, dtype=dtype), rand(rng, c, c, 3, 3, dtype=dtype)
    b, g = rand(rng, c, dtype=dtype), rand(rng, n, c, h, w_, dtype=dtype)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _grads(x, w, b, (1, 1, 1, 1), "winograd", g)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _grads(x, w, b, (1, 1, 1, 1), "winograd", g)
    finally:
        numba.set_num_threads(before)
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)


@needs_torch
@pytest.mark.parametrize("tiles", [None, 40])  # 40: bands of tile rows
@pytest.mark.parametrize(
    "hw, pads",
    [
        ((15, 13), (0, 0, 0, 0)),  # odd output sizes (13 x 11)
        ((16, 14), (1, 1, 1, 1)),
        ((13, 11), (2, 2, 2, 2)),  # odd output sizes (15 x 13)
        ((14, 12), (0, 1, 2, 1)),  # asymmetric
    ],
)
def test_weight_gradient_float32_matches_torch(hw, pads, tiles, monkeypatch):
    """The weight gradient sums over every tile of the batch: float32 against torch on a
    layer of a real net's width."""
    if tiles:
        small_blocks(monkeypatch, tiles)
    no_im2col_weight(monkeypatch)
    rng = np.random.default_rng(5)
    x = rand(rng, 3, 64, *hw, dtype=np.float32)
    w = rand(rng, 40, 64, 3, 3, dtype=np.float32) * 0.1
    b = rand(rng, 40, dtype=np.float32)
    pt, pb, pl, pr = pads
    check_op(
        lambda x, w, b: _apply(x, w, b, pads),
        lambda x, w, b: TF.conv2d(TF.pad(x, (pl, pr, pt, pb)), w, b),
        [x, w, b],
        requires_grad=[False, True, True],
        atol=2e-4,
        rtol=1e-4,
    )


def test_blocks_cover_every_tile_once():
    """Whole images while they fit a block (but a block per thread), bands of tile rows of one
    image otherwise; a block holds its tiles and the one extra tile row below each image."""
    ncx, work = winograd.blocks(10, 16, 16, tiles=256)  # 9 x 9 grid tiles per image
    assert ncx == 9 and work == [(0, 3, 0, 8), (3, 3, 0, 8), (6, 3, 0, 8), (9, 1, 0, 8)]
    assert winograd.blocks(4, 16, 16, parts=2, tiles=256)[1] == [(0, 2, 0, 8), (2, 2, 0, 8)]
    ncx, work = winograd.blocks(2, 55, 20, tiles=60)  # 28 tile rows of 11 per image
    assert ncx == 11
    assert all(nb == 1 and (nty + 1) * ncx <= 60 for _, nb, _, nty in work)
    covered = [(n, ty0 + t) for n, _, ty0, nty in work for t in range(nty)]
    assert sorted(covered) == [(n, t) for n in range(2) for t in range(28)]
    ncx, work = winograd.blocks(1, 224, 224, tiles=256)  # 113 tiles a row: bands of MIN_BAND
    assert ncx == 113 and {nty for _, _, _, nty in work} == {winograd.MIN_BAND}
    assert winograd.blocks(0, 4, 4)[1] == []


def test_waste_decides_between_winograd_and_im2col():
    """Computing the grid one tile wider and taller than the output costs little on large
    outputs and a factor 2 at 7x7, where im2col wins (ResNet-50's last 3x3 layers)."""
    assert conv_op.winograd_waste(56, 56) == pytest.approx(29 * 29 / 28**2)
    assert conv_op.winograd_waste(7, 7) == pytest.approx(25 / 12.25)
    choose = conv_op.choose_algorithm
    for hw, algo in ((14, "winograd"), (10, "winograd"), (8, "im2col"), (7, "im2col")):
        assert choose((8, 512, hw, hw), (512, 512, 3, 3), (1, 1), (1,) * 4, 1,
                      winograd=True) == algo  # fmt: skip


def test_choose_algorithm_and_refusals():
    choose = conv_op.choose_algorithm
    c = ((16, 256, 14, 14), (256, 256, 3, 3))
    assert choose(*c, (1, 1), (1,) * 4, 1, (1, 1), winograd=True) == "winograd"
    assert choose(*c, (1, 1), (1,) * 4, 1, (1, 1), winograd=False) == "im2col"  # e.g. cuda
    assert choose(*c, (2, 2), (1,) * 4, 1, (1, 1), winograd=True) == "im2col"
    assert choose(*c, (1, 1), (1,) * 4, 1, (2, 2), winograd=True) == "im2col"
    assert choose(*c, (1, 1), (3, 3, 1, 1), 1, (1, 1), winograd=True) == "im2col"
    assert choose((16, 256, 14, 14), (256, 128, 3, 3), (1, 1), (1,) * 4, 2,
                  winograd=True) == "im2col"  # fmt: skip
    assert choose((16, 8, 14, 14), (16, 8, 3, 3), (1, 1), (1,) * 4, 1, winograd=True) == "direct"
    thin = ((16, 32, 14, 14), (64, 32, 3, 3), (1, 1), (1,) * 4, 1)  # too few input channels
    assert choose(*thin, winograd=True) == "im2col"
    x, w = tc.tensor(np.zeros((1, 2, 6, 6))), tc.tensor(np.zeros((2, 2, 3, 3)))
    with pytest.raises(ValueError, match="winograd needs a 3x3 kernel, stride 1"):
        Conv2d.apply(x, w, None, stride=(2, 2), padding=(1,) * 4, dilation=(1, 1), groups=1,
                     algorithm="winograd")  # fmt: skip


def test_input_gradient_skipped_when_not_required(monkeypatch):
    import tinycnn.ops.cpu.conv as cpu_conv

    def boom(*args):
        raise AssertionError("input-gradient kernel called for an input without requires_grad")

    monkeypatch.setattr(cpu_conv, "winograd_backward_input", boom)
    rng = np.random.default_rng(4)
    x = tc.tensor(rand(rng, 2, 4, 6, 6))
    w = tc.tensor(rand(rng, 3, 4, 3, 3), requires_grad=True)
    out = _apply(x, w, None, (1, 1, 1, 1))
    out.sum().backward()
    assert x.grad is None and w.grad is not None
    np.testing.assert_allclose(
        out.numpy(), reference_conv2d(x.numpy(), w.numpy(), None, pads=(1,) * 4), atol=1e-12
    )


@pytest.mark.parametrize("where", ["x", "w", "g"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_values_that_are_not_finite_give_im2col_results(where, value, monkeypatch):
    """The transforms mix a tile's 16 values: an Inf would become NaN in outputs whose
    receptive field does not hold it.  Such calls are handed to im2col, whose result they equal
    exactly, NaN for NaN, in the forward and both gradients."""
    small_blocks(monkeypatch, 12)
    rng = np.random.default_rng(5)
    x, w, b = rand(rng, 2, 3, 7, 8), rand(rng, 4, 3, 3, 3), rand(rng, 4)
    g = rand(rng, 2, 4, 7, 8)
    {"x": x, "w": w, "g": g}[where][(0, 1, 3, 5) if where != "w" else (1, 2, 0, 2)] = value
    ours = _grads(x, w, b, (1, 1, 1, 1), "winograd", g)
    theirs = _grads(x, w, b, (1, 1, 1, 1), "im2col", g)
    assert not all(np.isfinite(a).all() for a in ours)
    for a, e in zip(ours, theirs):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)  # NaN where NaN, Inf where Inf


def test_weight_gradient_by_winograd_where_it_pays(monkeypatch):
    """The automatic choice computes the weight gradient by Winograd for many channels or
    little waste, by im2col for 64 channels at 16x16 (where Winograd's measured 6 % slower)."""
    import tinycnn.ops.cpu.conv as cpu_conv

    calls = []
    for name in ("winograd_backward_weight", "im2col_backward_weight"):
        real = getattr(cpu_conv, name)
        monkeypatch.setattr(cpu_conv, name, lambda *a, n=name, f=real: calls.append(n) or f(*a))
    rng = np.random.default_rng(6)
    for c, hw, kernel in ((64, 16, "im2col"), (128, 16, "winograd"), (64, 40, "winograd")):
        x = tc.tensor(rand(rng, 1, c, hw, hw, dtype=np.float32))
        w = tc.tensor(rand(rng, 48, c, 3, 3, dtype=np.float32), requires_grad=True)
        tc.functional.conv2d(x, w, padding=1).sum().backward()
        assert calls.pop() == kernel + "_backward_weight"
        assert conv_op.winograd_weight_gradient(c, hw, hw) == (kernel == "winograd")
