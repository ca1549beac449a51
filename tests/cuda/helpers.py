"""Run one tinycnn computation on "cpu" and on "cuda" (the simulator) and compare."""

from __future__ import annotations

import numpy as np

import tinycnn as tc


def rand(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def same_on_both(fn, arrays, requires_grad=None, atol=1e-6, rtol=1e-6, seed=0):
    """``fn(*tensors)`` on both devices: equal outputs and, under one random upstream gradient,
    equal gradients of every float input.  Returns the cuda output."""
    if requires_grad is None:
        requires_grad = [a.dtype.kind == "f" for a in arrays]
    outs, grads = {}, {}
    g = None
    for device in ("cpu", "cuda"):
        ins = [tc.tensor(a, requires_grad=r, device=device) for a, r in zip(arrays, requires_grad)]
        out = fn(*ins)
        assert out.device == device
        outs[device] = out
        if any(requires_grad):
            if g is None:
                g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
            out.backward(tc.tensor(g, device=device))
            grads[device] = [t.grad for t in ins]
    cpu, cuda = outs["cpu"], outs["cuda"]
    assert cuda.shape == cpu.shape and cuda.dtype == cpu.dtype, (cuda.shape, cpu.shape)
    np.testing.assert_allclose(cuda.numpy(), cpu.numpy(), atol=atol, rtol=rtol)
    for i, (gc, gg) in enumerate(zip(grads.get("cpu", []), grads.get("cuda", []))):
        if gc is None:
            assert gg is None, f"input {i}: a gradient on cuda only"
            continue
        assert gg is not None and gg.device == "cuda", f"input {i}: no gradient on cuda"
        np.testing.assert_allclose(
            gg.numpy(), gc.numpy(), atol=atol, rtol=rtol, err_msg=f"grad of input {i}"
        )
    return cuda
