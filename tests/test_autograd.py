"""Tensor basics and the tape: accumulation, deep graphs, freeing, no_grad, devices, dtypes."""

import numpy as np
import pytest

import tinycnn as tc
from tinycnn.testing import gradcheck


def test_tensor_defaults_follow_pytorch():
    assert tc.tensor([1.0, 2.0]).dtype == np.float32
    assert tc.tensor([1, 2]).dtype == np.int64
    assert tc.tensor(np.zeros(3)).dtype == np.float64
    t = tc.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    assert t.shape == (2, 3) and t.device == "cpu" and t.requires_grad and t.grad is None
    assert t.is_leaf and t.numpy().sum() == 6


def test_int_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="float32/float64"):
        tc.tensor([1, 2], requires_grad=True)


def test_gradient_of_a_tensor_used_twice_is_summed():
    x = tc.tensor(np.array([1.5, -2.0]), requires_grad=True)
    y = (x * x + x * 3.0).sum()  # dy/dx = 2x + 3
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 3)


def test_residual_branches_accumulate():
    x = tc.tensor(np.array([[1.0, -1.0, 2.0]]), requires_grad=True)
    h = tc.functional.relu(x)
    out = (h + x + h * 2.0).sum()  # relu'(x)*3 + 1
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[4.0, 1.0, 4.0]])


def test_leaves_never_share_a_gradient_array():
    """``x + y`` hands one array to both (and a reshape a view of it): each leaf gets its own,
    so scaling one ``.grad`` in place (gradient clipping by hand) leaves the other alone."""
    x = tc.tensor(np.ones((3, 1)), requires_grad=True)
    y = tc.tensor(np.ones(3), requires_grad=True)
    z = tc.tensor(np.ones(3), requires_grad=True)
    (x.reshape(3) + y + z).sum().backward()
    grads = [t.grad.numpy() for t in (x, y, z)]
    for i, a in enumerate(grads):
        for b in grads[i + 1 :]:
            assert not np.shares_memory(a, b)
    grads[1] *= 0.5
    np.testing.assert_array_equal(grads[0].ravel(), [1, 1, 1])
    np.testing.assert_array_equal(grads[2], [1, 1, 1])


def test_leaf_grad_accumulates_across_backward_calls():
    x = tc.tensor(np.array([2.0]), requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 4.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0])


def test_deep_graph_has_no_recursion_limit():
    x = tc.tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_backward_twice_raises_and_tape_is_freed():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    assert y._ctx._released
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_needs_scalar_or_grad():
    x = tc.tensor(np.ones((2, 2)), requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    y.backward(np.ones((2, 2)))
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.ones((2, 2)))


def test_no_grad_records_nothing():
    x = tc.tensor(np.ones(3), requires_grad=True)
    with tc.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y._ctx is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_detach_cuts_the_tape():
    x = tc.tensor(np.ones(3), requires_grad=True)
    y = (x * 2.0).detach()
    assert not y.requires_grad and y.is_leaf


def test_mixed_dtypes_raise():
    a = tc.tensor(np.ones(3, np.float32))
    b = tc.tensor(np.ones(3, np.float64))
    with pytest.raises(TypeError, match="dtype"):
        a + b


def test_unknown_device_raises():
    with pytest.raises(ValueError, match="device"):
        tc.tensor([1.0], device="tpu")


def test_cuda_unavailable_is_one_clear_error():
    if tc.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="'cuda' is not available"):
        tc.tensor([1.0], device="cuda")


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, tinycnn; "
        "bad = [m for m in sys.modules if m.startswith(('numba', 'torch'))]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("preset", [None, "500"])
def test_import_sets_the_openmp_spin_unless_the_user_did(preset):
    """OpenMP reads GOMP_SPINCOUNT once, when it loads, possibly before the first kernel (a
    ``numba.get_num_threads()``): ``import tinycnn`` sets tinycnn's short spin."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if preset:
        env["GOMP_SPINCOUNT"] = preset
    code = "import os, tinycnn; print(os.environ['GOMP_SPINCOUNT'])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == (preset or "10000")


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: a * b + a / (b * b + 1.0),
        lambda a, b: (a - b) ** 2.0,
        lambda a, b: a.exp() + (b * b + 1.0).log(),
        lambda a, b: -a * 2.0 - 1.0 / (b * b + 2.0),
    ],
)
def test_arithmetic_gradcheck_with_broadcasting(fn):
    rng = np.random.default_rng(0)
    a = tc.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = tc.tensor(rng.standard_normal((4,)), requires_grad=True)
    gradcheck(fn, [a, b])


def test_broadcast_keepdim_axes_gradcheck():
    rng = np.random.default_rng(1)
    a = tc.tensor(rng.standard_normal((2, 1, 3)), requires_grad=True)
    b = tc.tensor(rng.standard_normal((1, 4, 1)), requires_grad=True)
    gradcheck(lambda a, b: a * b + a, [a, b])


def test_scalar_operands_and_reflected_ops():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = 3.0 - x + 2.0 * x - 1.0 / x
    np.testing.assert_allclose(y.numpy(), 3 - x.numpy() + 2 * x.numpy() - 1 / x.numpy())
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 + 1 / x.numpy() ** 2)


def test_integer_and_bool_tensors_never_truncate_a_float_silently():
    ints, mask = tc.tensor(np.arange(4)), tc.tensor(np.array([True, False]))
    for fn, op in [
        (lambda: ints * 0.5, "mul"),
        (lambda: ints + 1.5, "add"),
        (lambda: 1.5 - ints, "sub"),
        (lambda: ints / np.float32(2.5), "div"),
        (lambda: ints + np.array([0.5]), "add"),
        (lambda: mask * 2, "mul"),
    ]:
        with pytest.raises(TypeError, match=rf"{op}: an? \w+ tensor with .* would be cast"):
            fn()
    with pytest.raises(TypeError, match="pow: needs a float tensor, got int64"):
        ints**0.5
    with pytest.raises(TypeError, match="mean: needs a float tensor, got int64"):
        ints.mean()
    np.testing.assert_array_equal((ints * 2 + 1).numpy(), [1, 3, 5, 7])  # ints with ints: fine
    assert ints.sum().item() == 6 and (ints * 2).dtype == np.int64
    assert (tc.tensor(np.ones(2, np.float32)) * 0.5).dtype == np.float32


def test_tensors_refuse_data_they_cannot_hold():
    for data in (["a"], [1 + 2j], [None]):
        with pytest.raises(TypeError, match=r"tensor: cannot hold \S+ data .*a tensor holds"):
            tc.tensor(data)
    with pytest.raises(ValueError, match=r"tensor: cannot make an array of \[\[1, 2\], \[3\]\]"):
        tc.tensor([[1, 2], [3]])
    with pytest.raises(ValueError, match="tensor: cannot make an array of \\['x'\\]"):
        tc.tensor(["x"], dtype=np.float32)
    assert (
        tc.tensor([1.5]).dtype == np.float32
        and tc.tensor([1.5], dtype=np.float64).dtype == np.float64
    )
    assert (
        tc.tensor(np.int8([1])).dtype == np.int8 and tc.tensor(np.float64(2.0)).dtype == np.float64
    )


def test_pow_zero_has_zero_gradient_at_zero():
    x = tc.tensor(np.array([0.0, 2.0, -3.0]), requires_grad=True)
    (x**0.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])  # not 0 * 0**-1 = NaN


def test_reduction_dims_are_checked():
    x = tc.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dim=\(\) is ambiguous.*use dim=None"):
        x.sum(())
    with pytest.raises(ValueError, match=r"dim 0 appears more than once in dim=\(0, -2\)"):
        x.sum((0, -2))
    with pytest.raises(ValueError, match="dim 2 is out of range for a 2-d tensor"):
        x.mean(2)
    for bad in (True, 1.0, (0, "1")):
        with pytest.raises(TypeError, match="sum: dim"):
            x.sum(bad)
    assert x.sum(np.int64(1)).shape == (2,)
    scalar = tc.tensor(np.float64(2.0), requires_grad=True)  # 0-d: dims 0 and -1, as PyTorch
    total = scalar.sum(0) + scalar.mean(-1)
    total.backward()
    assert total.item() == 4.0 and scalar.grad.item() == 2.0


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((3, 4), (4, 5)),
        ((2, 3, 4), (4, 2)),
        ((4,), (4, 3)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 1, 3, 4), (5, 4, 2)),
    ],
)
def test_matmul_gradcheck(sa, sb):
    rng = np.random.default_rng(2)
    a = tc.tensor(rng.standard_normal(sa), requires_grad=True)
    b = tc.tensor(rng.standard_normal(sb), requires_grad=True)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy())
    gradcheck(lambda a, b: a @ b, [a, b])


def test_matmul_shape_error():
    with pytest.raises(ValueError, match=r"inner dimensions differ.*3 != 4"):
        tc.tensor(np.ones((2, 3))) @ tc.tensor(np.ones((4, 2)))
    with pytest.raises(
        ValueError,
        match=r"matmul: \(2, 3, 4\) @ \(3, 4, 2\): batch \(2,\) and \(3,\) cannot be "
        r"broadcast: axis -3 has 2 against 3 \(aligned from the last axis, sizes must be equal "
        r"or one of them 1\)",
    ):
        tc.tensor(np.ones((2, 3, 4))) @ tc.tensor(np.ones((3, 4, 2)))
    assert (tc.ones(2, 1, 3, 4) @ tc.ones(5, 4, 2)).shape == (2, 5, 3, 2)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv"])
def test_operands_that_cannot_broadcast_name_the_op_and_the_axis(op):
    """Not NumPy's message from inside a kernel: the op, both shapes and the rule."""
    import operator

    name = {"truediv": "div"}.get(op, op)
    with pytest.raises(
        ValueError,
        match=rf"^{name}: shapes \(5, 2, 3\) and \(4, 1\) cannot be broadcast: axis -2 has 2 "
        "against 4",
    ):
        getattr(operator, op)(tc.ones(5, 2, 3), tc.ones(4, 1))
    assert getattr(operator, op)(tc.ones(5, 2, 3), tc.ones(2, 1)).shape == (5, 2, 3)


@pytest.mark.parametrize("dim,keep", [(None, False), (0, False), (1, True), ((0, 2), False)])
def test_sum_mean_gradcheck(dim, keep):
    rng = np.random.default_rng(3)
    x = tc.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    np.testing.assert_allclose(x.sum(dim, keep).numpy(), x.numpy().sum(axis=dim, keepdims=keep))
    np.testing.assert_allclose(x.mean(dim, keep).numpy(), x.numpy().mean(axis=dim, keepdims=keep))
    gradcheck(lambda t: t.sum(dim, keep) * 1.5 + t.mean(dim, keep), [x])


def test_sum_keeps_float32():
    x = tc.tensor(np.ones((4, 4), np.float32))
    assert x.sum().dtype == np.float32 and x.mean(1).dtype == np.float32


def test_tensor_owns_read_only_data_and_converts_big_endian():
    frozen = np.frombuffer(np.ones(6).tobytes()).reshape(2, 3)  # read-only, like a file's bytes
    w = tc.tensor(frozen, requires_grad=True)
    assert w.numpy().flags.writeable and not np.shares_memory(w.numpy(), frozen)
    (w * 2.0).sum().backward()
    tc.optim.SGD([w], lr=0.5).step()  # updates in place: no Numba "readonly array" error
    np.testing.assert_array_equal(w.numpy(), np.zeros((2, 3)))
    big = tc.tensor(np.array([-1.0, 2.0], dtype=">f8"))
    assert big.dtype == np.float64 and big.dtype.isnative
    np.testing.assert_array_equal(tc.functional.relu(big).numpy(), [0.0, 2.0])
    with pytest.raises(OverflowError, match=r"tensor: cannot make an array of \[inf\]"):
        tc.tensor([np.inf], dtype=np.int64)


def test_a_tensor_made_from_a_tensor_is_a_snapshot():
    """As ``torch.tensor(w)``: a copy, which a later in-place step on ``w`` does not change;
    a writable NumPy array stays shared (no copy of a large batch)."""
    w = tc.tensor(np.ones(3), requires_grad=True)
    kept = tc.tensor(w)
    w.sum().backward()
    tc.optim.SGD([w], lr=0.5).step()
    np.testing.assert_array_equal(w.numpy(), [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(kept.numpy(), [1.0, 1.0, 1.0])
    assert not kept.requires_grad and kept.dtype == np.float64
    batch = np.zeros((2, 3), np.float32)
    assert np.shares_memory(tc.tensor(batch).numpy(), batch)


def test_backward_casts_grad_to_the_tensors_dtype_and_copies_it():
    x = tc.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    tc.functional.relu(x).backward(tc.tensor(np.ones(3, np.float32)))  # as PyTorch: cast
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])
    x.grad = None
    g = tc.tensor(np.array([1.0, 2.0, 3.0]))
    (x + 0.0).backward(g)
    assert not np.shares_memory(x.grad.numpy(), g.numpy())  # the caller may reuse its array
    for bad in ("abc", [None, 1.0, 2.0]):
        with pytest.raises(TypeError, match="backward: grad must be numbers"):
            (x * 2.0).backward(bad)


def test_sum_of_bools_and_small_ints_is_int64():
    pred, label = tc.tensor(np.array([1, 2, 3, 4])), tc.tensor(np.array([1, 0, 3, 4]))
    correct = (pred == label).sum()
    assert correct.dtype == np.int64 and correct.item() == 3  # not True
    assert tc.tensor(np.full(100, 100, np.int8)).sum().item() == 10_000  # no int8 wrap
    wide = tc.tensor(np.full((2, 300), 200, np.uint8)).sum(1)
    np.testing.assert_array_equal(wide.numpy(), [60_000, 60_000])


def test_argmax_checks_its_dim():
    t = tc.tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 1.0]]))
    assert t.argmax().item() == 3 and t.argmax(-1).tolist() == [1, 0]
    assert tc.tensor(3.0).argmax(0).item() == 0
    with pytest.raises(ValueError, match="argmax: dim 2 is out of range for a 2-d tensor"):
        t.argmax(2)
    with pytest.raises(TypeError, match="argmax: dim must be None or an int, got 1.0"):
        t.argmax(1.0)
    with pytest.raises(ValueError, match=r"argmax: the reduced dim 0 is empty \(shape \(0, 3\)\)"):
        tc.tensor(np.zeros((0, 3))).argmax(0)


def test_requires_grad_cannot_be_switched_off_on_a_non_leaf():
    y = tc.tensor(np.ones(2), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="requires_grad_: only a leaf tensor"):
        y.requires_grad_(False)
    assert y.requires_grad and not y.detach().requires_grad


def test_arguments_without_a_gradient_must_not_require_one():
    x = tc.tensor(np.random.default_rng(0).random((3, 4)))
    w = tc.tensor(np.ones(4), requires_grad=True)
    target = tc.tensor(np.array([0, 1, 2]))
    F = tc.functional
    with pytest.raises(ValueError, match="cross_entropy: weight requires grad, but cross_entropy"):
        F.cross_entropy(x, target, w)
    with pytest.raises(ValueError, match="nll_loss: weight requires grad"):
        F.nll_loss(x, target, w)
    with pytest.raises(ValueError, match="binary_cross_entropy: weight requires grad"):
        F.binary_cross_entropy(x, x, w)
    with pytest.raises(ValueError, match="batch_norm: running_mean requires grad"):
        mean = tc.zeros(4, dtype=np.float64, requires_grad=True)
        F.batch_norm(x, mean, tc.ones(4, dtype=np.float64))
    with tc.no_grad():
        loss = F.cross_entropy(x, target, w)
    assert loss.item() == F.cross_entropy(x, target, w.detach()).item()


def test_operands_that_are_not_numbers_raise():
    x = tc.tensor(np.ones(2))
    for bad in (None, "a", 1j):
        with pytest.raises(TypeError, match="add: the other operand must be a tensor, a number"):
            x + bad
    with pytest.raises(OverflowError, match="add: 300 does not fit in int8"):
        tc.tensor(np.int8([1, 2])) + 300


def test_tensor_methods_check_dtypes_like_the_functional_ops():
    ints = tc.tensor(np.arange(3))
    for method in ("relu", "tanh", "sigmoid"):
        with pytest.raises(TypeError, match=f"{method}: input must be float32 or float64"):
            getattr(ints, method)()  # not tanh truncated to [0, 0, 0]
    x = tc.tensor(np.array([1.5, -2.5]), requires_grad=True)
    rounded = x.astype(np.int64)
    assert not rounded.requires_grad  # no gradient through a cast to integers, as PyTorch
    (x.astype(np.float32) * 2.0).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [2.0, 2.0]
    for bad in (np.complex128, np.float16, "U3"):
        with pytest.raises(TypeError, match="astype: a tensor holds float32 or float64"):
            x.astype(bad)


def test_numpy_asarray_gives_the_values():
    t = tc.tensor(np.arange(3, dtype=np.float32), requires_grad=True)
    a = np.asarray(t)  # was an object array holding the tensor
    assert a.dtype == np.float32 and a.tolist() == [0.0, 1.0, 2.0]
    assert np.shares_memory(a, t.numpy()) and not np.shares_memory(np.array(t), t.numpy())
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    y = np.ones(3, np.float32) * t  # still the tensor's op, on the tape
    assert isinstance(y, tc.Tensor) and y.requires_grad


def test_a_bool_tensor_is_not_negated():
    with pytest.raises(TypeError, match="neg: a bool tensor has no negative"):
        -tc.tensor(np.array([True, False]))
    assert (-tc.tensor(np.array([1, -2]))).numpy().tolist() == [-1, 2]


def test_truth_value_and_python_scalars():
    assert bool(tc.tensor(1.0)) and not bool(tc.tensor(np.array([0.0])))
    assert float(tc.tensor(np.float32([1.5]))) == 1.5 and int(tc.tensor(np.array([[3]]))) == 3
    a, b = tc.tensor(np.zeros(2)), tc.tensor(np.ones(2))
    with pytest.raises(ValueError, match=r"bool: the truth value of a tensor of 2 elements"):
        bool(a == b)  # was True: len() decided
    with pytest.raises(ValueError, match="float: only one-element tensors"):
        float(a)
