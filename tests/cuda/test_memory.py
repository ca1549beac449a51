"""The caching device allocator in use: on a GPU, a repeated training step takes every block
from the cache; under the simulator (no driver, no memory manager) it reports itself inactive.
The bookkeeping itself is tested without a GPU in ``tests/cuda_ptx/test_memory_pool.py``."""

from __future__ import annotations

import numpy as np
from numba import config

import tinycnn as tc
import tinycnn.functional as F


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
    freed = tc.cuda.empty_cache()
    assert freed == after["cached_bytes"] > 0 and tc.cuda.memory_stats()["cached_bytes"] == 0
