"""Batch norm, LRN, dropout (ops through the tape) and max-pool kernels on "cuda" (simulator),
equal to "cpu"."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
from tinycnn.ops.cpu import pool as CP
from tinycnn.ops.cuda import array as G
from tinycnn.ops.cuda import pool as GP

from .helpers import rand, same_on_both

RNG = np.random.default_rng(3)
TOL = {"atol": 1e-10, "rtol": 1e-9}


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 2, 3), (5, 2)])
def test_batch_norm(training, shape):
    c = shape[1]
    rm, rv = rand(RNG, c), np.abs(rand(RNG, c)) + 0.5
    running = {}

    def fn(x, w, b):
        stats = (tc.tensor(rm.copy(), device=x.device), tc.tensor(rv.copy(), device=x.device))
        running[x.device] = stats
        return F.batch_norm(x, *stats, w, b, training=training, momentum=0.2, eps=1e-3)

    x = rand(RNG, *shape) * 2 + 1
    same_on_both(fn, [x, rand(RNG, c), rand(RNG, c)], **TOL)
    for cpu, cuda in zip(running["cpu"], running["cuda"]):
        np.testing.assert_allclose(cuda.numpy(), cpu.numpy(), **TOL)


def test_batch_norm_float32_many_elements_per_channel():
    x = rand(RNG, 3, 2, 20, 20, dtype=np.float32)  # > REDUCE_THREADS values per channel
    same_on_both(lambda x: F.batch_norm(x, None, None, training=True), [x], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_local_response_norm(size):
    x = rand(RNG, 2, 5, 2, 2)
    same_on_both(lambda x: F.local_response_norm(x, size, alpha=0.1, beta=0.75, k=2.0), [x], **TOL)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_same_mask_from_the_same_seed(p):
    x = rand(RNG, 4, 6)
    out = same_on_both(lambda x: F.dropout(x, p, True, generator=7), [x], **TOL)
    assert out.device == "cuda"


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("p", [0.5, 1.0])
def test_dropout_of_nan_and_inf_as_on_the_cpu(p):
    """A dropped element is multiplied by 0 on both devices: NaN and inf become NaN."""
    x = np.tile(np.array([np.nan, np.inf, -np.inf, 1.0]), 8).reshape(4, 8)
    out = same_on_both(lambda x: F.dropout(x, p, True, generator=7), [x], **TOL).numpy()
    assert np.isnan(out[np.isinf(x) & ~np.isinf(out)]).all()


@pytest.mark.parametrize(
    "k,s,pad,d",
    [
        ((2, 2), (2, 2), (0, 0), (1, 1)),
        ((3, 2), (2, 1), (1, 1), (1, 2)),
        ((3, 3), (1, 1), (1, 0), (2, 1)),
    ],
)
def test_max_pool_kernels(k, s, pad, d):
    x = rand(RNG, 3, 6, 7)
    x[0, 1, 1] = x[0, 1, 2]  # a tie: the first maximum in scan order wins on both
    oh = (6 + 2 * pad[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (7 + 2 * pad[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    params = (k[0], k[1], s[0], s[1], pad[0], pad[1], d[0], d[1])
    out, idx = np.empty((3, oh, ow)), np.empty((3, oh, ow), np.int32)
    CP.max_pool2d_forward(x, *params, out, idx)
    gout, gidx = G.empty(out.shape, np.float64), G.empty(out.shape, np.int32)
    GP.max_pool2d_forward(G.from_numpy(x), *params, gout, gidx)
    np.testing.assert_array_equal(G.to_numpy(gout), out)
    np.testing.assert_array_equal(G.to_numpy(gidx), idx)
    g = rand(RNG, *out.shape)
    dx = np.empty_like(x)
    CP.max_pool2d_backward(g, idx, dx)
    gdx = G.empty(x.shape, np.float64)
    GP.max_pool2d_backward(G.from_numpy(g), gidx, gdx)
    np.testing.assert_allclose(G.to_numpy(gdx), dx, **TOL)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        lambda x: F.max_pool2d(x, (2, 3), stride=(1, 2), dilation=(2, 1)),
        lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        lambda x: F.avg_pool2d(x, 2, count_include_pad=False, padding=1),
        lambda x: F.avg_pool2d(x, 3, divisor_override=2),
        lambda x: F.adaptive_avg_pool2d(x, 1),
        lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
    ],
)
def test_pooling_ops(fn):
    same_on_both(fn, [rand(RNG, 2, 2, 5, 6)], **TOL)
