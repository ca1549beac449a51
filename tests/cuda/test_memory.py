"""The caching device allocator in use: on a GPU, a repeated training step takes every block
from the cache; under the simulator (no driver, no memory manager) it reports itself inactive.
The bookkeeping itself is tested without a GPU in ``tests/cuda_ptx/test_memory_pool.py``."""

from __future__ import annotations

import numpy as np
from numba import config

import tinycnn as tc
import tinycnn.functional as F
from tinycnn.ops.conv import Conv2d
from tinycnn.ops.cuda import workspace


def _step(params, opt, x, y):
    w1, w2 = params
    h = F.relu(F.conv2d(x, w1, padding=1)).flatten(1)  # direct conv: one input channel
    loss = F.cross_entropy(F.linear(h, w2), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()  # the step's arrays die here (the tape holds no cycles)


def test_a_repeated_step_allocates_nothing_from_the_driver():
    rng = np.random.default_rng(0)
    params = [
        tc.tensor(
            rng.standard_normal(s).astype(np.float32) * 0.3, requires_grad=True, device="cuda"
        )
        for s in [(4, 1, 3, 3), (3, 144)]
    ]
    opt = tc.optim.SGD(params, lr=0.1)
    x = tc.tensor(rng.standard_normal((2, 1, 6, 6)).astype(np.float32), device="cuda")
    y = tc.tensor(rng.integers(0, 3, 2), device="cuda")
    first = _step(params, opt, x, y)
    before = tc.cuda.memory_stats()
    second = _step(params, opt, x, y)
    after = tc.cuda.memory_stats()
    assert second < first
    if config.ENABLE_CUDASIM:
        assert after["active"] is False and after["driver_allocs"] == 0
        return
    assert after["active"] is True
    assert after["driver_allocs"] == before["driver_allocs"], (before, after)
    assert after["reuses"] > before["reuses"]
    workspace.clear()  # earlier tests' im2col columns: cached now, freed by empty_cache too
    cached = tc.cuda.memory_stats()["cached_bytes"]
    freed = tc.cuda.empty_cache()
    assert freed == cached >= after["cached_bytes"] > 0
    assert tc.cuda.memory_stats()["cached_bytes"] == 0


def test_empty_cache_gives_back_the_scratch_buffers():
    rng = np.random.default_rng(1)
    x = tc.tensor(rng.standard_normal((2, 3, 6, 6)), device="cuda")
    w = tc.tensor(rng.standard_normal((4, 3, 3, 3)), device="cuda", requires_grad=True)
    geometry = {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1}
    Conv2d.apply(x, w, None, **geometry, algorithm="im2col").sum().backward()
    assert workspace.nbytes() > 0
    tc.cuda.empty_cache()
    assert workspace.nbytes() == 0
    got = Conv2d.apply(x, w, None, **geometry, algorithm="im2col")  # columns allocated afresh
    want = F.conv2d(x.cpu(), w.detach().cpu(), padding=1)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
