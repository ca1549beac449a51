"""softmax / log_softmax and the losses on "cuda" (simulator) equal to "cpu", forward and
backward through the tape."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F

from .helpers import rand, same_on_both

RNG = np.random.default_rng(2)
TOL = {"atol": 1e-12, "rtol": 1e-10}


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax(fn, dim):
    same_on_both(lambda x: fn(x, dim), [rand(RNG, 2, 3, 4)], **TOL)


def test_log_softmax_and_cross_entropy_of_huge_logits():
    """``(x - max) - log(sum)`` in that order on both devices: at 1e16 the other order rounds
    every log-probability to 0 or -2."""
    z = 1e16 + np.array([[0.0, -2.0, -4.0], [-4.0, 0.0, 0.0]])
    same_on_both(lambda x: F.log_softmax(x, 1), [z], atol=1e-15, rtol=1e-15)
    same_on_both(lambda x: F.log_softmax(x, 0), [z.T.copy()], atol=1e-15, rtol=1e-15)
    same_on_both(lambda z, t: F.cross_entropy(z, t), [z, np.array([1, 2])], atol=1e-15)


def test_softmax_float32():
    same_on_both(lambda x: F.softmax(x, 1), [rand(RNG, 3, 5, dtype=np.float32)], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"reduction": "sum"},
        {"reduction": "none"},
        {"label_smoothing": 0.2},
        {"ignore_index": 1},
    ],
)
def test_cross_entropy_class_indices(kwargs):
    z, t = rand(RNG, 5, 4), RNG.integers(0, 4, 5)
    same_on_both(lambda z, t: F.cross_entropy(z, t, **kwargs), [z, t], **TOL)


def test_cross_entropy_weight_spatial_and_probabilities():
    w = np.abs(rand(RNG, 3)) + 0.5
    z, t = rand(RNG, 2, 3, 2, 2), RNG.integers(0, 3, (2, 2, 2))
    same_on_both(
        lambda z, t, w: F.cross_entropy(z, t, w, label_smoothing=0.1),
        [z, t, w],
        requires_grad=[True, False, False],
        **TOL,
    )
    p = np.exp(rand(RNG, 4, 3))
    p /= p.sum(1, keepdims=True)
    same_on_both(
        lambda z, p: F.cross_entropy(z, p, label_smoothing=0.1), [rand(RNG, 4, 3), p], **TOL
    )


def test_cross_entropy_bad_target_raises_on_cuda():
    z = tc.tensor(rand(RNG, 2, 3), device="cuda")
    t = tc.tensor(np.array([0, 3]), device="cuda")
    with pytest.raises(ValueError, match="target 3 is out of range for 3 classes"):
        F.cross_entropy(z, t)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_nll_mse_bce(reduction):
    logp, t = rand(RNG, 4, 3), RNG.integers(0, 3, 4)
    same_on_both(lambda x, t: F.nll_loss(x, t, reduction=reduction), [logp, t], **TOL)
    same_on_both(
        lambda x, y: F.mse_loss(x, y, reduction=reduction),
        [rand(RNG, 2, 3), rand(RNG, 2, 3)],
        **TOL,
    )
    p, y = RNG.uniform(0.05, 0.95, (2, 3)), RNG.uniform(0, 1, (2, 3))
    same_on_both(lambda p, y: F.binary_cross_entropy(p, y, reduction=reduction), [p, y], **TOL)
    w = RNG.uniform(0.5, 2, (3,))
    same_on_both(
        lambda p, y, w: F.binary_cross_entropy(p, y, w, reduction=reduction),
        [p, y, w],
        requires_grad=[True, False, False],
        **TOL,
    )


def test_bce_outside_unit_raises_on_cuda():
    p = tc.tensor(np.array([0.5, 1.5]), device="cuda")
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(p, tc.tensor(np.array([0.0, 1.0]), device="cuda"))
