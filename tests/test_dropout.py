"""dropout: seeded masks, inverted scaling, the backward reusing the mask, edge cases."""

import numba
import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
from tinycnn.ops.cpu import dropout as dropout_kernels
from tinycnn.testing import gradcheck

from .helpers import needs_torch, rand, torch


def test_same_seed_gives_the_same_mask():
    x = tc.tensor(np.ones((50, 40), np.float32))
    tc.manual_seed(3)
    a = F.dropout(x, 0.4).numpy()
    tc.manual_seed(3)
    b = F.dropout(x, 0.4).numpy()
    c = F.dropout(x, 0.4).numpy()  # the global generator moved on
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)
    np.testing.assert_array_equal(
        F.dropout(x, 0.4, generator=7).numpy(), F.dropout(x, 0.4, generator=7).numpy()
    )
    g1, g2 = np.random.default_rng(11), np.random.default_rng(11)
    np.testing.assert_array_equal(
        F.dropout(x, 0.4, generator=g1).numpy(), F.dropout(x, 0.4, generator=g2).numpy()
    )


def test_inverted_scaling_keeps_the_mean_and_drops_about_p():
    x = rand(np.random.default_rng(0), 400, 500, dtype=np.float32) + 3.0
    for p in (0.1, 0.5, 0.8):
        y = F.dropout(tc.tensor(x), p, generator=1).numpy()
        dropped = y == 0
        assert abs(dropped.mean() - p) < 0.01
        np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - p), rtol=1e-6)
        assert abs(y.mean() - x.mean()) < 0.03 * x.mean()


def test_backward_reuses_the_forward_mask():
    x = tc.tensor(rand(np.random.default_rng(1), 30, 20), requires_grad=True)
    y = F.dropout(x, 0.3, generator=2)
    g = rand(np.random.default_rng(2), 30, 20)
    y.backward(tc.tensor(g))
    kept = y.numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, g / 0.7, 0.0), rtol=1e-15)
    # float64 gradcheck: a fixed seed makes the op deterministic between calls
    gradcheck(lambda t: F.dropout(t, 0.3, generator=5), [tc.tensor(x.numpy(), requires_grad=True)])


def test_p_zero_one_and_eval():
    x = tc.tensor(rand(np.random.default_rng(3), 4, 5, dtype=np.float32), requires_grad=True)
    y0 = F.dropout(x, 0.0)
    np.testing.assert_array_equal(y0.numpy(), x.numpy())
    assert y0 is not x
    y1 = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y1.numpy(), np.zeros((4, 5), np.float32))
    y1.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((4, 5)))
    assert F.dropout(x, 0.5, training=False) is x


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("p", [0.5, 1.0])
def test_a_dropped_nan_or_inf_stays_nan_as_in_torch(p):
    """A dropped element is multiplied by 0 (torch's ``x * mask * scale``), so a NaN or an
    infinity becomes NaN, not 0; a kept one is scaled.  The same for the gradient."""
    x = np.tile(np.array([np.nan, np.inf, -np.inf, 1.0]), 64)
    t = tc.tensor(x, requires_grad=True)
    y = F.dropout(t, p, generator=0)
    kept = np.ones_like(x) * (y.numpy() == 1.0 / (1.0 - p)) if p < 1 else np.zeros_like(x)
    kept[np.isinf(y.numpy())] = 1.0
    want = x * kept / (1.0 - p) if p < 1 else x * 0.0
    np.testing.assert_array_equal(y.numpy(), want)
    assert p == 1 or 0 < kept[3::4].sum() < 64  # both kinds met
    g = np.tile(np.array([np.nan, 1.0, 2.0, np.inf]), 64)
    y.backward(tc.tensor(g))
    np.testing.assert_array_equal(t.grad.numpy(), g * kept / (1.0 - p) if p < 1 else g * 0.0)


def test_dropout_same_result_at_1_and_2_threads():
    x = tc.tensor(rand(np.random.default_rng(4), 300, 300, dtype=np.float32))
    assert x.size >= dropout_kernels.PARALLEL_MIN
    numba.set_num_threads(1)
    try:
        one = F.dropout(x, 0.5, generator=9).numpy()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(one, F.dropout(x, 0.5, generator=9).numpy())


def test_dropout_validation():
    x = tc.tensor(np.ones(3))
    with pytest.raises(ValueError, match="dropout: p is NaN"):
        F.dropout(x, float("nan"))
    with pytest.raises(ValueError, match=r"dropout: p must be <= 1, got 1.5"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"dropout: p must be >= 0"):
        F.dropout(x, -0.1)
    with pytest.raises(TypeError, match="dropout: input must be float32 or float64"):
        F.dropout(tc.tensor([1, 2]), 0.5)
    with pytest.raises(TypeError, match="expected a seed"):
        F.dropout(x, 0.5, generator="seed")


@needs_torch
def test_dropout_scaling_matches_torch():
    # the masks come from different generators: compare the rule, not the draw
    x = np.random.default_rng(5).random((200, 100)) + 1.0
    ours = F.dropout(tc.tensor(x), 0.25, generator=0).numpy()
    theirs = torch.nn.functional.dropout(torch.tensor(x), 0.25).numpy()
    for y in (ours, theirs):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-15)
