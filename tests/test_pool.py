"""Pooling: NumPy loop references, float64 gradchecks, torch parity over random configurations,
PyTorch's edge rules (ties, NaN, ceil_mode, divisors) and the validation messages."""

import math

import numba
import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
from tinycnn.testing import gradcheck

from .helpers import TF, check_op, needs_torch, rand, torch


# ------------------------------------------------------------------------------ references
def ref_out(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside
        out -= 1
    return out


def ref_max_pool(x, k, s, p, d=(1, 1), ceil_mode=False):
    """Obvious loops: padding is -inf, the first maximum in scan order wins."""
    N, C, H, W = x.shape
    OH, OW = (ref_out(n, *a, ceil_mode) for n, *a in zip((H, W), k, s, p, d))
    out = np.empty((N, C, OH, OW), x.dtype)
    idx = np.empty((N, C, OH, OW), np.int64)
    for n, c, oh, ow in np.ndindex(N, C, OH, OW):
        best, arg = -np.inf, None
        for i in range(k[0]):
            for j in range(k[1]):
                ih, iw = oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1]
                if 0 <= ih < H and 0 <= iw < W and (arg is None or x[n, c, ih, iw] > best):
                    best, arg = x[n, c, ih, iw], ih * W + iw
        out[n, c, oh, ow], idx[n, c, oh, ow] = best, arg
    return out, idx


def ref_avg_pool(x, k, s, p, ceil_mode=False, count_include_pad=True, divisor_override=None):
    N, C, H, W = x.shape
    OH, OW = (ref_out(n, a, b, c, 1, ceil_mode) for n, a, b, c in zip((H, W), k, s, p))
    out = np.empty((N, C, OH, OW), x.dtype)
    for oh, ow in np.ndindex(OH, OW):
        h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
        h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])  # clipped to the padding
        real = x[:, :, max(h0, 0) : min(h1, H), max(w0, 0) : min(w1, W)]
        if divisor_override is not None:
            div = divisor_override
        elif count_include_pad:
            div = (h1 - h0) * (w1 - w0)
        else:
            div = real.shape[2] * real.shape[3]
        out[:, :, oh, ow] = real.sum(axis=(2, 3)) / div
    return out


def ref_adaptive(x, out_hw):
    H, W = x.shape[-2:]
    OH, OW = out_hw
    out = np.empty(x.shape[:-2] + (OH, OW), x.dtype)
    for oh, ow in np.ndindex(OH, OW):
        h0, h1 = math.floor(oh * H / OH), math.ceil((oh + 1) * H / OH)
        w0, w1 = math.floor(ow * W / OW), math.ceil((ow + 1) * W / OW)
        out[..., oh, ow] = x[..., h0:h1, w0:w1].mean(axis=(-2, -1))
    return out


# ------------------------------------------------------------------------------ configurations
def _windows_ok(size, k, s, p, d, out):
    return all(any(0 <= o * s - p + i * d < size for i in range(k)) for o in range(out))


def random_configs(n, seed, dilation):
    """Legal (PyTorch) configurations: odd sizes, stride > kernel, padding, dilation, ceil."""
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < n:
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 5, 2))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        d = tuple(int(v) for v in rng.integers(1, 4, 2)) if dilation else (1, 1)
        ceil_mode = bool(rng.integers(2))
        hw = tuple(int(v) for v in rng.integers(1, 16, 2))
        outs = [ref_out(*a, ceil_mode) for a in zip(hw, k, s, p, d)]
        if min(outs) < 1 or not all(_windows_ok(*a) for a in zip(hw, k, s, p, d, outs)):
            continue
        cfg = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode)
        if dilation:
            cfg["dilation"] = d
        found.append((hw, cfg))
    return found


def _hyper(cfg):
    """(kernel, stride, padding) pairs of a config, stride defaulting to the kernel."""

    def two(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    k = two(cfg["kernel_size"])
    return k, two(cfg.get("stride") or k), two(cfg.get("padding", 0))


# The windows the kernels special-case (unrolled 3x3 s1/s2, 2x2 s2), at interior and border.
NAMED = [
    ((17, 19), dict(kernel_size=3, stride=2, padding=1)),  # ResNet stem
    ((16, 16), dict(kernel_size=2)),  # VGG / LeNet
    ((15, 13), dict(kernel_size=3, stride=1, padding=1)),  # inception branch
    ((15, 15), dict(kernel_size=3, stride=2, ceil_mode=True)),  # GoogLeNet
    ((40, 37), dict(kernel_size=3, stride=2, padding=1)),  # runs longer than a vector
    ((9, 30), dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1))),
    ((11, 11), dict(kernel_size=5, stride=3, padding=2, ceil_mode=True)),
    ((7, 8), dict(kernel_size=1, stride=3)),  # stride > kernel
]


# ------------------------------------------------------------------------------ forward vs loops
@pytest.mark.parametrize("hw,cfg", NAMED)
def test_max_pool_matches_numpy_loops(hw, cfg):
    x = rand(np.random.default_rng(0), 2, 3, *hw)
    out, idx = F.max_pool2d(tc.tensor(x), **cfg, return_indices=True)
    k, s, p = _hyper(cfg)
    ref, ref_idx = ref_max_pool(x, k, s, p, ceil_mode=cfg.get("ceil_mode", False))
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    assert idx.dtype == np.int64 and not idx.requires_grad
    out32 = F.max_pool2d(tc.tensor(x.astype(np.float32)), **cfg)
    np.testing.assert_array_equal(out32.numpy(), ref.astype(np.float32))


@pytest.mark.parametrize("hw,cfg", NAMED)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_matches_numpy_loops(hw, cfg, count_include_pad):
    x = rand(np.random.default_rng(1), 2, 3, *hw)
    out = F.avg_pool2d(tc.tensor(x), **cfg, count_include_pad=count_include_pad)
    k, s, p = _hyper(cfg)
    ref = ref_avg_pool(x, k, s, p, cfg.get("ceil_mode", False), count_include_pad)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_max_pool_dilation_matches_numpy_loops():
    x = rand(np.random.default_rng(2), 1, 2, 13, 12)
    out, idx = F.max_pool2d(tc.tensor(x), (3, 2), (2, 1), (1, 1), (2, 3), True, True)
    ref, ref_idx = ref_max_pool(x, (3, 2), (2, 1), (1, 1), (2, 3), True)
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)


def test_avg_pool_ceil_mode_window_past_the_padding():
    # H=6, k=3, s=2, p=1, ceil: the last window [4, 7) hangs past the padded edge (6 + 1 = 7
    # only just holds it) -> PyTorch divides by the window clipped to input+padding
    x = np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6)
    out = F.avg_pool2d(tc.tensor(x), 3, 2, 0, ceil_mode=True).numpy()
    np.testing.assert_allclose(out, ref_avg_pool(x, (3, 3), (2, 2), (0, 0), True), rtol=1e-12)
    # last row/column window covers only input elements 4, 5 of [4, 7): divisor 2*2
    assert out[0, 0, -1, -1] == pytest.approx(x[0, 0, 4:6, 4:6].sum() / 4)


def test_avg_pool_divisor_override():
    x = rand(np.random.default_rng(3), 2, 2, 7, 9)
    out = F.avg_pool2d(tc.tensor(x), 3, 2, 1, ceil_mode=True, divisor_override=5).numpy()
    ref = ref_avg_pool(x, (3, 3), (2, 2), (1, 1), True, True, divisor_override=5)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("out_size", [1, 3, (4, None), (None, 2), (5, 13), (0, 2)])
def test_adaptive_avg_pool_matches_numpy_loops(out_size):
    x = rand(np.random.default_rng(4), 2, 3, 9, 11)
    out = F.adaptive_avg_pool2d(tc.tensor(x), out_size)
    pair = (out_size, out_size) if isinstance(out_size, int) else out_size
    hw = tuple(s if o is None else o for s, o in zip((9, 11), pair))
    assert out.shape == (2, 3) + hw
    np.testing.assert_allclose(out.numpy(), ref_adaptive(x, hw), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------ gradchecks
def _distinct(rng, *shape):
    """Values with no ties (a permutation), so max pooling is differentiable everywhere."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0).astype(np.float64)


@pytest.mark.parametrize(
    "cfg",
    [
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=2),
        dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1), ceil_mode=True),
    ],
)
def test_max_pool_gradcheck(cfg):
    x = tc.tensor(_distinct(np.random.default_rng(5), 1, 2, 5, 6), requires_grad=True)
    gradcheck(lambda t: F.max_pool2d(t, **cfg), [x])


@pytest.mark.parametrize(
    "cfg",
    [
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        dict(kernel_size=3, stride=1, padding=1),
        dict(kernel_size=(2, 3), stride=(3, 1), divisor_override=4),
    ],
)
def test_avg_pool_gradcheck(cfg):
    x = tc.tensor(rand(np.random.default_rng(6), 1, 2, 5, 6), requires_grad=True)
    gradcheck(lambda t: F.avg_pool2d(t, **cfg), [x])


def test_adaptive_avg_pool_gradcheck():
    x = tc.tensor(rand(np.random.default_rng(7), 1, 2, 5, 7), requires_grad=True)
    gradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 4)), [x])


# ------------------------------------------------------------------------------ vs torch
@needs_torch
@pytest.mark.parametrize("hw,cfg", NAMED + random_configs(40, seed=0, dilation=True))
def test_max_pool_vs_torch(hw, cfg):
    x = rand(np.random.default_rng(8), 2, 3, *hw)
    check_op(lambda t: F.max_pool2d(t, **cfg), lambda t: TF.max_pool2d(t, **cfg), [x])
    out, idx = F.max_pool2d(tc.tensor(x), **cfg, return_indices=True)
    _, ref_idx = TF.max_pool2d(torch.tensor(x), **cfg, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())


@needs_torch
@pytest.mark.parametrize("hw,cfg", NAMED + random_configs(40, seed=1, dilation=False))
def test_avg_pool_vs_torch(hw, cfg):
    x = rand(np.random.default_rng(9), 2, 3, *hw, dtype=np.float32)
    for extra in (dict(), dict(count_include_pad=False), dict(divisor_override=3)):
        kw = {**cfg, **extra}
        check_op(
            lambda t, kw=kw: F.avg_pool2d(t, **kw), lambda t, kw=kw: TF.avg_pool2d(t, **kw), [x]
        )


@needs_torch
@pytest.mark.parametrize("hw", [(7, 7), (9, 11), (5, 3), (16, 13)])
@pytest.mark.parametrize("out_size", [1, 2, (3, 5), (7, None), (20, 4)])
def test_adaptive_avg_pool_vs_torch(hw, out_size):
    x = rand(np.random.default_rng(10), 2, 3, *hw, dtype=np.float32)
    check_op(
        lambda t: F.adaptive_avg_pool2d(t, out_size),
        lambda t: TF.adaptive_avg_pool2d(t, out_size),
        [x],
    )


@needs_torch
def test_max_pool_ties_and_nan_pick_torchs_index():
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, (2, 3, 11, 12)).astype(np.float32)  # many ties
    x[0, 0, 2:4, 3] = np.nan  # two NaNs in one window: PyTorch keeps the last
    x[1, 2, 5, 5] = -np.inf
    for cfg in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=1)):
        a = tc.tensor(x, requires_grad=True)
        b = torch.tensor(x, requires_grad=True)
        out, idx = F.max_pool2d(a, **cfg, return_indices=True)
        ref, ref_idx = TF.max_pool2d(b, **cfg, return_indices=True)
        np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())  # NaN == NaN here
        np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
        g = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(tc.tensor(g))
        ref.backward(torch.tensor(g))
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


@needs_torch
def test_all_minus_inf_window_points_at_its_first_element():
    x = np.full((1, 1, 4, 4), -np.inf, np.float32)
    _, idx = F.max_pool2d(tc.tensor(x), 3, 2, 1, return_indices=True)
    _, ref = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), ref.numpy())


@needs_torch
def test_chw_input_and_empty_batch_as_torch():
    x = rand(np.random.default_rng(12), 3, 9, 8)
    check_op(lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: TF.max_pool2d(t, 3, 2, 1), [x])
    check_op(lambda t: F.avg_pool2d(t, 2), lambda t: TF.avg_pool2d(t, 2), [x])
    check_op(lambda t: F.adaptive_avg_pool2d(t, 2), lambda t: TF.adaptive_avg_pool2d(t, 2), [x])
    empty = tc.tensor(np.zeros((0, 3, 8, 8), np.float32))
    assert F.max_pool2d(empty, 2).shape == tuple(TF.max_pool2d(torch.zeros(0, 3, 8, 8), 2).shape)
    assert F.avg_pool2d(empty, 3, 2, 1).shape == (0, 3, 4, 4)


def test_gradient_skipped_without_requires_grad():
    out = F.max_pool2d(tc.tensor(np.ones((1, 1, 4, 4))), 2)
    assert not out.requires_grad and out._ctx is None


# ------------------------------------------------------------------------------ threads
def test_one_and_two_threads_give_identical_results():
    x = rand(np.random.default_rng(13), 4, 8, 23, 21, dtype=np.float32)
    g = tc.tensor(rand(np.random.default_rng(14), 4, 8, 12, 11, dtype=np.float32))

    def run():
        t = tc.tensor(x, requires_grad=True)
        outs = [F.max_pool2d(t, 3, 2, 1), F.avg_pool2d(t, 3, 2, 1, count_include_pad=False)]
        (outs[0] * g + outs[1] * g).sum().backward()
        ada = F.adaptive_avg_pool2d(tc.tensor(x), 5)
        return [o.numpy() for o in outs] + [t.grad.numpy(), ada.numpy()]

    numba.set_num_threads(1)
    try:
        one = run()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, b in zip(one, run()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ validation
X = tc.tensor(np.zeros((1, 2, 6, 6), np.float32))


@pytest.mark.parametrize(
    "call,error,pattern",
    [
        (lambda: F.max_pool2d(X, 3, padding=2), ValueError,
         r"max_pool2d: padding must be at most half of kernel_size.*padding=\(2, 2\).*"
         r"kernel_size=\(3, 3\)"),
        (lambda: F.avg_pool2d(X, (2, 4), padding=(0, 3)), ValueError,
         r"avg_pool2d: padding must be at most half.*padding=\(0, 3\).*kernel_size=\(2, 4\)"),
        (lambda: F.max_pool2d(tc.tensor(np.zeros((1, 1, 2, 5))), 3, 3), ValueError,
         r"max_pool2d: output height \(2 - 3 \+ 2\*0\)/3 \+ 1 = 0\.666667 is < 1"),
        (lambda: F.avg_pool2d(tc.tensor(np.zeros((1, 1, 5, 2))), 3), ValueError,
         r"avg_pool2d: output width \(2 - 3 \+ 2\*0\)/3 \+ 1"),
        (lambda: F.max_pool2d(X, 2, stride=0), ValueError,
         r"max_pool2d: stride must be >= 1, got 0"),
        (lambda: F.max_pool2d(X, 0), ValueError, r"max_pool2d: kernel_size must be >= 1, got 0"),
        (lambda: F.max_pool2d(X, 2, dilation=(1, 0)), ValueError, r"dilation must be >= 1"),
        (lambda: F.avg_pool2d(X, 2, padding=-1), ValueError, r"padding must be >= 0, got -1"),
        (lambda: F.max_pool2d(X, 2, stride=float("nan")), ValueError, r"max_pool2d: stride is NaN"),
        (lambda: F.avg_pool2d(X, (2, float("nan"))), ValueError, r"kernel_size is NaN"),
        (lambda: F.max_pool2d(X, 2.5), ValueError, r"kernel_size must be an int or a pair"),
        (lambda: F.max_pool2d(X, (2, 2, 2)), ValueError, r"kernel_size must be an int or a pair"),
        (lambda: F.max_pool2d(tc.tensor(np.zeros((6, 6))), 2), ValueError,
         r"max_pool2d: input must be 4-d or 3-d|input must be 3-d or 4-d"),
        (lambda: F.max_pool2d(tc.tensor(np.zeros((1, 1, 4, 4), np.int64)), 2), TypeError,
         r"max_pool2d: input must be float32 or float64, got int64"),
        (lambda: F.avg_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError,
         r"avg_pool2d: input must be a tinycnn Tensor"),
        (lambda: F.max_pool2d(tc.tensor(np.zeros((1, 0, 4, 4))), 2), ValueError,
         r"non-zero channels, height and width"),
        (lambda: F.avg_pool2d(X, 2, divisor_override=0), ValueError,
         r"divisor_override must not be 0"),
        (lambda: F.avg_pool2d(X, 2, divisor_override=1.5), TypeError,
         r"divisor_override must be an int"),
        (lambda: F.max_pool2d(X, 2, ceil_mode="yes"), TypeError,
         r"ceil_mode must be True or False"),
        (lambda: F.max_pool2d(tc.tensor(np.zeros((1, 1, 2, 2))), 2, 1, 1, 3), ValueError,
         r"max_pool2d: the height window of output 0 holds only padding \(taps at \[-1, 2\]"),
        (lambda: F.adaptive_avg_pool2d(X, -1), ValueError, r"output_size must be >= 0, got -1"),
        (lambda: F.adaptive_avg_pool2d(X, (2, 3, 4)), ValueError, r"output_size must be an int"),
    ],
)  # fmt: skip
def test_validation_messages(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_stride_defaults_to_kernel_size():
    x = tc.tensor(rand(np.random.default_rng(15), 1, 1, 8, 8))
    for stride in (None, [], ()):
        assert F.max_pool2d(x, 2, stride).shape == (1, 1, 4, 4)
    assert F.avg_pool2d(x, (3,)).shape == (1, 1, 2, 2)
