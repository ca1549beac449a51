"""softmax, log_softmax and the losses: NumPy references, float64 gradchecks, torch parity on
random configurations, validation messages, thread-count independence."""

import numba
import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
from tinycnn.ops.cpu import loss as loss_kernels
from tinycnn.ops.cpu import softmax as softmax_kernels
from tinycnn.testing import gradcheck

from .helpers import TF, check_op, needs_torch, rand, torch


# --------------------------------------------------------------------------- references
def softmax_ref(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax_ref(x, dim):
    m = x.max(axis=dim, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=dim, keepdims=True))


def reduce_ref(per_sample, reduction, denom):
    if reduction == "none":
        return per_sample
    return per_sample.sum() / (denom if reduction == "mean" else 1.0)


def cross_entropy_ref(x, t, w=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """Loop over samples of (N, C) logits with class-index targets (PyTorch's definition)."""
    n, c = x.shape
    w = np.ones(c) if w is None else w
    logp = log_softmax_ref(x, 1)
    per, denom = np.zeros(n), 0.0
    for i in range(n):
        if t[i] == ignore_index:
            continue
        nll = -w[t[i]] * logp[i, t[i]]
        smooth = -(w * logp[i]).sum() / c
        per[i] = (1 - smoothing) * nll + smoothing * smooth
        denom += w[t[i]]
    return reduce_ref(per, reduction, denom)


def with_threads(n, fn):
    numba.set_num_threads(n)
    try:
        return fn()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


SOFTMAX_CASES = [((4, 7), 1), ((4, 7), 0), ((3, 4, 5), 1), ((2, 3, 4, 5), -1), ((2, 3, 4, 5), 1)]


# --------------------------------------------------------------------------- softmax
@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES)
def test_softmax_reference_and_gradcheck(shape, dim):
    rng = np.random.default_rng(0)
    x = rand(rng, *shape)
    np.testing.assert_allclose(F.softmax(tc.tensor(x), dim).numpy(), softmax_ref(x, dim), 1e-13)
    np.testing.assert_allclose(
        F.log_softmax(tc.tensor(x), dim).numpy(), log_softmax_ref(x, dim), 1e-13, 1e-13
    )
    y32 = F.softmax(tc.tensor(x.astype(np.float32)), dim)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.numpy(), softmax_ref(x, dim), rtol=1e-5, atol=1e-7)
    gradcheck(lambda t: F.softmax(t, dim), [tc.tensor(x, requires_grad=True)])
    gradcheck(lambda t: F.log_softmax(t, dim), [tc.tensor(x, requires_grad=True)])


def test_softmax_is_stable_for_large_and_very_negative_logits():
    x = tc.tensor(np.array([[1000.0, 1001.0, -1e4], [-1000.0, -1001.0, -2000.0]], np.float32))
    p = F.softmax(x, 1).numpy()
    np.testing.assert_allclose(p[:, :2], [[0.26894142, 0.73105858], [0.73105858, 0.26894142]], 1e-6)
    assert p[0, 2] == 0.0 and np.all(np.isfinite(p))
    lp = F.log_softmax(x, 1).numpy()
    np.testing.assert_allclose(lp[0, 2], -1e4 - 1001.0 - np.log1p(np.exp(-1.0)), rtol=1e-6)


@pytest.mark.parametrize("scale", [1e8, 1e16, -1e300])
def test_log_softmax_and_cross_entropy_keep_every_bit_of_huge_float64_logits(scale):
    """``(x - max) - log(sum)`` in that order (fastmath must not reassociate it into
    ``x - (max + log(sum))``, which rounds to 0 or 2 at 1e16): the shifted logits
    ``d = x - max`` are exact, so the result equals ``d - log(sum(exp(d)))`` to the last bit."""
    d = np.array([0.0, -1.0, -2.0, 0.0])
    x = scale + d if abs(scale) < 1e300 else np.full(4, scale)
    d = x - x.max()
    want = d - np.log(np.exp(d).sum())
    rows = np.stack([x, x[::-1]])
    for dim, xs, ws in ((1, rows, np.stack([want, want[::-1]])), (0, rows.T, None)):
        t = tc.tensor(xs, requires_grad=True)
        got = F.log_softmax(t, dim).numpy()
        np.testing.assert_allclose(got, ws if ws is not None else np.stack([want, want[::-1]]).T,
                                   rtol=1e-15, atol=1e-15)  # fmt: skip
    t = tc.tensor(rows, requires_grad=True)
    loss = F.cross_entropy(t, tc.tensor(np.array([1, 0])))
    loss.backward()
    np.testing.assert_allclose(loss.item(), -(want[1] + want[::-1][0]) / 2, rtol=1e-15)
    grad = np.exp(np.stack([want, want[::-1]])) / 2
    grad[0, 1] -= 0.5
    grad[1, 0] -= 0.5
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-14, atol=1e-16)


def test_softmax_propagates_nan_and_handles_0d():
    p = F.softmax(tc.tensor(np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]])), 1).numpy()
    assert np.isnan(p[0]).all() and np.isfinite(p[1]).all()
    assert F.softmax(tc.tensor(np.float64(3.0)), 0).item() == 1.0


@pytest.mark.parametrize("kernels", [softmax_kernels, loss_kernels], ids=["softmax", "loss"])
def test_vectorised_exp_is_accurate_on_the_softmax_range(kernels):
    xs = np.concatenate([-np.geomspace(1e-12, 707.9, 400), [0.0, -1e-300]])
    got = np.array([kernels._exp(x) for x in xs])
    # fastmath may merge the two-constant range reduction: the error grows like |x| * 4e-17
    assert np.all(np.abs(got - np.exp(xs)) <= (3e-16 + 4e-17 * np.abs(xs)) * np.exp(xs))
    assert kernels._exp(-np.inf) == 0.0 and kernels._exp(-800.0) == 0.0
    assert np.isnan(kernels._exp(np.nan))


@needs_torch
@pytest.mark.parametrize("seed", range(4))
def test_softmax_matches_torch_random_dims(seed):
    rng = np.random.default_rng(100 + seed)
    shape = tuple(int(s) for s in rng.integers(1, 6, size=rng.integers(1, 5)))
    dim = int(rng.integers(-len(shape), len(shape)))
    x = rand(rng, *shape) * 5
    check_op(lambda t: F.softmax(t, dim), lambda t: TF.softmax(t, dim), [x], atol=1e-12)
    check_op(lambda t: F.log_softmax(t, dim), lambda t: TF.log_softmax(t, dim), [x], atol=1e-12)


@needs_torch
def test_softmax_float32_large_matches_torch():
    rng = np.random.default_rng(8)
    x = rand(rng, 64, 1000, dtype=np.float32) * 4  # parallel kernels, long rows
    check_op(lambda t: F.softmax(t, 1), lambda t: TF.softmax(t, 1), [x], atol=1e-6, rtol=1e-5)
    x = rand(rng, 8, 10, 30, 30, dtype=np.float32)  # dim 1 with inner > 1
    check_op(
        lambda t: F.log_softmax(t, 1), lambda t: TF.log_softmax(t, 1), [x], atol=2e-6, rtol=1e-5
    )


def test_softmax_same_result_at_1_and_2_threads():
    x = tc.tensor(rand(np.random.default_rng(9), 300, 200, dtype=np.float32))
    assert x.size >= softmax_kernels.PARALLEL_MIN
    np.testing.assert_array_equal(
        with_threads(1, lambda: F.softmax(x, 1).numpy()), F.softmax(x, 1).numpy()
    )


def test_softmax_validation():
    with pytest.raises(ValueError, match=r"softmax: dim 2 is out of range for a 2-d input"):
        F.softmax(tc.tensor(np.ones((2, 3))), 2)
    with pytest.raises(TypeError, match="log_softmax: input must be float32 or float64"):
        F.log_softmax(tc.tensor([1, 2]), 0)
    with pytest.raises(TypeError, match="dim must be an int"):
        F.softmax(tc.tensor(np.ones(3)), None)


# --------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_reference_weights_ignore_smoothing(reduction):
    rng = np.random.default_rng(1)
    x, t, w = rand(rng, 7, 5), rng.integers(0, 5, 7), rng.random(5) + 0.5
    t[2] = -100
    for weight in (None, w):
        for s in (0.0, 0.3):
            out = F.cross_entropy(
                tc.tensor(x),
                tc.tensor(t),
                None if weight is None else tc.tensor(weight),
                reduction=reduction,
                label_smoothing=s,
            )
            ref = cross_entropy_ref(x, t, weight, reduction=reduction, smoothing=s)
            np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-14)


def test_cross_entropy_probability_targets_reference():
    rng = np.random.default_rng(2)
    x, p = rand(rng, 6, 4), rng.random((6, 4))
    p /= p.sum(1, keepdims=True)
    out = F.cross_entropy(tc.tensor(x), tc.tensor(p), reduction="none").numpy()
    np.testing.assert_allclose(out, -(p * log_softmax_ref(x, 1)).sum(1), rtol=1e-12)
    onehot = np.eye(4)[[0, 3, 1, 1, 2, 0]]
    t = np.array([0, 3, 1, 1, 2, 0])
    np.testing.assert_allclose(
        F.cross_entropy(tc.tensor(x), tc.tensor(onehot)).numpy(),
        F.cross_entropy(tc.tensor(x), tc.tensor(t)).numpy(),
        rtol=1e-12,
    )


def test_fused_cross_entropy_equals_log_softmax_then_nll():
    rng = np.random.default_rng(3)
    x, t = rand(rng, 10, 6), rng.integers(0, 6, 10)
    a = tc.tensor(x, requires_grad=True)
    b = tc.tensor(x, requires_grad=True)
    fused = F.cross_entropy(a, tc.tensor(t))
    composed = F.nll_loss(F.log_softmax(b, 1), tc.tensor(t))
    fused.backward()
    composed.backward()
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-13)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-15)
    # the fused backward is (softmax - onehot) / N
    np.testing.assert_allclose(a.grad.numpy(), (softmax_ref(x, 1) - np.eye(6)[t]) / 10, atol=1e-15)


def test_cross_entropy_gradcheck():
    rng = np.random.default_rng(4)
    x = tc.tensor(rand(rng, 4, 3, 2), requires_grad=True)  # (N, C, d1)
    t = tc.tensor(rng.integers(0, 3, (4, 2)))
    w = tc.tensor(rng.random(3) + 0.5)
    gradcheck(lambda x: F.cross_entropy(x, t, w, label_smoothing=0.2), [x])
    gradcheck(lambda x: F.cross_entropy(x, t, reduction="none"), [x])
    p = rng.random((4, 3, 2))
    p = tc.tensor(p / p.sum(1, keepdims=True), requires_grad=True)
    gradcheck(lambda x, p: F.cross_entropy(x, p, w, reduction="sum", label_smoothing=0.1), [x, p])


@needs_torch
@pytest.mark.parametrize("seed", range(6))
def test_cross_entropy_matches_torch_random_configs(seed):
    rng = np.random.default_rng(200 + seed)
    n, c = int(rng.integers(1, 6)), int(rng.integers(2, 6))
    spatial = tuple(int(s) for s in rng.integers(1, 4, size=rng.integers(0, 3)))
    shape = (n, c) + spatial
    reduction = ["mean", "sum", "none"][seed % 3]
    smoothing = [0.0, 0.25][seed % 2]
    w = rng.random(c) + 0.5 if seed >= 3 else None
    x = rand(rng, *shape)
    t = rng.integers(0, c, (n,) + spatial)
    t.reshape(-1)[0] = 1  # at least one target not ignored
    if t.size > 1:
        t.reshape(-1)[-1] = -100
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    tw = None if w is None else tc.tensor(w)
    pw = None if w is None else torch.tensor(w)
    check_op(
        lambda x, t: F.cross_entropy(x, t, tw, **kw),
        lambda x, t: TF.cross_entropy(x, t, pw, **kw),
        [x, t],
        atol=1e-12,
    )
    p = rng.random(shape)
    p /= p.sum(1, keepdims=True)
    check_op(
        lambda x, p: F.cross_entropy(x, p, tw, **kw),
        lambda x, p: TF.cross_entropy(x, p, pw, **kw),
        [x, p],
        atol=1e-12,
    )


@needs_torch
def test_cross_entropy_unbatched_and_float32_large_match_torch():
    rng = np.random.default_rng(5)
    check_op(F.cross_entropy, TF.cross_entropy, [rand(rng, 5), np.array(3)], atol=1e-12)
    x = rand(rng, 256, 200, dtype=np.float32)  # parallel kernels
    t = rng.integers(0, 200, 256)
    check_op(F.cross_entropy, TF.cross_entropy, [x, t], atol=1e-6, rtol=1e-5)


def test_cross_entropy_same_result_at_1_and_2_threads():
    rng = np.random.default_rng(6)
    x = rand(rng, 256, 200, dtype=np.float32)
    assert x.size >= loss_kernels.PARALLEL_MIN
    t = tc.tensor(rng.integers(0, 200, 256))

    def run():
        a = tc.tensor(x, requires_grad=True)
        y = F.cross_entropy(a, t, reduction="none")
        y.sum().backward()
        return y.numpy(), a.grad.numpy()

    for a, b in zip(with_threads(1, run), run()):
        np.testing.assert_array_equal(a, b)


def test_cross_entropy_all_ignored_mean_is_nan():
    x = tc.tensor(np.zeros((2, 3)))
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(F.cross_entropy(x, tc.tensor([-100, -100])).item())
        # every target of weight 0, with smoothing: NaN as in torch (not the smoothing's inf)
        w = tc.tensor(np.array([0.0, 1.0, 1.0]))
        for smoothing in (0.0, 0.1):
            loss = F.cross_entropy(x, tc.tensor([0, 0]), w, label_smoothing=smoothing)
            assert np.isnan(loss.item()), smoothing
        loss = F.cross_entropy(x, tc.tensor([0, 1]), w, label_smoothing=0.1)  # the + 0 is exact
        ref = F.cross_entropy(x, tc.tensor([0, 1]), w, label_smoothing=0.1, reduction="sum")
        assert loss.item() == ref.item() / 1.0


def test_cross_entropy_validation_names_the_rule():
    x = tc.tensor(np.zeros((3, 4)))
    with pytest.raises(
        ValueError, match=r"target 4 is out of range for 4 classes.*0 <= target < 4"
    ):
        F.cross_entropy(x, tc.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="target -1 is out of range for 4 classes"):
        F.cross_entropy(x, tc.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match=r"target must have shape \(3,\).*got \(2,\)"):
        F.cross_entropy(x, tc.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"probability targets must have the input's shape"):
        F.cross_entropy(x, tc.tensor(np.zeros((3, 5))))
    with pytest.raises(TypeError, match="integer class indices or float class probabilities"):
        F.cross_entropy(x, tc.tensor(np.array([True, False, True])))
    with pytest.raises(TypeError, match="target dtype float32 differs from input float64"):
        F.cross_entropy(x, tc.tensor(np.zeros((3, 4), np.float32)))
    with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(4,\)"):
        F.cross_entropy(x, tc.tensor([0, 1, 2]), tc.tensor(np.ones(3)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, tc.tensor([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be <= 1.0, got 1.5"):
        F.cross_entropy(x, tc.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="ignore_index is not supported for probability"):
        F.cross_entropy(x, tc.tensor(np.zeros((3, 4))), ignore_index=0)
    with pytest.raises(TypeError, match="input must be float32 or float64"):
        F.cross_entropy(tc.tensor(np.zeros((3, 4), np.int64)), tc.tensor([0, 1, 2]))


def test_cross_entropy_accepts_int32_targets():
    x = tc.tensor(rand(np.random.default_rng(7), 3, 4))
    a = F.cross_entropy(x, tc.tensor(np.array([0, 3, 1], np.int32))).item()
    assert a == F.cross_entropy(x, tc.tensor(np.array([0, 3, 1]))).item()


# --------------------------------------------------------------------------- nll, mse, bce
def test_nll_loss_reference_gradcheck_and_errors():
    rng = np.random.default_rng(8)
    lp, t, w = rand(rng, 5, 3), np.array([0, 2, -100, 1, 2]), rng.random(3) + 0.5
    per = np.array([-w[k] * lp[i, k] if k >= 0 else 0.0 for i, k in enumerate(t)])
    denom = sum(w[k] for k in t if k >= 0)
    for r in ("mean", "sum", "none"):
        out = F.nll_loss(tc.tensor(lp), tc.tensor(t), tc.tensor(w), reduction=r).numpy()
        np.testing.assert_allclose(out, reduce_ref(per, r, denom), rtol=1e-13)
    gradcheck(
        lambda x: F.nll_loss(x, tc.tensor(t), tc.tensor(w)), [tc.tensor(lp, requires_grad=True)]
    )
    with pytest.raises(ValueError, match="nll_loss: target 3 is out of range for 3 classes"):
        F.nll_loss(tc.tensor(lp), tc.tensor([0, 3, 1, 1, 1]))
    with pytest.raises(TypeError, match="nll_loss: target must be integer class indices"):
        F.nll_loss(tc.tensor(lp), tc.tensor(np.zeros((5, 3))))


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_mse_bce_match_torch(reduction):
    rng = np.random.default_rng(9)
    x, t = rand(rng, 4, 5, 3), rng.integers(0, 5, (4, 3))
    check_op(
        lambda x, t: F.nll_loss(x, t, reduction=reduction),
        lambda x, t: TF.nll_loss(x, t, reduction=reduction),
        [x, t],
        atol=1e-12,
    )
    a, b = rand(rng, 3, 4), rand(rng, 3, 4)
    check_op(
        lambda a, b: F.mse_loss(a, b, reduction=reduction),
        lambda a, b: TF.mse_loss(a, b, reduction=reduction),
        [a, b],
        atol=1e-12,
    )
    p, y, w = rng.uniform(0.02, 0.98, (3, 4)), rng.random((3, 4)), rng.random(4) + 0.5
    check_op(
        lambda p, y: F.binary_cross_entropy(p, y, tc.tensor(w), reduction=reduction),
        lambda p, y: TF.binary_cross_entropy(p, y, torch.tensor(w), reduction=reduction),
        [p, y],
        atol=1e-12,
    )


def test_mse_and_bce_reference_and_gradcheck():
    rng = np.random.default_rng(10)
    a, b = rand(rng, 3, 4), rand(rng, 3, 4)
    np.testing.assert_allclose(F.mse_loss(tc.tensor(a), tc.tensor(b)).item(), ((a - b) ** 2).mean())
    gradcheck(F.mse_loss, [tc.tensor(a, requires_grad=True), tc.tensor(b, requires_grad=True)])
    p, y = rng.uniform(0.05, 0.95, (3, 4)), rng.random((3, 4))
    ref = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    out = F.binary_cross_entropy(tc.tensor(p), tc.tensor(y), reduction="none").numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-13)
    gradcheck(
        lambda p, y: F.binary_cross_entropy(p, y, reduction="sum"),
        [tc.tensor(p, requires_grad=True), tc.tensor(y, requires_grad=True)],
    )


def test_bce_clamps_log_at_minus_100_like_torch():
    p = tc.tensor(np.array([0.0, 1.0, 0.0, 1.0], np.float32), requires_grad=True)
    y = tc.tensor(np.array([1.0, 0.0, 0.0, 1.0], np.float32))
    loss = F.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_array_equal(loss.numpy(), [100.0, 100.0, 0.0, 0.0])
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad.numpy()))  # the 1e-12 floor of the denominator


@needs_torch
def test_bce_gradient_at_0_and_1_is_torchs_bit_for_bit():
    """The floor is PyTorch's EPSILON, the float 1e-12f (9.99999996e-13), in float64 too."""
    x, y = np.array([0.0, 1.0, 0.0, 1.0, 0.5]), np.array([0.3, 0.7, 0.0, 1.0, 0.2])
    a = tc.tensor(x, requires_grad=True)
    F.binary_cross_entropy(a, tc.tensor(y), reduction="sum").backward()
    b = torch.tensor(x, requires_grad=True)
    TF.binary_cross_entropy(b, torch.tensor(y), reduction="sum").backward()
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
    assert a.grad.numpy()[0] == -0.3 / 9.999999960041972e-13


def test_mse_bce_validation():
    a = tc.tensor(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(3,\) must equal input shape"):
        F.mse_loss(a, tc.tensor(np.ones(3)))
    with pytest.raises(TypeError, match="mse_loss: target must be float32 or float64"):
        F.mse_loss(a, tc.tensor(np.ones((2, 3), np.int64)))
    bad = np.full((2, 3), 0.5)
    bad[1, 2] = 1.5
    with pytest.raises(ValueError, match=r"elements of input must be between 0 and 1, got 1.5"):
        F.binary_cross_entropy(tc.tensor(bad), a)
    with pytest.raises(ValueError, match=r"elements of target must be between 0 and 1, got -0.5"):
        F.binary_cross_entropy(a, tc.tensor(np.full((2, 3), -0.5)))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="got nan"):
        F.binary_cross_entropy(tc.tensor(bad), a)
    with pytest.raises(ValueError, match=r"weight shape \(4,\) does not broadcast"):
        F.binary_cross_entropy(a, a, tc.tensor(np.ones(4)))


@pytest.mark.parametrize("per_element_grad", [True, False], ids=["g_per_element", "g_scalar"])
def test_mse_parallel_blocks_equal_the_serial_loop(per_element_grad):
    """The parallel MSE kernels hand each block to the loop as slices (the upstream gradient
    too when it has one value per element): every block, the ragged last one included, gives
    what one serial pass gives."""
    rng = np.random.default_rng(7)
    n = loss_kernels.PARALLEL_MIN * 3 + 1234
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    g = rng.standard_normal(n) if per_element_grad else np.array([0.25])
    loss, ref = np.empty(n), np.empty(n)
    loss_kernels.mse_loss_forward(x, y, loss)
    loss_kernels._mse_range(x, y, ref, 0, n)
    np.testing.assert_array_equal(loss, ref)
    out, ref = np.empty(n), np.empty(n)
    loss_kernels.mse_loss_backward(x, y, g, out)
    loss_kernels._mse_backward_range(x, y, g, int(per_element_grad), ref, 0, n)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(out, 2 * (x - y) * (g if per_element_grad else g[0]))
