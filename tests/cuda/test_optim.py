"""Optimizer steps on "cuda" (simulator) update parameters and state like "cpu"."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn as tc

RNG = np.random.default_rng(4)

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "dampening": 0.3}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kwargs", CASES)
def test_steps_match_cpu(name, kwargs, dtype):
    p0 = RNG.standard_normal((3, 4)).astype(dtype)
    grads = [RNG.standard_normal((3, 4)).astype(dtype) for _ in range(3)]
    result = {}
    for device in ("cpu", "cuda"):
        p = tc.tensor(p0.copy(), requires_grad=True, device=device)
        opt = getattr(tc.optim, name)([p], **kwargs)
        for g in grads:
            p.grad = tc.tensor(g, device=device)
            opt.step()
        assert p.device == device
        result[device] = p.numpy()
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(result["cuda"], result["cpu"], rtol=tol, atol=tol)
    assert not np.allclose(result["cuda"], p0)
