"""batch_norm and local_response_norm: NumPy references, float64 gradchecks, torch parity,
running statistics, validation, thread-count independence."""

import numba
import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
from tinycnn.ops.cpu import norm as norm_kernels
from tinycnn.testing import gradcheck

from .helpers import TF, check_op, needs_torch, rand, torch


# --------------------------------------------------------------------------- references
def bn_reference(x, mean, var, w, b, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(
        shape
    ) + b.reshape(shape)


def batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)


def lrn_reference(x, size, alpha, beta, k):
    out = np.empty_like(x)
    n_cls = x.shape[1]
    for c in range(n_cls):
        lo, hi = max(0, c - size // 2), min(n_cls, c + (size - 1) // 2 + 1)
        sq = (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (k + alpha / size * sq) ** beta
    return out


def with_threads(n, fn):
    numba.set_num_threads(n)
    try:
        return fn()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


# --------------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (7, 5), (3, 2, 9)])
def test_batch_norm_train_matches_reference_and_updates_running_stats(shape):
    rng = np.random.default_rng(0)
    x = rand(rng, *shape) * 3 + 2
    c = shape[1]
    w, b = rand(rng, c), rand(rng, c)
    rm0, rv0 = rand(rng, c), rng.random(c) + 0.5
    rm, rv = tc.tensor(rm0.copy()), tc.tensor(rv0.copy())
    y = F.batch_norm(tc.tensor(x), rm, rv, tc.tensor(w), tc.tensor(b), True, 0.3, 1e-3)
    mean, var, var_unbiased = batch_stats(x)
    np.testing.assert_allclose(y.numpy(), bn_reference(x, mean, var, w, b, 1e-3), atol=1e-12)
    np.testing.assert_allclose(rm.numpy(), 0.7 * rm0 + 0.3 * mean, atol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.7 * rv0 + 0.3 * var_unbiased, atol=1e-12)


def test_batch_norm_eval_uses_running_stats_and_leaves_them():
    rng = np.random.default_rng(1)
    x = rand(rng, 3, 4, 5, 5).astype(np.float32)
    rm0 = rand(rng, 4).astype(np.float32)
    rv0 = (rng.random(4) + 0.5).astype(np.float32)
    rm, rv = tc.tensor(rm0.copy()), tc.tensor(rv0.copy())
    y = F.batch_norm(tc.tensor(x), rm, rv, training=False)
    ref = bn_reference(x, rm0, rv0, np.ones(4), np.zeros(4), 1e-5)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(rm.numpy(), rm0)
    np.testing.assert_array_equal(rv.numpy(), rv0)


def test_batch_norm_float32_statistics_are_accurate_with_a_large_mean():
    # a naive float32 E[x^2] - E[x]^2 loses every digit here; float64 sums keep them
    rng = np.random.default_rng(2)
    x = (1000.0 + rng.standard_normal((8, 2, 32, 32)) * 0.01).astype(np.float32)
    rm, rv = tc.zeros(2), tc.ones(2)
    F.batch_norm(tc.tensor(x), rm, rv, training=True, momentum=1.0)
    _, _, var_unbiased = batch_stats(x.astype(np.float64))
    np.testing.assert_allclose(rv.numpy(), var_unbiased, rtol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(training):
    rng = np.random.default_rng(3)
    x = tc.tensor(rand(rng, 3, 2, 2, 3), requires_grad=True)
    w = tc.tensor(rand(rng, 2), requires_grad=True)
    b = tc.tensor(rand(rng, 2), requires_grad=True)
    rm, rv = tc.tensor(rand(rng, 2)), tc.tensor(rng.random(2) + 0.5)
    gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training), [x, w, b])
    gradcheck(lambda x: F.batch_norm(x, rm, rv, training=training), [x])
    xd = tc.tensor(rand(rng, 5, 3), requires_grad=True)  # dense (N, C)
    gradcheck(lambda x: F.batch_norm(x, None, None, training=True, eps=1e-3), [xd])


def test_batch_norm_skips_gradients_not_needed():
    rng = np.random.default_rng(4)
    x = tc.tensor(rand(rng, 2, 3, 4))
    w = tc.tensor(rand(rng, 3), requires_grad=True)
    F.batch_norm(x, None, None, w, None, True).sum().backward()
    assert x.grad is None and w.grad is not None


@needs_torch
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_batch_norm_matches_torch_random_configs(seed, training):
    rng = np.random.default_rng(10 + seed)
    ndim = rng.integers(2, 5)
    shape = tuple(int(s) for s in rng.integers(2, 6, size=ndim))
    c = shape[1]
    momentum, eps = float(rng.uniform(0.05, 0.9)), float(10.0 ** rng.uniform(-5, -2))
    x, w, b = rand(rng, *shape) * 2 + 1, rand(rng, c), rand(rng, c)
    rm0, rv0 = rand(rng, c), rng.random(c) + 0.5
    ours = [tc.tensor(rm0.copy()), tc.tensor(rv0.copy())]
    theirs = [torch.tensor(rm0.copy()), torch.tensor(rv0.copy())]
    check_op(
        lambda x, w, b: F.batch_norm(x, *ours, w, b, training, momentum, eps),
        lambda x, w, b: TF.batch_norm(x, *theirs, w, b, training, momentum, eps),
        [x, w, b],
        atol=1e-10,
        rtol=1e-8,
    )
    # the running statistics after the call (updated in place in training, untouched in eval)
    for mine, ref in zip(ours, theirs):
        np.testing.assert_allclose(mine.numpy(), ref.numpy(), atol=1e-12, rtol=1e-10)


@needs_torch
def test_batch_norm_float32_large_matches_torch():
    rng = np.random.default_rng(5)
    x = rand(rng, 8, 16, 24, 24, dtype=np.float32)  # big enough for the parallel kernels
    w, b = rand(rng, 16, dtype=np.float32), rand(rng, 16, dtype=np.float32)
    rm, rv = tc.zeros(16), tc.ones(16)
    prm, prv = torch.zeros(16), torch.ones(16)
    check_op(
        lambda x, w, b: F.batch_norm(x, rm, rv, w, b, True),
        lambda x, w, b: TF.batch_norm(x, prm, prv, w, b, True),
        [x, w, b],
        atol=2e-4,
        rtol=1e-4,
    )
    np.testing.assert_allclose(rv.numpy(), prv.numpy(), rtol=1e-5)


@needs_torch
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_dense_large_matches_torch(training):
    rng = np.random.default_rng(8)
    x = rand(rng, 96, 700, dtype=np.float32) * 2 + 1  # (N, C): the column-block kernels
    w, b = rand(rng, 700, dtype=np.float32), rand(rng, 700, dtype=np.float32)
    rm, rv = tc.tensor(rand(rng, 700, dtype=np.float32)), tc.ones(700)
    prm, prv = torch.tensor(rm.numpy().copy()), torch.ones(700)
    check_op(
        lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training),
        lambda x, w, b: TF.batch_norm(x, prm, prv, w, b, training),
        [x, w, b],
        atol=2e-5,
        rtol=1e-4,
    )
    np.testing.assert_allclose(rv.numpy(), prv.numpy(), rtol=1e-5)
    np.testing.assert_allclose(rm.numpy(), prm.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 16, 32, 32), (128, 600)])
def test_batch_norm_same_result_at_1_and_2_threads(shape):
    rng = np.random.default_rng(6)
    x = rand(rng, *shape, dtype=np.float32)
    assert x.size >= norm_kernels.PARALLEL_MIN
    g = tc.tensor(rand(rng, *x.shape, dtype=np.float32))
    c = shape[1]

    def run():
        t = tc.tensor(x, requires_grad=True)
        rm, rv = tc.zeros(c), tc.ones(c)
        y = F.batch_norm(t, rm, rv, training=True)
        y.backward(g)
        return y.numpy(), t.grad.numpy(), rv.numpy()

    for a, b in zip(with_threads(1, run), run()):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_validation_names_the_rule():
    x = tc.tensor(np.ones((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\).*got \(4,\)"):
        F.batch_norm(x, None, None, tc.tensor(np.ones(4)), training=True)
    with pytest.raises(TypeError, match="running_mean dtype float32 differs from input dtype"):
        F.batch_norm(x, tc.zeros(3), tc.ones(3))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        F.batch_norm(tc.tensor(np.ones((1, 3))), None, None, training=True)
    with pytest.raises(ValueError, match="momentum is NaN"):
        F.batch_norm(x, None, None, training=True, momentum=float("nan"))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        F.batch_norm(x, None, None, training=True, eps=-1.0)
    with pytest.raises(ValueError, match=r"eps must be > 0 when training \(a channel"):
        F.batch_norm(x, None, None, training=True, eps=0.0)  # torch refuses it too
    ones = tc.tensor(np.ones(x.shape[1], x.dtype))
    F.batch_norm(x, ones, ones, training=False, eps=0.0)  # in eval, as torch, allowed
    with pytest.raises(ValueError, match="at least 2-d"):
        F.batch_norm(tc.tensor(np.ones(3)), None, None, training=True)
    with pytest.raises(ValueError, match="both running_mean and running_var"):
        F.batch_norm(x, tc.tensor(np.zeros(3)), None, training=True)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.batch_norm(tc.tensor(np.ones((2, 3), np.int64)), None, None, training=True)


# --------------------------------------------------------------------------- local response norm
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_lrn_reference_and_gradcheck(size):
    rng = np.random.default_rng(20 + size)
    x = rand(rng, 2, 6, 2, 3)
    alpha, beta, k = 0.5, 0.75, 1.5  # large alpha so the window matters in the check
    y = F.local_response_norm(tc.tensor(x), size, alpha, beta, k)
    np.testing.assert_allclose(y.numpy(), lrn_reference(x, size, alpha, beta, k), rtol=1e-12)
    gradcheck(
        lambda t: F.local_response_norm(t, size, alpha, beta, k),
        [tc.tensor(x, requires_grad=True)],
    )


@needs_torch
@pytest.mark.parametrize("size", [1, 2, 3, 5, 6])
def test_lrn_matches_torch(size):
    rng = np.random.default_rng(30 + size)
    x = rand(rng, 3, 7, 4, 5)
    check_op(
        lambda t: F.local_response_norm(t, size, 1e-2, 0.75, 2.0),
        lambda t: TF.local_response_norm(t, size, 1e-2, 0.75, 2.0),
        [x],
        atol=1e-12,
        rtol=1e-10,
    )
    x3 = rand(rng, 2, 5, 6)  # (N, C, L)
    check_op(
        lambda t: F.local_response_norm(t, size, 0.3, 0.6, 1.0),
        lambda t: TF.local_response_norm(t, size, 0.3, 0.6, 1.0),
        [x3],
        atol=1e-12,
        rtol=1e-10,
    )


@needs_torch
def test_lrn_float32_alexnet_shape_matches_torch():
    rng = np.random.default_rng(7)
    x = rand(rng, 2, 16, 27, 27, dtype=np.float32)  # the parallel kernels
    check_op(
        lambda t: F.local_response_norm(t, 5, 1e-4, 0.75, 2.0),
        lambda t: TF.local_response_norm(t, 5, 1e-4, 0.75, 2.0),
        [x],
        atol=1e-6,
        rtol=1e-5,
    )


def test_lrn_validation():
    x = tc.tensor(np.ones((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="size must be an int >= 1, got 0"):
        F.local_response_norm(x, 0)
    with pytest.raises(ValueError, match=r"at least 3-d \(N, C, \*spatial\), got shape \(2, 3\)"):
        F.local_response_norm(tc.tensor(np.ones((2, 3))), 3)
    with pytest.raises(ValueError, match="beta is NaN"):
        F.local_response_norm(x, 3, beta=float("nan"))
