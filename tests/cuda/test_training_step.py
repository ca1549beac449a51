"""A small CNN trains on "cuda" (simulator) exactly as on "cpu": conv, batch norm, relu,
max-pool, linear, cross-entropy, Adam; only the loss scalar comes back to the host."""

from __future__ import annotations

import numpy as np

import tinycnn as tc
import tinycnn.functional as F

RNG = np.random.default_rng(6)


def test_three_adam_steps_match_cpu():
    x = RNG.standard_normal((4, 1, 6, 6))
    y = RNG.integers(0, 3, 4)
    init = [RNG.standard_normal(s) * 0.3 for s in [(4, 1, 3, 3), (3, 36), (3,)]]
    losses = {}
    for device in ("cpu", "cuda"):
        params = [tc.tensor(p.copy(), requires_grad=True, device=device) for p in init]
        w1, w2, b2 = params
        opt = tc.optim.Adam(params, lr=0.05)
        xt, yt = tc.tensor(x, device=device), tc.tensor(y, device=device)
        rm, rv = (
            tc.zeros(4, dtype=np.float64, device=device),
            tc.ones(4, dtype=np.float64, device=device),
        )
        history = []
        for _ in range(3):
            # no conv bias: before batch norm its gradient is 0 up to rounding, which Adam
            # would normalise into full steps of random sign
            h = F.conv2d(xt, w1, padding=1)
            h = F.relu(F.batch_norm(h, rm, rv, training=True))
            h = F.max_pool2d(h, 3, stride=2, padding=1).flatten(1)
            loss = F.cross_entropy(F.linear(h, w2, b2), yt)
            for p in params:
                p.grad = None
            loss.backward()
            assert all(p.grad.device == device for p in params)
            opt.step()
            history.append(loss.item())
        assert all(p.device == device for p in params)
        losses[device] = (history, [p.numpy() for p in params], rm.numpy())
    np.testing.assert_allclose(losses["cuda"][0], losses["cpu"][0], rtol=1e-10)
    for a, b in zip(losses["cuda"][1], losses["cpu"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(losses["cuda"][2], losses["cpu"][2], rtol=1e-10)
    assert losses["cpu"][0][-1] < losses["cpu"][0][0]
