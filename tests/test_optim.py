"""Optimizers vs torch.optim, step by step under the same gradients; state_dict round trips."""

from __future__ import annotations

import math
import re
import zlib

import numba
import numpy as np
import pytest

import tinycnn as tc
from tinycnn import optim
from tinycnn.ops.cpu import optim as kernels

from .helpers import needs_torch, torch

SHAPES = [(7, 5), (3,), (2, 3, 2, 2)]


def _grads(rng, steps, dtype):
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _run_tc(make, inits, grads, dtype):
    params = [tc.tensor(a.copy(), requires_grad=True) for a in inits]
    opt = make(params)
    history = []
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads):
            p.grad = tc.tensor(g)
        opt.step()
        history.append([p.numpy().copy() for p in params])
    return history, opt, params


def _run_torch(make, inits, grads):
    params = [torch.tensor(a.copy(), requires_grad=True) for a in inits]
    opt = make(params)
    history = []
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-2)),
    ("Adam", dict()),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, eps=1e-6, weight_decay=0.01)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9)),
    ("RMSprop", dict(lr=1e-3, centered=True)),
    ("RMSprop", dict(lr=1e-3, centered=True, momentum=0.5, weight_decay=0.1)),
]


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kwargs", CASES)
def test_matches_torch_step_by_step(name, kwargs, dtype):
    rng = np.random.default_rng(zlib.crc32((name + str(kwargs)).encode()))
    inits = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = _grads(rng, 6, dtype)
    mine, _, _ = _run_tc(lambda ps: getattr(optim, name)(ps, **kwargs), inits, grads, dtype)
    ref = _run_torch(lambda ps: getattr(torch.optim, name)(ps, **kwargs), inits, grads)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    for step, (a, b) in enumerate(zip(mine, ref)):
        for i, (x, y) in enumerate(zip(a, b)):
            assert x.dtype == dtype
            np.testing.assert_allclose(x, y, **tol, err_msg=f"step {step + 1}, param {i}")


def _keras_adam_reference(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """Keras 3's update_step (keras/src/optimizers/adam.py) in NumPy float64."""
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        p = p - m * alpha / (np.sqrt(v) + eps)
        out.append(p)
    return out


def test_adam_keras_formula():
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(20)
    # tiny gradients: sqrt(v) is close to epsilon, where the two formulas differ most
    grads = [1e-6 * rng.standard_normal(20) for _ in range(5)]
    params = [tc.tensor(p0.copy(), requires_grad=True)]
    opt = optim.Adam.keras(params)
    assert opt.hyper["eps"] == 1e-7 and opt.hyper["eps_mode"] == "keras"
    for g, want in zip(grads, _keras_adam_reference(p0.copy(), grads)):
        params[0].grad = tc.tensor(g)
        opt.step()
        np.testing.assert_allclose(params[0].numpy(), want, rtol=1e-12, atol=1e-15)
    # torch's placement gives a visibly different trajectory there
    params2 = [tc.tensor(p0.copy(), requires_grad=True)]
    opt2 = optim.Adam(params2, eps=1e-7)
    for g in grads:
        params2[0].grad = tc.tensor(g)
        opt2.step()
    assert not np.allclose(params2[0].numpy(), params[0].numpy(), rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
        lambda ps: optim.Adam(ps, lr=1e-2, amsgrad=True),
        lambda ps: optim.RMSprop(ps, lr=1e-3, centered=True, momentum=0.5),
    ],
)
def test_state_dict_round_trip_continues_identically(make):
    rng = np.random.default_rng(5)
    inits = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = _grads(rng, 6, np.float32)
    full, _, _ = _run_tc(make, inits, grads, np.float32)
    # 3 steps, save, rebuild from scratch with the saved weights and state, 3 more steps
    _, opt, params = _run_tc(make, inits, grads[:3], np.float32)
    sd = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd["state"].values())
    opt.step()  # mutating the optimizer after state_dict() must not change the saved copy
    saved_weights = [p.numpy().copy() for p in params]
    fresh = [tc.tensor(w, requires_grad=True) for w in full[2]]
    opt2 = make(fresh)
    opt2.lr = 123.0  # the hyper-parameters come back too
    opt2.load_state_dict(sd)
    assert opt2.lr == opt.lr
    for step_grads, want in zip(grads[3:], full[3:]):
        for p, g in zip(fresh, step_grads):
            p.grad = tc.tensor(g)
        opt2.step()
        for p, w in zip(fresh, want):
            np.testing.assert_array_equal(p.numpy(), w)
    assert not np.array_equal(saved_weights[0], full[2][0])


def test_load_state_dict_rejects_mismatches():
    p = [tc.tensor(np.zeros((2, 3), np.float32), requires_grad=True)]
    opt = optim.Adam(p)
    p[0].grad = tc.tensor(np.ones((2, 3), np.float32))
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="state is of a Adam optimizer"):
        optim.SGD(p, lr=0.1).load_state_dict(sd)
    other = optim.Adam([tc.tensor(np.zeros((3, 2), np.float32), requires_grad=True)])
    with pytest.raises(ValueError, match=r"0.exp_avg has shape \(2, 3\).*params\[0\] has shape"):
        other.load_state_dict(sd)
    with pytest.raises(ValueError, match="does not match this optimizer's 1 parameters"):
        optim.Adam(p).load_state_dict({**sd, "state": {"4.exp_avg": np.zeros((2, 3))}})


def test_lr_is_settable_and_validated():
    p = [tc.tensor(np.ones(3, np.float32), requires_grad=True)]
    opt = optim.SGD(p, lr=1.0)
    opt.lr = 0.5
    p[0].grad = tc.tensor(np.ones(3, np.float32))
    opt.step()
    np.testing.assert_array_equal(p[0].numpy(), 0.5)
    with pytest.raises(ValueError, match="SGD: lr must be finite, got nan"):
        opt.lr = float("nan")


def test_skips_params_without_grad_and_zero_grad():
    a = tc.tensor(np.ones(3, np.float32), requires_grad=True)
    b = tc.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = tc.tensor(np.ones(3, np.float32))
    opt.step()
    np.testing.assert_array_equal(a.numpy(), 0.0)
    np.testing.assert_array_equal(b.numpy(), 1.0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_bad_construction():
    p = [tc.tensor(np.ones(3, np.float32), requires_grad=True)]
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="appears twice"):
        optim.Adam(p + p)
    with pytest.raises(TypeError, match=r"params\[0\] is a ndarray"):
        optim.Adam([np.ones(3)])
    with pytest.raises(ValueError, match="nesterov momentum requires momentum > 0"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: betas\[1\] must be < 1.0, got 1.0"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="RMSprop: eps must be >= 0"):
        optim.RMSprop(p, eps=-1)


def test_parallel_kernel_path_matches_serial():
    n = kernels.PARALLEL_MIN + 12345  # several chunks and a ragged last one
    rng = np.random.default_rng(0)
    p0, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    big = [tc.tensor(p0.copy(), requires_grad=True)]
    opt = optim.Adam(big, lr=1e-2)
    ref = [tc.tensor(p0[:1000].copy(), requires_grad=True)]
    opt_ref = optim.Adam(ref, lr=1e-2)
    for _ in range(2):
        big[0].grad = tc.tensor(g)
        ref[0].grad = tc.tensor(g[:1000])
        opt.step()
        opt_ref.step()
    np.testing.assert_array_equal(big[0].numpy()[:1000], ref[0].numpy())


F32 = np.float32
KERNEL_CASES = {
    # name: (public step, serial loop, number of state buffers, scalar arguments)
    "sgd": (
        kernels.sgd_step,
        kernels._sgd_range,
        1,
        (F32(0.1), F32(0), F32(1), F32(0), False, True),
    ),
    "sgd_momentum_nesterov": (
        kernels.sgd_step,
        kernels._sgd_range,
        1,
        (F32(0.1), F32(0.9), F32(1), F32(1e-2), True, False),
    ),
    "adam": (
        kernels.adam_step,
        kernels._adam_range,
        3,
        (F32(1e-2), F32(0.1), F32(0.999), F32(1e-3), F32(0.5), F32(1e-8), F32(0), F32(1), False),
    ),
    "adamw_amsgrad": (
        kernels.adam_step,
        kernels._adam_range,
        3,
        (F32(1e-2), F32(0.1), F32(0.999), F32(1e-3), F32(0.5), F32(1e-8), F32(0), F32(0.99), True),
    ),
    "rmsprop": (
        kernels.rmsprop_step,
        kernels._rmsprop_range,
        3,
        (F32(1e-2), F32(0.99), F32(0.01), F32(1e-8), F32(0), F32(0), False),
    ),
    "rmsprop_centered_momentum": (
        kernels.rmsprop_step,
        kernels._rmsprop_range,
        3,
        (F32(1e-2), F32(0.99), F32(0.01), F32(1e-8), F32(1e-3), F32(0.9), True),
    ),
}


@pytest.mark.parametrize("case", list(KERNEL_CASES))
def test_parallel_chunks_match_the_serial_loop_everywhere(case):
    """Each thread's chunk reaches the loop as slices: every chunk, the ragged last one too,
    updates as one serial pass over the whole array does (state buffers included, to 1 ulp),
    and bit-identically at 1 and 2 threads."""
    step, serial, nbuf, scalars = KERNEL_CASES[case]
    n = kernels.PARALLEL_MIN + 3 * kernels._CHUNK + 12345
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(n).astype(F32) for _ in range(2)]  # param, grad
    arrays += [np.abs(rng.standard_normal(n)).astype(F32) * 0.1 for _ in range(nbuf)]
    mine = [a.copy() for a in arrays]
    ref = [a.copy() for a in arrays]
    one_thread = [a.copy() for a in arrays]
    step(*mine, *scalars)  # n >= PARALLEL_MIN: the parallel driver
    serial(*ref, *scalars, 0, n)
    numba.set_num_threads(1)
    try:
        step(*one_thread, *scalars)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for k, (a, b, c) in enumerate(zip(mine, ref, one_thread)):
        np.testing.assert_array_equal(a, c, err_msg=f"{case}: array {k}, 1 against 2 threads")
        # compiled apart, the chunk loop may contract ``p * decay - step`` into other FMAs than
        # the serial loop: a rounding apart (2 float32 ulp of the operands at most)
        np.testing.assert_allclose(a, b, rtol=2.4e-7, atol=2.4e-7, err_msg=f"{case}: array {k}")
    assert not np.array_equal(mine[0], arrays[0])  # the parameter moved


def test_step_refuses_a_gradient_of_another_shape():
    """The kernels walk the flat arrays: a gradient of another size read past its end (or left
    part of the parameter alone), one of the same size but another shape was applied as is."""
    for grad_shape in [(4,), (60,), (3, 2)]:
        p = tc.tensor(np.zeros((2, 3)), requires_grad=True)
        opt = optim.Adam([p], lr=1.0)
        p.grad = tc.tensor(np.ones(grad_shape))
        with pytest.raises(
            ValueError,
            match=rf"Adam.step: params\[0\] has shape \(2, 3\) but its gradient has shape "
            rf"{re.escape(str(grad_shape))}",
        ):
            opt.step()
        np.testing.assert_array_equal(p.numpy(), 0.0)
        assert opt.state[0] == {}


def test_load_state_dict_checks_hyper_parameters_steps_and_buffers():
    p = [tc.tensor(np.zeros((2, 3)), requires_grad=True)]
    opt = optim.Adam(p, lr=0.01)
    p[0].grad = tc.tensor(np.ones((2, 3)))
    opt.step()
    sd = opt.state_dict()
    before = [p[0].numpy().copy(), dict(opt.hyper)]
    # were: NaN weights after the next step, a raw unpacking error or TypeError inside step
    for hyper, message in [
        ({"lr": float("nan")}, "Adam: lr must be finite, got nan"),
        ({"betas": [0.9]}, r"Adam: betas must be a pair \(beta1, beta2\), got \(0.9,\)"),
        ({"betas": 0.9}, r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"),
        ({"eps": "x"}, "Adam: eps must be a number, got 'x'"),
    ]:
        fresh = optim.Adam(p, lr=0.5)
        with pytest.raises(
            ValueError, match="Adam.load_state_dict: bad hyper-parameters: " + message
        ):
            fresh.load_state_dict({**sd, "hyper": {**sd["hyper"], **hyper}})
        assert fresh.lr == 0.5 and fresh.state == [{}]
    state = {k: v for k, v in sd["state"].items() if k != "0.exp_avg_sq"}
    with pytest.raises(ValueError, match=r"params\[0\] has a step but no exp_avg_sq"):
        optim.Adam(p).load_state_dict({**sd, "state": state})  # was: zeros, off by a bias
    for step in (np.array(1.5), np.array([1, 2]), np.array(-1)):
        with pytest.raises(ValueError, match=r"0.step must be an integer >= 0"):
            optim.Adam(p).load_state_dict({**sd, "state": {**sd["state"], "0.step": step}})
    np.testing.assert_array_equal(p[0].numpy(), before[0])
    assert opt.hyper == before[1]
    again = optim.Adam(p)
    again.load_state_dict(sd)
    assert again.hyper == opt.hyper and again.state[0]["step"] == 1
