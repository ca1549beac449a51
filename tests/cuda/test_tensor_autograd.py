"""Tensors on "cuda" (simulator): placement, transfers, and autograd through the tape, every op
equal to the same computation on "cpu"."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn as tc
import tinycnn.functional as F

from .helpers import rand, same_on_both

RNG = np.random.default_rng(1)


def test_cuda_is_available_under_the_simulator():
    assert tc.cuda.is_available()


def test_placement_and_transfers():
    x = rand(RNG, 2, 3)
    t = tc.tensor(x, device="cuda")
    assert t.device == "cuda" and t.dtype == np.float64 and t.shape == (2, 3)
    np.testing.assert_array_equal(t.numpy(), x)
    back = t.to("cpu")
    assert back.device == "cpu" and isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), x)
    assert tc.tensor(x).to("cuda").device == "cuda"
    assert tc.zeros(2, 2, device="cuda").numpy().sum() == 0
    assert tc.tensor(3.0, device="cuda").item() == 3.0
    assert "device='cuda'" in repr(t)


def test_comparisons_across_devices_raise():
    a, b = tc.tensor(np.zeros(2), device="cuda"), tc.tensor(np.zeros(2))
    for compare in (lambda: a == b, lambda: b < a, lambda: a >= b):
        with pytest.raises(ValueError, match=r"compare \w+: all tensors must be on one device"):
            compare()
    assert (a == 0.0).numpy().all() and (b == b).device == "cpu"


def test_mixed_devices_raise():
    a = tc.tensor(rand(RNG, 3), device="cuda")
    b = tc.tensor(rand(RNG, 3))
    with pytest.raises(ValueError, match="all tensors must be on one device"):
        a + b


def test_to_is_differentiable_both_ways():
    x = tc.tensor(rand(RNG, 2, 3), requires_grad=True)
    y = (x.to("cuda") * 2.0).sum()
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))


@pytest.mark.parametrize(
    "fn,shapes",
    [
        (lambda a, b: a + b, [(2, 3), (3,)]),
        (lambda a, b: a - b, [(2, 1), (1, 3)]),
        (lambda a, b: a * b, [(2, 3), (2, 3)]),
        (lambda a, b: a / (b * b + 1.0), [(2, 3), (1, 3)]),
        (lambda a: -a * 3.0 + 1.0, [(4,)]),
        (lambda a: (a * a + 1.0) ** 1.5, [(2, 2)]),
        (lambda a: a.exp() + (a * a + 1.0).log(), [(3,)]),
        (lambda a, b: a @ b, [(3, 4), (4, 2)]),
        (lambda a, b: a @ b, [(2, 3, 4), (4,)]),
        (lambda a, b: F.linear(a, b), [(5, 4), (3, 4)]),
        (lambda a, b, c: F.linear(a, b, c), [(2, 4), (3, 4), (3,)]),
        (lambda a: a.sum(), [(2, 3)]),
        (lambda a: a.mean(dim=(0, 2), keepdim=True), [(2, 3, 4)]),
        (lambda a: a.reshape(3, 2).T, [(2, 3)]),
        (lambda a: a.permute(2, 0, 1).flatten(1), [(2, 3, 4)]),
        (lambda a, b: tc.cat([a, b], dim=1), [(2, 3), (2, 2)]),
        (lambda a: a[1:, ::2], [(3, 5)]),
        (lambda a: a[:, [0, 2, 2]], [(2, 4)]),
        (lambda a: F.pad(a, (1, 2, 0, 1)), [(1, 2, 3, 3)]),
        (lambda a: F.pad(a, (2, 1, 1, 1), mode="reflect"), [(1, 1, 3, 4)]),
        (lambda a: F.pad(a, (1, 1), mode="circular"), [(1, 2, 3)]),
        (lambda a: F.pad(a, (1, 1, 1, 1), mode="replicate"), [(1, 1, 2, 2)]),
        (lambda a: a.astype(np.float32).double(), [(2, 3)]),
    ],
)
def test_ops_and_gradients_match_cpu(fn, shapes):
    same_on_both(fn, [rand(RNG, *s) for s in shapes], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "leaky_relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations(name, dtype):
    fn = (lambda x: F.leaky_relu(x, 0.2)) if name == "leaky_relu" else getattr(F, name)
    x = rand(RNG, 3, 5, dtype=dtype) * 3
    x[0, 0] = np.nan  # its value and gradient pass through, as on the CPU
    tol = 1e-6 if dtype == np.float32 else 1e-12
    same_on_both(fn, [x], atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamps(dtype):
    """relu6, hardtanh and ReLU(max_value=) are built from the back end's maximum, neg,
    compare and where: the same values and gradients on the device, infinities and NaN too."""
    from tinycnn import layers as L

    x = rand(RNG, 4, 6, dtype=dtype) * 8
    x[0, :4] = [np.inf, -np.inf, np.nan, 6.0]
    for fn in (F.relu6, lambda t: F.hardtanh(t, -1.5, 2.0), L.ReLU(2.0, negative_slope=0.1)):
        same_on_both(fn, [x], atol=0, rtol=0)


def test_two_layer_network_trains_the_same_on_both_devices():
    x, w1, w2 = rand(RNG, 8, 5), rand(RNG, 6, 5) * 0.3, rand(RNG, 2, 6) * 0.3

    def net(x, w1, w2):
        h = F.relu(F.linear(x, w1))
        return (F.tanh(F.linear(h, w2)) ** 2.0).mean()

    same_on_both(net, [x, w1, w2], requires_grad=[False, True, True], atol=1e-12, rtol=1e-10)


def test_integer_and_bool_sums_are_int64_on_the_device():
    for data in (np.array([True, False, True]), np.full(100, 100, np.uint8)):
        s = tc.tensor(data, device="cuda").sum()
        assert s.device == "cuda" and s.dtype == np.int64
        assert s.numpy() == tc.tensor(data).sum().numpy() == data.astype(np.int64).sum()


def test_comparisons_and_argmax_stay_on_the_device():
    x = tc.tensor(np.array([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]]), device="cuda")
    assert (x > 1.5).device == "cuda"
    np.testing.assert_array_equal((x > 1.5).numpy(), x.numpy() > 1.5)
    np.testing.assert_array_equal(x.argmax(1).numpy(), [1, 2])
    labels = tc.tensor(np.array([1, 0]), device="cuda")
    assert (x.argmax(1) == labels).numpy().tolist() == [True, False]


def test_device_names():
    for name in ("cuda", "CUDA", "cuda:0", "Cuda:0"):
        assert tc.tensor(1.0, device=name).device == "cuda"
        assert tc.tensor(1.0).to(name).device == "cuda"
    for name in ("cuda:1", "cuda:x", "cuda:"):
        with pytest.raises(ValueError, match=f"device: '{name}' is not available: tinycnn runs"):
            tc.tensor(1.0, device=name)
        with pytest.raises(ValueError, match="runs on one GPU, 'cuda' \\(or 'cuda:0'\\)"):
            tc.tensor(1.0).to(name)
    with pytest.raises(ValueError, match=r"expected one of \('cpu', 'cuda'\), got 'gpu'"):
        tc.tensor(1.0, device="gpu")


def test_argmax_of_an_empty_batch_and_of_small_integer_dtypes():
    for shape, dim in [((0, 3), 1), ((2, 0), 0), ((0, 2, 3), -1)]:
        x = np.zeros(shape)
        got = tc.tensor(x, device="cuda").argmax(dim)
        assert got.device == "cuda" and got.dtype == np.int64
        assert got.shape == tc.tensor(x).argmax(dim).shape == np.argmax(x, dim).shape
    with pytest.raises(ValueError, match=r"argmax: the reduced dim 1 is empty"):
        tc.tensor(np.zeros((2, 0)), device="cuda").argmax(1)
    for data in (np.array([[False, True, True], [False, False, False]]),
                 np.array([[3, 9, 9], [1, 0, 2]], np.uint8),
                 np.array([[-3, -9, 9], [1, 5, 2]], np.int32)):  # fmt: skip
        t = tc.tensor(data, device="cuda")
        np.testing.assert_array_equal(t.argmax(1).numpy(), np.argmax(data, 1))
        assert t.argmax().item() == np.argmax(data)


def test_comparing_with_a_string_is_refused_by_name():
    x = tc.tensor(np.array([1.0, 2.0]), device="cuda")
    for other in ("f", "x", "?"):
        with pytest.raises(
            TypeError, match=f"compare eq: the other operand must be a number.*'{other}'"
        ):
            _ = x == other
    np.testing.assert_array_equal((x == 2).numpy(), [False, True])
