"""Correctness helpers: central finite-difference gradient checks in float64.

``gradcheck(fn, inputs)`` compares every analytic gradient that ``backward`` produces with
``(f(x + h) - f(x - h)) / 2h`` element by element, under a random upstream gradient (a sum of
all outputs would hide errors that cancel).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> None:
    """Raise ``AssertionError`` naming the input and worst element if gradients disagree.

    ``inputs`` must be float64 tensors; those with ``requires_grad`` are checked.
    """
    for i, t in enumerate(inputs):
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} must be float64 for finite differences")
    out = fn(*inputs)
    rng = np.random.default_rng(seed)
    upstream = rng.standard_normal(out.shape)
    for t in inputs:
        t.grad = None
    out.backward(Tensor(upstream, device=out.device))

    for i, t in enumerate(inputs):
        if not t.requires_grad:
            continue
        analytic = (
            np.zeros(t.shape) if t.grad is None else np.asarray(t.grad.numpy(), dtype=np.float64)
        )
        numeric = np.zeros(t.shape)
        flat = t.data.reshape(-1)  # a view on the CPU array: perturb in place
        with no_grad():
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                plus = float((fn(*inputs).numpy() * upstream).sum())
                flat[j] = orig - eps
                minus = float((fn(*inputs).numpy() * upstream).sum())
                flat[j] = orig
                numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric)
        bound = atol + rtol * np.abs(numeric)
        if not np.all(err <= bound):
            k = int(np.argmax(err - bound))
            idx = np.unravel_index(k, t.shape)
            raise AssertionError(
                f"gradcheck: input {i} (shape {t.shape}) gradient differs at {idx}: analytic "
                f"{analytic[idx]:.8g}, numeric {numeric[idx]:.8g} (max abs error {err.max():.3g})"
            )
