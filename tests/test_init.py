"""Initializers: fans, limits, variances on large draws, truncation, seeding, lookup by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import init


@pytest.mark.parametrize(
    "shape, fans",
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((30, 20), (20, 30)),  # linear (out, in)
        ((16, 6, 5, 5), (150, 400)),  # conv (C_out, C_in, kH, kW)
        ((64, 8, 3, 3), (72, 576)),  # grouped: C_in/groups = 8
    ],
)
def test_compute_fans(shape, fans):
    assert init.compute_fans(shape) == fans


UNIFORM = [
    (init.glorot_uniform, lambda fi, fo: math.sqrt(6 / (fi + fo))),
    (init.he_uniform, lambda fi, fo: math.sqrt(6 / fi)),
    (init.lecun_uniform, lambda fi, fo: math.sqrt(3 / fi)),
]
NORMAL = [
    (init.glorot_normal, lambda fi, fo: 2 / (fi + fo)),
    (init.he_normal, lambda fi, fo: 2 / fi),
    (init.lecun_normal, lambda fi, fo: 1 / fi),
]


@pytest.mark.parametrize("fn, limit", UNIFORM)
def test_uniform_limits_and_variance(fn, limit):
    shape = (200, 30, 5, 5)  # fan_in 750, fan_out 5000, 150k draws
    w = fn(shape, rng=0)
    lim = limit(750, 5000)
    assert w.dtype == np.float32 and w.shape == shape
    assert np.abs(w).max() <= lim
    assert np.abs(w).max() > 0.99 * lim  # the whole interval is used
    assert abs(w.mean()) < 0.01 * lim
    np.testing.assert_allclose(w.var(), lim**2 / 3, rtol=0.02)


@pytest.mark.parametrize("fn, variance", NORMAL)
def test_truncated_normal_variance_and_bound(fn, variance):
    shape = (400, 300)  # fan_in 300, fan_out 400
    w = fn(shape, dtype=np.float64, rng=1)
    var = variance(300, 400)
    assert w.dtype == np.float64
    # Keras' correction: the truncated distribution has exactly the target variance
    np.testing.assert_allclose(w.var(), var, rtol=0.02)
    std_param = math.sqrt(var) / 0.87962566103423978
    assert np.abs(w).max() <= 2 * std_param
    assert np.abs(w).max() > 1.95 * std_param
    assert abs(w.mean()) < 0.01 * math.sqrt(var)


def test_explicit_fans_override_the_shape():
    # a depthwise kernel (C, 1, 3, 3): Keras counts fan_in = C*9
    w = init.he_uniform((512, 1, 3, 3), rng=0, fan_in=512 * 9, fan_out=9)
    lim = math.sqrt(6 / (512 * 9))
    assert np.abs(w).max() <= lim and np.abs(w).max() > 0.95 * lim


def test_seeding_repeats_and_differs():
    for fn, _ in UNIFORM + NORMAL:
        a = fn((10, 20), rng=42)
        b = fn((10, 20), rng=np.random.default_rng(42))
        c = fn((10, 20), rng=43)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    tc.manual_seed(7)
    a = init.glorot_uniform((5, 5))
    tc.manual_seed(7)
    np.testing.assert_array_equal(a, init.glorot_uniform((5, 5)))
    assert not np.array_equal(a, init.glorot_uniform((5, 5)))  # the global stream moves on


def test_zeros_ones():
    np.testing.assert_array_equal(init.zeros((2, 3)), np.zeros((2, 3), np.float32))
    o = init.ones(4, dtype=np.float64)
    assert o.dtype == np.float64 and o.shape == (4,) and (o == 1).all()


def test_get_by_name_and_callable():
    assert init.get("glorot_uniform") is init.glorot_uniform
    assert init.get("GlorotNormal") is init.glorot_normal
    assert init.get("he_normal") is init.he_normal
    assert init.get("zeros") is init.zeros

    def mine(shape, dtype=np.float32, rng=None, fan_in=None, fan_out=None):
        return np.full(shape, 0.5, dtype)

    assert init.get(mine) is mine
    with pytest.raises(ValueError, match="unknown name 'glorot'.*glorot_uniform.*he_normal"):
        init.get("glorot")
    with pytest.raises(TypeError, match="name or a callable"):
        init.get(3)


def test_bad_arguments():
    with pytest.raises(TypeError, match="glorot_uniform: dtype must be float32 or float64"):
        init.glorot_uniform((2, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="he_normal: fan_in must be > 0"):
        init.he_normal((0, 0))
    with pytest.raises(ValueError, match="negative"):
        init.zeros((2, -1))
