"""Activations, linear, and shape ops: NumPy references, float64 gradchecks, torch parity."""

import numba
import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F
from tinycnn.ops.activation import clamp_max
from tinycnn.testing import gradcheck

from .helpers import TF, check_op, needs_torch, rand, torch

ACTIVATIONS = [
    ("relu", F.relu, lambda x: np.maximum(x, 0)),
    ("tanh", F.tanh, np.tanh),
    ("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
]


@pytest.mark.parametrize("name,fn,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_reference_and_gradcheck(name, fn, ref):
    rng = np.random.default_rng(0)
    x = rand(rng, 2, 3, 5)
    x[np.abs(x) < 1e-3] = 0.5  # keep finite differences away from the relu kink
    np.testing.assert_allclose(fn(tc.tensor(x)).numpy(), ref(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        fn(tc.tensor(x.astype(np.float32))).numpy(), ref(x), rtol=1e-5, atol=1e-6
    )
    gradcheck(fn, [tc.tensor(x, requires_grad=True)])


CLAMPS = [
    ("relu6", F.relu6, 0.0, 6.0),
    ("hardtanh", lambda t: F.hardtanh(t, -2.0, 3.0), -2.0, 3.0),
    ("clamp_max", lambda t: clamp_max(t, 2.0), None, 2.0),
]


@pytest.mark.parametrize("name,fn,lo,hi", CLAMPS, ids=[c[0] for c in CLAMPS])
def test_clamps_reference_and_gradcheck(name, fn, lo, hi):
    rng = np.random.default_rng(1)
    x = rng.uniform(-9, 9, (4, 5, 6))
    for bound in (lo, hi):
        if bound is not None:
            x[np.abs(x - bound) < 1e-3] += 0.01  # finite differences away from the kinks
    np.testing.assert_array_equal(fn(tc.tensor(x)).numpy(), np.clip(x, lo, hi))
    small = np.float32([1e-8, -1e-30, 5e-45])  # exact below the cap: no x - relu(x - hi)
    np.testing.assert_array_equal(
        fn(tc.tensor(small)).numpy(), np.clip(small, lo, hi).astype(np.float32)
    )
    gradcheck(fn, [tc.tensor(x, requires_grad=True)])


def test_relu_layer_caps_exactly_and_at_infinity():
    from tinycnn import layers as L

    x = tc.tensor(np.float32([[-np.inf, -2.0, 1e-8, 0.25, 0.5, 3.0, np.inf]]))
    np.testing.assert_array_equal(
        L.ReLU(max_value=0.5)(x).numpy(), np.float32([[0, 0, 1e-8, 0.25, 0.5, 0.5, 0.5]])
    )  # was NaN at +inf: inf - relu(inf - 0.5)
    leaky = L.ReLU(max_value=0.5, negative_slope=0.1)(x).numpy()
    np.testing.assert_array_equal(leaky, np.float32([[-np.inf, -0.2, 1e-8, 0.25, 0.5, 0.5, 0.5]]))
    np.testing.assert_array_equal(
        tc.activations.relu6(x).numpy(), np.float32([[0, 0, 1e-8, 0.25, 0.5, 3.0, 6.0]])
    )


def test_clamp_errors():
    with pytest.raises(ValueError, match=r"hardtanh: min_val \(2\) must be <= max_val \(1\)"):
        F.hardtanh(tc.tensor([1.0]), 2.0, 1.0)
    with pytest.raises(TypeError, match="relu6: input must be float"):
        F.relu6(tc.tensor([1, 2]))


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamps_match_torch_at_the_bounds_infinities_and_nan(dtype):
    """Forward and gradient equal torch's bit for bit: 0 at the bounds (not 1), the bound at
    ±inf, and NaN passing its gradient through (PyTorch's hardtanh_backward)."""
    x = np.array([-np.inf, -7, -1, -0.0, 0, 1e-8, 0.5, 1, 3, 6, 7, np.inf, np.nan], dtype)
    for fn, ref in ((F.relu6, TF.relu6), (lambda t: F.hardtanh(t, -1, 1), TF.hardtanh)):
        a = tc.tensor(x.copy(), requires_grad=True)
        y = fn(a)
        y.sum().backward()
        b = torch.tensor(x.copy(), requires_grad=True)
        z = ref(b)
        z.sum().backward()
        np.testing.assert_array_equal(y.numpy(), z.detach().numpy())
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_sigmoid_is_stable_for_large_inputs():
    y = F.sigmoid(tc.tensor(np.array([-1000.0, 1000.0], np.float32))).numpy()
    np.testing.assert_array_equal(y, [0.0, 1.0])


def test_relu_propagates_nan():
    x = tc.tensor(np.array([np.nan, -1.0, 0.0, 2.0]), requires_grad=True)
    y = F.relu(x)
    assert np.isnan(y.numpy()[0])
    y.backward(tc.tensor(np.full(4, 3.0)))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 0.0, 3.0])  # PyTorch's: NaN passes


def test_activation_rejects_int_input():
    with pytest.raises(TypeError, match="relu: input must be float"):
        F.relu(tc.tensor([1, 2]))


def test_leaky_relu_rejects_nan_slope():
    with pytest.raises(ValueError, match="negative_slope is NaN"):
        F.leaky_relu(tc.tensor([1.0]), float("nan"))


def test_activation_same_result_at_1_and_2_threads():
    x = tc.tensor(np.random.default_rng(0).standard_normal(100_001).astype(np.float32))
    numba.set_num_threads(1)
    try:
        one = F.tanh(x).numpy()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(one, F.tanh(x).numpy())


def test_linear_reference_and_gradcheck():
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, 4, 3), rand(rng, 5, 3), rand(rng, 5)
    out = F.linear(tc.tensor(x), tc.tensor(w), tc.tensor(b)).numpy()
    np.testing.assert_allclose(out, x @ w.T + b)
    args = [tc.tensor(a, requires_grad=True) for a in (x, w, b)]
    gradcheck(F.linear, args)
    gradcheck(lambda x, w: F.linear(x, w), args[:2])


def test_linear_errors_name_the_rule():
    with pytest.raises(ValueError, match=r"input has 3 features.*in_features=4"):
        F.linear(tc.tensor(np.ones((2, 3))), tc.tensor(np.ones((5, 4))))
    with pytest.raises(ValueError, match="bias has 4 entries"):
        F.linear(tc.tensor(np.ones((2, 3))), tc.tensor(np.ones((5, 3))), tc.tensor(np.ones(4)))
    with pytest.raises(TypeError, match="one dtype"):
        F.linear(tc.tensor(np.ones((2, 3), np.float32)), tc.tensor(np.ones((5, 3))))


def test_reshape_flatten_transpose_gradcheck():
    rng = np.random.default_rng(2)
    x = tc.tensor(rand(rng, 2, 3, 4), requires_grad=True)
    assert x.reshape(6, -1).shape == (6, 4)
    assert x.flatten(1).shape == (2, 12)
    assert x.transpose(0, 2).shape == (4, 3, 2)
    np.testing.assert_array_equal(x.permute(2, 0, 1).numpy(), x.numpy().transpose(2, 0, 1))
    gradcheck(lambda t: t.reshape(4, 6).transpose(0, 1).flatten() * 2.0, [x])
    with pytest.raises(ValueError, match="cannot reshape"):
        x.reshape(5, 5)


def test_cat_gradcheck_and_errors():
    rng = np.random.default_rng(3)
    a = tc.tensor(rand(rng, 2, 1, 3), requires_grad=True)
    b = tc.tensor(rand(rng, 2, 4, 3), requires_grad=True)
    out = tc.cat([a, b], dim=1)
    np.testing.assert_array_equal(out.numpy(), np.concatenate([a.numpy(), b.numpy()], 1))
    gradcheck(lambda a, b: tc.cat([a, b], dim=1) * 3.0, [a, b])
    with pytest.raises(ValueError, match=r"shapes must agree except in dim 1"):
        tc.cat([a, tc.tensor(rand(rng, 3, 4, 3))], dim=1)


def test_getitem_gradcheck():
    x = tc.tensor(rand(np.random.default_rng(4), 4, 5), requires_grad=True)
    np.testing.assert_array_equal(x[1:3, ::2].numpy(), x.numpy()[1:3, ::2])
    gradcheck(lambda t: t[1:3, ::2] * 2.0 + t[np.array([0, 0, 2])].sum(), [x])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradcheck(mode):
    x = tc.tensor(rand(np.random.default_rng(5), 1, 2, 3, 4), requires_grad=True)
    gradcheck(lambda t: F.pad(t, (1, 2, 2, 1), mode=mode), [x])


def test_pad_errors():
    x = tc.tensor(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"reflect padding \(3, 0\) must be < the input size 3"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="wrap")


@needs_torch
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(1, 1, 1, 1), (0, 2, 1, 0), (2, 1, 0, 2)])
def test_pad_matches_torch(mode, pad):
    x = rand(np.random.default_rng(6), 2, 3, 4, 5)
    check_op(lambda t: F.pad(t, pad, mode=mode), lambda t: TF.pad(t, pad, mode=mode), [x])


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_and_linear_match_torch(dtype):
    rng = np.random.default_rng(7)
    x = rand(rng, 3, 7, dtype=dtype)
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == np.float32 else {}
    check_op(F.relu, TF.relu, [x], **tol)
    check_op(F.tanh, torch.tanh, [x], **tol)
    check_op(F.sigmoid, torch.sigmoid, [x], **tol)
    check_op(lambda t: F.leaky_relu(t, 0.1), lambda t: TF.leaky_relu(t, 0.1), [x], **tol)
    w, b = rand(rng, 4, 7, dtype=dtype), rand(rng, 4, dtype=dtype)
    check_op(F.linear, TF.linear, [x, w, b], **tol)
    check_op(lambda a, b: (a @ b.T).sum(1), lambda a, b: (a @ b.T).sum(1), [x, w], **tol)


def _ulps(got32, exact64):
    """|error| of float32 results in units of the float32 spacing at the exact value."""
    spacing = np.spacing(np.abs(exact64).astype(np.float32)).astype(np.float64)
    return np.abs(got32.astype(np.float64) - exact64) / spacing


def _dense_float32(lo: float, hi: float, n: int) -> np.ndarray:
    """Every ``k``-th float32 bit pattern in ``[lo, hi]`` (lo, hi >= 0): all binades alike."""
    a, b = np.array([lo, hi], np.float32).view(np.int32)
    return np.arange(a, b, max(1, (b - a) // n), dtype=np.int32).view(np.float32)


@pytest.mark.parametrize("size", [1000, 100_000], ids=["serial", "parallel"])
def test_float32_tanh_and_sigmoid_are_within_2_and_2_5_ulp(size):
    """float32 inputs are computed in float32 arithmetic (``_vmath.tanh_f32``, checked on every
    float32 in [0, 10] when written: worst 1.56 ulp); here a dense sample of each sign."""
    x = _dense_float32(1e-30, 10.0, 400_000)
    x = np.concatenate([x, -x])
    for i in range(0, x.size, size):
        chunk = x[i : i + size]
        exact = np.tanh(chunk.astype(np.float64))
        assert _ulps(F.tanh(tc.tensor(chunk)).numpy(), exact).max() <= 2.0
        wide = chunk * np.float32(1.5)  # sigmoid's interesting range is wider
        exact = 1 / (1 + np.exp(-wide.astype(np.float64)))
        assert _ulps(F.sigmoid(tc.tensor(wide)).numpy(), exact).max() <= 2.5  # e / (1 + e)


def test_float32_exp_is_within_2_ulp_down_to_the_subnormals():
    from numba import njit

    from tinycnn.ops.cpu._vmath import exp_neg_f32

    @njit
    def run(x, out):
        for i in range(x.size):
            out[i] = exp_neg_f32(x[i])

    x = -_dense_float32(1e-30, 103.0, 500_000)
    out = np.empty_like(x)
    run(x, out)
    exact = np.exp(x.astype(np.float64))
    normal = exact >= np.finfo(np.float32).tiny
    assert _ulps(out[normal], exact[normal]).max() <= 2.0
    # below 2**-126 the spacing is fixed: 2**-149
    assert np.abs(out[~normal] - exact[~normal]).max() <= 2.0**-149
    special = np.array([np.nan, -np.inf, -0.0, 0.0, -104.5, -1e-30], np.float32)
    out = np.empty_like(special)
    run(special, out)
    assert np.isnan(out[0]) and list(out[1:]) == [0.0, 1.0, 1.0, 0.0, 1.0]


def test_float32_tanh_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 9.0, -9.5, 1e-30, 0.55, -0.55], np.float32)
    y = F.tanh(tc.tensor(x)).numpy()
    assert y.dtype == np.float32 and np.isnan(y[0])
    np.testing.assert_array_equal(y[1:6], np.float32([1, -1, 1, -1, 1e-30]))
    assert _ulps(y[6:], np.tanh(x[6:].astype(np.float64))).max() <= 2.0  # the branch point


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [4, 100_000], ids=["serial", "parallel"])
def test_tanh_keeps_the_sign_of_zero(dtype, size):
    """As libm, NumPy and PyTorch: tanh(-0.0) is -0.0 (the sign comes from copysign)."""
    x = np.full(size, 0.5, dtype)
    x[0], x[1], x[2] = -0.0, 0.0, -1e-40  # a float32 subnormal too
    y = F.tanh(tc.tensor(x)).numpy()
    assert np.signbit(y[0]) and not np.signbit(y[1]) and np.signbit(y[2])
    np.testing.assert_array_equal(y[:3], np.tanh(x[:3]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,ref", [("add", np.add), ("sub", np.subtract), ("mul", np.multiply)])
def test_large_binary_ops_run_in_parallel_and_equal_numpy(op, ref, dtype, monkeypatch):
    """From PARALLEL_MIN values on, same-shape add/sub/mul run on tinycnn's threads: NumPy's
    result bit for bit, at 1 and 2 threads, with a ragged last slice; the rest stays NumPy."""
    from tinycnn.ops.cpu import _binary, array

    calls = []
    binary = _binary.binary
    monkeypatch.setattr(_binary, "binary", lambda *a: calls.append(a[0]) or binary(*a))
    rng = np.random.default_rng(2)
    n = array.PARALLEL_MIN + 77
    a, b = rng.standard_normal((2, n)).astype(dtype)
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            got = getattr(array, op)(a, b)
            assert got.dtype == dtype and got.shape == a.shape
            np.testing.assert_array_equal(got, ref(a, b))
    finally:
        numba.set_num_threads(before)
    assert calls == [op, op]
    getattr(array, op)(a[:100], b[:100])  # small
    getattr(array, op)(a, b[:1])  # broadcast
    getattr(array, op)(a[::2], b[::2])  # not contiguous
    assert calls == [op, op]
    tx, ty = tc.tensor(a, requires_grad=True), tc.tensor(b, requires_grad=True)
    out = {"add": tx + ty, "sub": tx - ty, "mul": tx * ty}[op]
    out.sum().backward()
    np.testing.assert_array_equal(out.numpy(), ref(a, b))
    assert tx.grad is not None and ty.grad is not None


@pytest.mark.parametrize("xs,ws", [((2, 0), (4, 0)), ((2, 5, 0), (4, 0)), ((2, 3), (0, 3))])
def test_linear_with_zero_features(xs, ws):
    rng = np.random.default_rng(8)
    x, w, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
    args = [tc.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.linear(*args)
    np.testing.assert_array_equal(out.numpy(), x @ w.T + b)  # in_features 0: the bias alone
    out.backward(tc.tensor(np.ones(out.shape)))
    np.testing.assert_array_equal(args[2].grad.numpy(), np.full(ws[0], np.prod(xs[:-1])))
    assert args[0].grad.shape == xs and args[1].grad.shape == ws


def test_dims_out_of_range_raise_instead_of_wrapping():
    x = tc.tensor(np.ones((2, 3)))
    for fn, msg in [
        (lambda: x.flatten(5), "flatten: start_dim 5 is out of range for a 2-d tensor"),
        (lambda: x.flatten(0, -3), "flatten: end_dim -3 is out of range"),
        (lambda: x.transpose(0, 2), "transpose: dim1 2 is out of range"),
        (lambda: x.transpose(-3, 0), "transpose: dim0 -3 is out of range"),
        (lambda: x.permute(0, -3), "permute: dim -3 is out of range"),
        (lambda: tc.cat([x, x], 2), "cat: dim 2 is out of range for a 2-d tensor"),
        (lambda: tc.cat([x, x], -3), "cat: dim -3 is out of range"),
        (lambda: tc.cat([tc.tensor(1.0), tc.tensor(2.0)]), "cat: tensors\\[0\\] is 0-d"),
    ]:
        with pytest.raises(ValueError, match=msg):
            fn()
    for fn, msg in [
        (lambda: x.reshape(1.5, 4), "reshape: shape must be ints"),
        (lambda: x.reshape(3.0, 2), "reshape: shape must be ints"),
        (lambda: x.permute(1.0, 0), "permute: dims must be ints"),
        (lambda: tc.cat([x, x], 1.0), "cat: dim must be an int, got 1.0"),
    ]:
        with pytest.raises(TypeError, match=msg):
            fn()
    assert x.transpose(-1, 0).shape == (3, 2) and tc.cat([x, x], -1).shape == (2, 6)
    s = tc.tensor(2.0, requires_grad=True)  # 0-d: dims 0 and -1, as PyTorch
    (s.transpose(0, -1) * 3.0).backward()
    assert s.grad.item() == 3.0 and s.flatten(-1).shape == (1,)


def test_getitem_takes_tensors_inside_a_tuple_and_names_its_errors():
    x = tc.tensor(rand(np.random.default_rng(9), 3, 4), requires_grad=True)
    cols = tc.tensor(np.array([2, 0, 2]))
    np.testing.assert_array_equal(x[1:, cols].numpy(), x.numpy()[1:, [2, 0, 2]])
    mask = tc.tensor(np.array([True, False, True, False]))
    np.testing.assert_array_equal(x[0, mask].numpy(), x.numpy()[0, [0, 2]])
    gradcheck(lambda t: t[1:, cols] * 2.0, [x])
    with pytest.raises(IndexError, match=r"getitem: index 5 is out of bounds.*shape \(3, 4\)"):
        x[5]
    with pytest.raises(IndexError, match="getitem: only integers, slices"):
        x[1.0]


def test_pad_needs_int_pads_and_a_non_empty_dim_to_replicate():
    x = tc.tensor(np.ones((2, 3)))
    for bad in [(1.5, 1), "ab", 1]:
        with pytest.raises(TypeError, match="pad: pad must be a tuple of ints"):
            F.pad(x, bad)
    with pytest.raises(ValueError, match=r"replicate padding \(1, 1\) needs a non-empty dim 1"):
        F.pad(tc.tensor(np.ones((2, 0))), (1, 1), mode="replicate")
    assert F.pad(x, [np.int64(1), 2]).shape == (2, 6)
    assert F.pad(tc.tensor(np.ones((0, 2))), (1, 1), mode="replicate").shape == (0, 4)


def test_negative_padding_crops_as_in_torch():
    """Constant-mode F.pad takes negative pads (PyTorch crops there); values and gradient."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 6))
    for left, right, top, bottom in [
        (-2, 1, 0, 0),
        (-1, 1, 2, -1),
        (0, -3, 1, 1),
        (-1, -1, -1, -1),
    ]:
        t = tc.tensor(x, requires_grad=True)
        y = F.pad(t, (left, right, top, bottom), value=0.5)
        grow = ((0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0)))
        h, w = x.shape[2] + sum(grow[2]), x.shape[3] + sum(grow[3])
        keep = (
            ...,
            slice(max(-top, 0), h - max(-bottom, 0)),
            slice(max(-left, 0), w - max(-right, 0)),
        )
        np.testing.assert_array_equal(y.numpy(), np.pad(x, grow, constant_values=0.5)[keep])
        g = rng.standard_normal(y.shape)
        y.backward(tc.tensor(g))
        placed = np.zeros((*x.shape[:2], h, w))
        placed[keep] = g  # the upstream gradient where y came from, then the input's part
        inner = (..., slice(grow[2][0], grow[2][0] + 5), slice(grow[3][0], grow[3][0] + 6))
        np.testing.assert_array_equal(t.grad.numpy(), placed[inner])
    with pytest.raises(ValueError, match=r"pad: negative padding \(-3, -3\) on dim 1 crops 6"):
        F.pad(tc.tensor(np.zeros((2, 5))), (-3, -3))
    with pytest.raises(ValueError, match="supported in constant mode only, got mode 'reflect'"):
        F.pad(tc.tensor(np.zeros((1, 2, 5))), (-1, 1), mode="reflect")
