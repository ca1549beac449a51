"""conv2d: NumPy loop reference, float64 gradchecks, torch parity, every validation error,
thread-count independence, and the skipped input gradient.  Each algorithm (gemm1x1, direct,
Winograd with whole images or bands of tile rows per block, im2col with several images per
tile, one image per tile and one output row per tile) is forced in turn, so none hides behind
the automatic choice."""

import numba
import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
import tinycnn.ops.conv as conv_op
import tinycnn.ops.cpu._winograd as cpu_winograd
import tinycnn.ops.cpu.conv as cpu_conv
from tinycnn.ops.conv import Conv2d
from tinycnn.tensor import Tensor
from tinycnn.testing import gradcheck

from .helpers import TF, check_op, needs_torch, rand

NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def reference_conv2d(
    x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1, mode="zeros"
):
    """The obvious loop: pad, then one dot product per output element (float64)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    pt, pb, pl, pr = pads
    widths = ((0, 0), (0, 0), (pt, pb), (pl, pr))
    xp = np.pad(x, widths) if mode == "zeros" else np.pad(x, widths, mode=NP_PAD_MODE[mode])
    N, C, Hp, Wp = xp.shape
    cout, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    oh = (Hp - dh * (kh - 1) - 1) // sh + 1
    ow = (Wp - dw * (kw - 1) - 1) // sw + 1
    og = cout // groups
    out = np.zeros((N, cout, oh, ow))
    for n in range(N):
        for o in range(cout):
            c0 = (o // og) * cg
            for y in range(oh):
                for z in range(ow):
                    patch = xp[
                        n,
                        c0 : c0 + cg,
                        y * sh : y * sh + dh * (kh - 1) + 1 : dh,
                        z * sw : z * sw + dw * (kw - 1) + 1 : dw,
                    ]
                    out[n, o, y, z] = np.sum(patch * w[o]) + (0.0 if b is None else b[o])
    return out


def same_pads(kernel, dilation):
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2


def small_tiles(monkeypatch, rows: bool) -> None:
    """im2col tiles of one image each, or (``rows``) of one output row each."""
    monkeypatch.setattr(cpu_conv, "TILE_BYTES", 1)
    monkeypatch.setattr(cpu_conv, "SLAB_BYTES", 1 if rows else 1 << 30)


CHOOSE = conv_op.choose_algorithm  # before any test patches it


@pytest.fixture(
    params=["auto", "direct", "winograd", "winograd-rows", "im2col", "im2col-image", "im2col-rows"]
)
def algorithm(request, monkeypatch):
    """Force one algorithm (gemm1x1 is kept where it applies: it is the only one it implies;
    Winograd only where it applies, its own choice elsewhere).

    ``im2col`` as tuned puts every image of these small tests in one tile;
    ``im2col-image`` cuts one tile per image, ``im2col-rows`` one per output row (the slabs of a
    large image: the input gradient of an image is then assembled over several tiles).
    ``winograd`` puts these small images in one block, ``winograd-rows`` cuts each image into
    bands of one or two tile rows."""
    name = request.param
    if name == "auto":
        return name
    if name == "winograd-rows":
        monkeypatch.setattr(cpu_winograd, "TILES", 12)
        monkeypatch.setattr(cpu_winograd, "MIN_BAND", 1)
        name = "winograd"
    if name not in ("direct", "winograd"):
        if name != "im2col":
            small_tiles(monkeypatch, rows=name == "im2col-rows")
        name = "im2col"

    def force(x_shape, w_shape, stride, padding, groups, dilation=(1, 1), winograd=False):
        auto = CHOOSE(x_shape, w_shape, stride, padding, groups, dilation, winograd)
        if auto == "gemm1x1":
            return auto
        if name == "winograd" and not conv_op.winograd_applies(
            w_shape, stride, padding, groups, dilation
        ):
            return auto
        return name

    monkeypatch.setattr(conv_op, "choose_algorithm", force)
    return request.param


# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups)
FORWARD_CASES = [
    (2, 3, 7, 6, 4, (3, 3), 1, 1, 1, 1),
    (1, 2, 9, 11, 3, (2, 4), (2, 3), (1, 2), 1, 1),
    (2, 4, 8, 8, 6, (3, 3), 1, 2, 2, 2),
    (3, 3, 6, 7, 6, (3, 3), 2, 1, 1, 3),  # depthwise, channel multiplier 2
    (2, 6, 5, 5, 4, (1, 1), 1, 0, 1, 2),  # grouped 1x1: pure GEMM
    (2, 4, 5, 6, 3, (1, 1), 2, 1, 1, 1),  # 1x1 with stride and padding: not the GEMM shortcut
    (1, 2, 10, 4, 2, (2, 2), 3, 0, 1, 1),  # stride larger than the kernel
]


@pytest.mark.parametrize("case", FORWARD_CASES)
def test_forward_matches_loop_reference(case, algorithm):
    n, c, h, w_, co, k, s, p, d, g = case
    rng = np.random.default_rng(1)
    x, w = rand(rng, n, c, h, w_), rand(rng, co, c // g, *k)
    b = rand(rng, co)
    out = F.conv2d(tc.tensor(x), tc.tensor(w), tc.tensor(b), s, p, d, g)
    stride, pad, dil = (s, s) if isinstance(s, int) else s, p, (d, d)
    pad = (pad, pad) if isinstance(pad, int) else pad
    ref = reference_conv2d(x, w, b, stride, (pad[0], pad[0], pad[1], pad[1]), dil, g)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
    out32 = F.conv2d(
        tc.tensor(x.astype(np.float32)), tc.tensor(w.astype(np.float32)), None, s, p, d, g
    )
    assert out32.dtype == np.float32
    ref_nob = reference_conv2d(x, w, None, stride, (pad[0], pad[0], pad[1], pad[1]), dil, g)
    np.testing.assert_allclose(out32.numpy(), ref_nob, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_padding_modes_and_same_match_reference(mode):
    rng = np.random.default_rng(2)
    x, w, b = rand(rng, 2, 2, 5, 6), rand(rng, 3, 2, 2, 4), rand(rng, 3)
    out = F.conv2d(
        tc.tensor(x), tc.tensor(w), tc.tensor(b), padding="same", dilation=(2, 1), padding_mode=mode
    )
    assert out.shape == (2, 3, 5, 6)
    ref = reference_conv2d(x, w, b, pads=same_pads((2, 4), (2, 1)), dilation=(2, 1), mode=mode)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
    out = F.conv2d(tc.tensor(x), tc.tensor(w), None, 2, (1, 2), padding_mode=mode)
    ref = reference_conv2d(x, w, None, (2, 2), (1, 1, 2, 2), mode=mode)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
    valid = F.conv2d(tc.tensor(x), tc.tensor(w), padding="valid", padding_mode=mode)
    np.testing.assert_allclose(valid.numpy(), reference_conv2d(x, w, None), atol=1e-12)


# (x shape, C_out, kernel, kwargs): tiny, odd sizes; every feature once
GRAD_CASES = [
    ((2, 2, 5, 6), 3, (3, 3), dict(padding=1)),
    ((1, 2, 7, 8), 2, (2, 2), dict(stride=3)),  # stride > kernel: some pixels get no gradient
    ((1, 2, 6, 7), 2, (3, 2), dict(padding=2, dilation=(2, 3))),
    ((2, 4, 5, 5), 4, (3, 3), dict(padding=1, groups=2)),
    ((1, 3, 5, 6), 6, (3, 3), dict(padding=1, groups=3)),  # depthwise x2
    ((1, 2, 5, 6), 2, (2, 4), dict(padding="same")),  # asymmetric "same"
    ((2, 3, 4, 5), 2, (1, 1), dict()),  # GEMM shortcut
    ((1, 2, 5, 6), 2, (3, 3), dict(stride=2, padding=(1, 2), padding_mode="reflect")),
    ((1, 2, 5, 6), 2, (3, 2), dict(padding=(2, 1), padding_mode="replicate")),
    ((1, 2, 5, 4), 2, (2, 3), dict(padding="same", padding_mode="circular")),
]


@pytest.mark.parametrize("x_shape,cout,kernel,kwargs", GRAD_CASES)
def test_gradcheck_float64(x_shape, cout, kernel, kwargs, algorithm):
    rng = np.random.default_rng(3)
    groups = kwargs.get("groups", 1)
    x = tc.tensor(rand(rng, *x_shape), requires_grad=True)
    w = tc.tensor(rand(rng, cout, x_shape[1] // groups, *kernel), requires_grad=True)
    b = tc.tensor(rand(rng, cout), requires_grad=True)
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), [x, w, b])


def random_config(rng):
    groups = int(rng.choice([1, 1, 2, 3]))
    cg, og = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    roll = rng.random()
    if roll < 0.2 and stride == (1, 1):
        padding = "same"
    elif roll < 0.3:
        padding = "valid"
    else:
        padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
    mode = str(rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"]))
    h = dh * (kh - 1) + 1 + int(rng.integers(2, 7))
    w = dw * (kw - 1) + 1 + int(rng.integers(2, 7))
    kwargs = dict(stride=stride, padding=padding, dilation=(dh, dw), groups=groups)
    shapes = ((int(rng.integers(1, 4)), groups * cg, h, w), (groups * og, cg, kh, kw))
    return shapes, kwargs, mode, bool(rng.random() < 0.7)


def torch_conv(x, w, b, stride, padding, dilation, groups, mode):
    if mode == "zeros":
        return TF.conv2d(x, w, b, stride, padding, dilation, groups)
    k = w.shape[2:]
    if padding == "same":
        pt, pb, pl, pr = same_pads(k, dilation)
    elif padding == "valid":
        pt = pb = pl = pr = 0
    else:
        pt = pb = padding[0]
        pl = pr = padding[1]
    return TF.conv2d(TF.pad(x, (pl, pr, pt, pb), mode=mode), w, b, stride, 0, dilation, groups)


@needs_torch
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-10)])
@pytest.mark.parametrize("seed", range(12))
def test_random_configs_match_torch(seed, dtype, tol, algorithm):
    rng = np.random.default_rng(seed)
    (xs, ws), kw, mode, with_bias = random_config(rng)
    arrays = [rand(rng, *xs, dtype=dtype), rand(rng, *ws, dtype=dtype)]
    if with_bias:
        arrays.append(rand(rng, ws[0], dtype=dtype))

    def ours(x, w, b=None):
        return F.conv2d(x, w, b, padding_mode=mode, **kw)

    def theirs(x, w, b=None):
        return torch_conv(x, w, b, kw["stride"], kw["padding"], kw["dilation"], kw["groups"], mode)

    check_op(ours, theirs, arrays, atol=tol, rtol=tol, seed=seed)


@needs_torch
@pytest.mark.parametrize(
    "x_shape,w_shape,kwargs",
    [
        ((5, 8, 12, 12), (16, 8, 3, 3), dict(padding=1)),
        ((3, 12, 9, 9), (12, 1, 3, 3), dict(padding=1, groups=12)),
        ((4, 16, 6, 6), (8, 16, 1, 1), dict()),
        ((2, 3, 40, 40), (8, 3, 7, 7), dict(stride=2, padding=3)),
    ],
)
def test_small_tiles_match_torch(x_shape, w_shape, kwargs, monkeypatch, algorithm):
    """Tiles of one output row: many tiles per image, more tiles than weight-gradient lanes."""
    small_tiles(monkeypatch, rows=True)
    rng = np.random.default_rng(4)
    arrays = [
        rand(rng, *x_shape, dtype=np.float32),
        rand(rng, *w_shape, dtype=np.float32),
        rand(rng, w_shape[0], dtype=np.float32),
    ]
    check_op(
        lambda x, w, b: F.conv2d(x, w, b, **kwargs),
        lambda x, w, b: TF.conv2d(x, w, b, **kwargs),
        arrays,
        atol=2e-4,
        rtol=1e-4,
    )


def test_empty_batch():
    x = tc.tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    w = tc.tensor(np.ones((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(w.grad.numpy(), 0.0)


# ---------------------------------------------------------------------------- validation
def _t(*shape, dtype=np.float32):
    return tc.tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    "args,kwargs,error,pieces",
    [
        ((_t(1, 2, 3), _t(1, 2, 1, 1)), {}, ValueError, ["input", "4-d", "(1, 2, 3)"]),
        ((_t(1, 2, 3, 3), _t(2, 1, 1)), {}, ValueError, ["weight", "4-d", "(2, 1, 1)"]),
        ((_t(1, 3, 5, 5), _t(4, 2, 3, 3)), {}, ValueError, ["3 channels", "2*1 = 2"]),
        (
            (_t(1, 4, 5, 5), _t(4, 2, 3, 3)),
            dict(groups=3),
            ValueError,
            ["groups=3", "in_channels 4"],
        ),
        (
            (_t(1, 4, 5, 5), _t(3, 2, 3, 3)),
            dict(groups=2),
            ValueError,
            ["groups=2", "out_channels 3"],
        ),
        ((_t(1, 4, 5, 5), _t(4, 1, 3, 3)), dict(groups=2), ValueError, ["4 channels", "1*2 = 2"]),
        ((_t(1, 1, 5, 5), _t(1, 1, 3, 3)), dict(stride=0), ValueError, ["stride", ">= 1"]),
        ((_t(1, 1, 5, 5), _t(1, 1, 3, 3)), dict(dilation=(1, 0)), ValueError, ["dilation", ">= 1"]),
        ((_t(1, 1, 5, 5), _t(1, 1, 3, 3)), dict(padding=-1), ValueError, ["padding", ">= 0"]),
        ((_t(1, 1, 5, 5), _t(1, 1, 3, 3)), dict(groups=0), ValueError, ["groups", ">= 1"]),
        (
            (_t(1, 1, 5, 5), _t(1, 1, 3, 3)),
            dict(stride=float("nan")),
            ValueError,
            ["stride", "NaN"],
        ),
        (
            (_t(1, 1, 5, 5), _t(1, 1, 3, 3)),
            dict(padding=(1, float("nan"))),
            ValueError,
            ["padding", "NaN"],
        ),
        (
            (_t(1, 1, 5, 5), _t(1, 1, 3, 3)),
            dict(groups=float("nan")),
            ValueError,
            ["groups", "NaN"],
        ),
        (
            (_t(1, 1, 5, 5), _t(1, 1, 3, 3)),
            dict(padding="same", stride=2),
            ValueError,
            ["'same'", "stride 1", "(2, 2)"],
        ),
        ((_t(1, 1, 5, 5), _t(1, 1, 3, 3)), dict(padding="full"), ValueError, ["'full'"]),
        (
            (_t(1, 1, 5, 5), _t(1, 1, 3, 3)),
            dict(padding_mode="mirror"),
            ValueError,
            ["padding_mode", "'mirror'"],
        ),
        (
            (_t(1, 1, 5, 5), _t(1, 1, 3, 3)),
            dict(padding=5, padding_mode="reflect"),
            ValueError,
            ["reflect", "(5, 5)", "5"],
        ),
        (
            (_t(1, 1, 5, 5), _t(1, 1, 3, 3)),
            dict(padding=6, padding_mode="circular"),
            ValueError,
            ["circular", "(6, 6)"],
        ),
        ((_t(1, 1, 5, 5), _t(1, 1, 3, 3), _t(2)), {}, ValueError, ["bias", "(1,)", "(2,)"]),
        (
            (_t(1, 1, 9, 5), _t(1, 1, 7, 3)),
            dict(dilation=(1, 3)),
            ValueError,
            ["output width", "7 (= 3*(3-1)+1)"],
        ),
        (
            (_t(1, 1, 5, 5), _t(1, 1, 3, 3, dtype=np.float64)),
            {},
            TypeError,
            ["input=float32", "weight=float64"],
        ),
        ((_t(1, 1, 5, 5, dtype=np.int64), _t(1, 1, 3, 3)), {}, TypeError, ["input", "int64"]),
        ((np.zeros((1, 1, 5, 5)), _t(1, 1, 3, 3)), {}, TypeError, ["input", "Tensor"]),
    ],
)
def test_validation_errors(args, kwargs, error, pieces):
    with pytest.raises(error) as info:
        F.conv2d(*args, **kwargs)
    for piece in pieces:
        assert piece in str(info.value), (piece, str(info.value))
    assert str(info.value).startswith("conv2d:")


def test_kernel_larger_than_input_message():
    with pytest.raises(ValueError) as info:
        F.conv2d(_t(1, 1, 9, 5), _t(1, 1, 7, 7))
    assert str(info.value).startswith(
        "conv2d: output width (5 - 7 + 2*0)/1 + 1 = -1 is < 1 (input 5, kernel 7, padding 0, "
        "stride 1)"
    )


def test_mixed_devices_raise():
    x = _t(1, 1, 5, 5)
    w = Tensor._wrap(np.zeros((1, 1, 3, 3), np.float32), "cuda")  # a stand-in: no GPU needed
    with pytest.raises(ValueError, match="conv2d: all tensors must be on one device"):
        F.conv2d(x, w)


# ---------------------------------------------------------------------------- kernels
def _run(x, w, b, **kwargs):
    tx, tw, tb = (tc.tensor(a, requires_grad=True) for a in (x, w, b))
    out = Conv2d.apply(tx, tw, tb, **kwargs)
    g = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(tc.tensor(g))
    return [out.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()]


@needs_torch
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize(
    "x_shape,per_image_min,parts_bytes",
    [
        ((3, 8, 16, 16), None, None),  # 256 pixels: per image, as tuned
        ((3, 8, 5, 5), 1, 1),  # per image, one image per chunk of partial gradients
        ((3, 8, 5, 5), None, None),  # 25 pixels: transposed to (C, N*H*W), one GEMM
    ],
)
def test_gemm1x1_weight_gradient_paths_match_torch(
    groups, x_shape, per_image_min, parts_bytes, monkeypatch
):
    if per_image_min is not None:
        monkeypatch.setattr(conv_op, "PER_IMAGE_WEIGHT_MIN", per_image_min)
        monkeypatch.setattr(conv_op, "PARTS_BYTES", parts_bytes)
    rng = np.random.default_rng(8)
    arrays = [rand(rng, *x_shape), rand(rng, 6, 8 // groups, 1, 1), rand(rng, 6)]
    check_op(
        lambda x, w, b: F.conv2d(x, w, b, groups=groups),
        lambda x, w, b: TF.conv2d(x, w, b, groups=groups),
        arrays,
        atol=1e-10,
        rtol=1e-10,
    )


@pytest.mark.parametrize(
    "algo,groups,tiny",
    [
        ("direct", 1, 0),
        ("direct", 4, 0),
        ("im2col", 2, 0),
        ("im2col", 1, 1),
        ("gemm1x1", 1, 0),
        ("gemm1x1", 2, 1),
    ],
)
def test_one_and_two_threads_agree(algo, groups, tiny, monkeypatch):
    """im2col and the direct kernels bit for bit (their weight-gradient partials do not depend
    on the threads), gemm1x1 to rounding (a GEMM split by the threads: OpenBLAS may sum a block
    of another shape in another order); ``tiny``: one-row tiles, more of them than lanes
    (im2col), the per-image weight GEMMs (gemm1x1)."""
    if tiny:
        small_tiles(monkeypatch, rows=True)
        monkeypatch.setattr(conv_op, "PER_IMAGE_WEIGHT_MIN", 1)
    rng = np.random.default_rng(5)
    k = 1 if algo == "gemm1x1" else 3
    x, w, b = rand(rng, 5, 8, 9, 7), rand(rng, 8, 8 // groups, k, k), rand(rng, 8)
    p = 0 if algo == "gemm1x1" else 1
    kw = dict(stride=(1, 1), padding=(p, p, p, p), dilation=(1, 1), groups=groups, algorithm=algo)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run(x, w, b, **kw)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _run(x, w, b, **kw)
    finally:
        numba.set_num_threads(before)
    for a, c in zip(one, two):
        if algo in ("im2col", "direct"):
            np.testing.assert_array_equal(a, c)
        else:
            np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algo,k", [("direct", 3), ("im2col", 3), ("gemm1x1", 1)])
def test_input_gradient_skipped_when_not_required(algo, k, monkeypatch):
    def boom(*args):
        raise AssertionError("input-gradient kernel called for an input without requires_grad")

    monkeypatch.setattr(cpu_conv, "conv2d_backward_input", boom)
    monkeypatch.setattr(cpu_conv, "im2col_backward_input", boom)
    calls = []
    gemm = cpu_conv.gemm
    monkeypatch.setattr(cpu_conv, "gemm", lambda *a: calls.append(1) or gemm(*a))
    rng = np.random.default_rng(6)
    x = tc.tensor(rand(rng, 2, 4, 6, 6))
    w = tc.tensor(rand(rng, 3, 4, k, k), requires_grad=True)
    out = Conv2d.apply(
        x, w, None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, algorithm=algo
    )
    calls.clear()
    out.sum().backward()
    assert x.grad is None and w.grad is not None
    assert len(calls) == (1 if algo == "gemm1x1" else 0)  # only the weight-gradient GEMM
    ref = reference_conv2d(x.numpy(), w.numpy(), None)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_im2col_tiles_cover_the_output_once():
    """Whole images while their columns fit a tile; slabs of rows for a large image."""
    tiles = cpu_conv._tiles
    small = tiles(10, 27, 8, 8, 4)  # 6.9 KB of columns per image: one tile for the batch
    assert small == [(0, 10, 0, 8)]
    mid = tiles(5, 288, 24, 24, 4)  # 0.66 MB per image: one image per 1 MB tile
    assert mid == [(n, 1, 0, 24) for n in range(5)]
    big = tiles(2, 576, 224, 224, 4)  # 115 MB per image: slabs of rows of about 1 MB
    rows = cpu_conv.TILE_BYTES // (576 * 224 * 4)
    assert all(nb == 1 and ny <= rows for _, nb, _, ny in big)
    covered = [(n0 + b, y0 + y) for n0, nb, y0, ny in big for b in range(nb) for y in range(ny)]
    assert sorted(covered) == [(n, y) for n in range(2) for y in range(224)]
    assert tiles(0, 27, 8, 8, 4) == []
    # 7x7 images (0.9 MB of columns each): 4 per tile (196 columns), not one of 49
    assert tiles(8, 4608, 7, 7, 4) == [(0, 4, 0, 7), (4, 4, 0, 7)]


@pytest.mark.parametrize("tile_bytes,slab_bytes", [(1, 1), (1, 1 << 30), (8000, 1 << 30)])
def test_input_gradient_runs_never_cut_an_image(tile_bytes, slab_bytes, monkeypatch):
    """Rows of one image (slabs), one image or several per tile: each thread's run of tiles
    starts at an image and the runs cover every tile once, in order."""
    monkeypatch.setattr(cpu_conv, "TILE_BYTES", tile_bytes)
    monkeypatch.setattr(cpu_conv, "SLAB_BYTES", slab_bytes)
    p = cpu_conv._Im2col((7, 3, 6, 6), (4, 3, 3, 3), (6, 6), 1, 1, 1, 1, 1, 1, 1, np.float32)
    for parts in (1, 2, 3, 16):
        runs = p.by_image(parts)
        assert 1 <= len(runs) <= parts and all(run and run[0][2] == 0 for run in runs)
        assert [t for run in runs for t in run] == p.tiles


def test_choose_algorithm():
    choose = conv_op.choose_algorithm
    assert choose((16, 1024, 14, 14), (256, 1024, 1, 1), (1, 1), (0,) * 4, 1) == "gemm1x1"
    assert choose((16, 728, 19, 19), (728, 1, 3, 3), (1, 1), (1,) * 4, 728) == "direct"
    assert choose((16, 256, 14, 14), (256, 8, 3, 3), (1, 1), (1,) * 4, 32) == "direct"
    assert choose((16, 256, 14, 14), (256, 256, 3, 3), (1, 1), (1,) * 4, 1) == "im2col"


def test_workspace_reuses_buffers():
    from tinycnn.ops.cpu import workspace

    a = workspace.get("test.buf", (4, 5), np.float32)
    b = workspace.get("test.buf", (2, 3), np.float32)
    assert b.base is a.base and a.flags.c_contiguous and b.shape == (2, 3)
    c = workspace.get("test.buf", (10, 10), np.float32)  # grows
    assert c.shape == (10, 10) and workspace.nbytes() >= 400


def _same_with_non_finite(got, expected):
    """NaN where NaN, +Inf where +Inf, -Inf where -Inf, and the finite values equal."""
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(got), kind(expected))
    finite = np.isfinite(expected)
    assert 0 < finite.sum() < finite.size
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [0, 1])
def test_weight_gradient_of_an_input_that_is_not_finite(algorithm, padding):
    """An Inf or NaN in the input makes NaN or Inf only of the weight-gradient sums it is a
    term of, as the sum written out (the direct kernel's stride-1 sums, which run over whole
    padded rows, once turned the zero gradient of the columns past the output into NaN)."""
    rng = np.random.default_rng(8)
    x, w = rand(rng, 2, 3, 5, 6), rand(rng, 4, 3, 3, 3)
    x[0, 0, 0, 0], x[1, 1, 2, 3] = np.nan, -np.inf
    xt, wt = tc.tensor(x), tc.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, padding=padding)
    g = rand(rng, *y.shape)
    y.backward(tc.tensor(g))
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    expected = np.einsum("noyz,ncyzij->ocij", g, windows)
    _same_with_non_finite(wt.grad.numpy(), expected)


@pytest.mark.parametrize("padding", [0, 1])
def test_input_gradient_of_weights_that_are_not_finite(algorithm, padding):
    """Likewise for the input gradient of weights holding NaN and -Inf (the direct kernel's
    stride-1 gather runs over a zero margin around the upstream gradient)."""
    rng = np.random.default_rng(9)
    x, w = rand(rng, 2, 3, 5, 6), rand(rng, 4, 3, 3, 3)
    w[0, 0, 0, 0], w[2, 1, 1, 2] = np.nan, -np.inf
    xt = tc.tensor(x, requires_grad=True)
    y = F.conv2d(xt, tc.tensor(w), padding=padding)
    g = rand(rng, *y.shape)
    y.backward(tc.tensor(g))
    _same_with_non_finite(xt.grad.numpy(), _input_gradient_written_out(g, w, x.shape, padding))


def _input_gradient_written_out(g, w, x_shape, padding):
    """A 3×3 stride-1 convolution's input gradient as the sum written out, term by term."""
    n, c, h, wd = x_shape
    dxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    for yy in range(g.shape[2]):
        for zz in range(g.shape[3]):
            for i in range(3):
                for j in range(3):
                    dxp[:, :, yy + i, zz + j] += g[:, :, yy, zz] @ w[:, :, i, j]
    return dxp[:, :, padding : padding + h, padding : padding + wd]


@pytest.mark.parametrize("padding", [0, 1])
def test_gradients_of_an_upstream_gradient_that_is_not_finite(algorithm, padding):
    """A NaN or Inf in the upstream gradient meets only real terms in both gradients (the
    direct kernels' zero margins hold zeros of ``g``, times finite ``x`` and ``w``), so only
    ``x`` (weight gradient) and ``w`` (input gradient) are checked before the direct kernels,
    never the larger ``g``: both are the sums written out, NaN for NaN and Inf for Inf."""
    rng = np.random.default_rng(10)
    x, w = rand(rng, 2, 3, 5, 6), rand(rng, 4, 3, 3, 3)
    xt, wt = tc.tensor(x, requires_grad=True), tc.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, padding=padding)
    g = rand(rng, *y.shape)
    g[0, 1, 0, 0], g[1, 2, -1, -1], g[1, 3, 1, 2] = np.nan, np.inf, -np.inf
    y.backward(tc.tensor(g))
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    with np.errstate(invalid="ignore"):
        _same_with_non_finite(wt.grad.numpy(), np.einsum("noyz,ncyzij->ocij", g, windows))
        expected = _input_gradient_written_out(g, w, x.shape, padding)
    _same_with_non_finite(xt.grad.numpy(), expected)


@pytest.mark.parametrize("og", [1, 2, 3, 4, 5, 6, 7, 9])
@pytest.mark.parametrize("groups", [1, 2])
def test_direct_weight_gradient_of_every_channel_count(og, groups):
    """The direct stride-1 weight gradient takes output channels four at a time, then two,
    then one: every remainder, with groups, padding and dilation, equals the weight gradient
    of the loop reference (``dL/dw[o, c, i, j] = sum g[n, o] * xpad[n, c, shifted]``)."""
    rng = np.random.default_rng(og * 10 + groups)
    cg, cout = 3, og * groups
    x = rng.standard_normal((3, cg * groups, 7, 6))
    g = rng.standard_normal((3, cout, 7, 4))  # 3x3, padding (1, 1, 0, 0), dilation (1, 1)
    dw = np.empty((cout, cg, 3, 3))
    cpu_conv.conv2d_backward_weight(x, g, 1, 1, 1, 0, 1, 1, groups, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    want = np.zeros_like(dw)
    for o in range(cout):
        c0 = (o // og) * cg
        for i in range(3):
            for j in range(3):
                patch = xp[:, c0 : c0 + cg, i : i + 7, j : j + 4]
                want[o, :, i, j] = np.einsum("nchw,nhw->c", patch, g[:, o])
    np.testing.assert_allclose(dw, want, rtol=1e-12, atol=1e-12)
