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


@pytest.mark.parametrize("first", ["cpu", "cuda"])
def test_the_state_follows_the_model_to_another_device(first):
    """Steps on one device, ``Model.to`` the other, more steps: the same weights as staying on
    one device (a run resumed from a CPU checkpoint onto the GPU does this)."""
    from tinycnn import layers as L

    x = RNG.standard_normal((5, 3))
    results = []
    for moves in (False, True):
        model = tc.Sequential([tc.Input((3,), dtype=np.float64), L.Dense(2, name="d")], name="m")
        model.load_state_dict({k: np.full(v.shape, 0.5) for k, v in model.state_dict().items()})
        model.to(first)
        opt = tc.optim.Adam(model.parameters(), lr=0.1, amsgrad=True)
        for step in range(4):
            if moves and step == 2:
                model.to("cuda" if first == "cpu" else "cpu")
            device = model.parameters()[0].device
            opt.zero_grad()
            (model(tc.tensor(x, device=device)) ** 2).mean().backward()
            opt.step()
        assert all(isinstance(v, np.ndarray) for v in opt.state_dict()["state"].values())
        results.append({k: np.asarray(v) for k, v in model.state_dict().items()})
    for k in results[0]:
        np.testing.assert_allclose(results[1][k], results[0][k], rtol=1e-13, atol=1e-15)
