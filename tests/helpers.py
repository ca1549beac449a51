"""Shared test helpers: one-line op checks against torch and against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn as tc

try:  # torch is optional: its comparisons skip (not fail) where it is absent
    import torch
    import torch.nn.functional as TF

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover - depends on the machine
    torch = None
    TF = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def rand(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def check_op(tc_fn, torch_fn, arrays, requires_grad=None, atol=1e-6, rtol=1e-5, seed=0):
    """Run ``tc_fn`` and ``torch_fn`` on the same arrays; compare shape, dtype, forward, and the
    backward of every float input under one random upstream gradient."""
    if requires_grad is None:
        requires_grad = [a.dtype.kind == "f" for a in arrays]
    tins = [tc.tensor(a, requires_grad=r) for a, r in zip(arrays, requires_grad)]
    pins = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, requires_grad)]
    out = tc_fn(*tins)
    ref = torch_fn(*pins)
    assert out.shape == tuple(ref.shape), f"shape {out.shape} != torch {tuple(ref.shape)}"
    assert str(out.dtype) == str(ref.dtype).replace("torch.", ""), (out.dtype, ref.dtype)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=atol, rtol=rtol)
    if not any(requires_grad):
        return
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(tc.tensor(g))
    ref.backward(torch.tensor(g))
    for i, (t, p) in enumerate(zip(tins, pins)):
        if p.requires_grad:
            assert t.grad is not None, f"input {i}: no gradient"
            np.testing.assert_allclose(
                t.grad.numpy(), p.grad.numpy(), atol=atol, rtol=rtol, err_msg=f"grad of input {i}"
            )
