"""The CUDA array back end, function by function, against the CPU back end (simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from tinycnn.ops.cpu import array as C
from tinycnn.ops.cuda import array as G

RNG = np.random.default_rng(0)


def r(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def same(got, want, **kw):
    got = G.to_numpy(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, **kw)


def both(name, *args, **kwargs):
    """Run back-end function ``name`` on host arrays (CPU) and their device copies (CUDA)."""
    dev = [G.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
    same(getattr(G, name)(*dev, **kwargs), getattr(C, name)(*args, **kwargs), rtol=1e-6)


def test_creation_and_round_trip():
    x = r(2, 3)
    d = G.from_numpy(x)
    np.testing.assert_array_equal(G.to_numpy(d), x)
    same(G.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
    same(G.full((3,), 2.5, np.float64), np.full(3, 2.5))
    same(G.full((2,), True, np.bool_), np.ones(2, bool))
    same(G.scalar(1.5, np.float32), np.asarray(1.5, np.float32))
    assert G.empty((0, 4), np.float32).shape == (0, 4)
    with pytest.raises(TypeError, match="int16 is not supported on device 'cuda'"):
        G.from_numpy(np.zeros(2, np.int16))


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "maximum"])
@pytest.mark.parametrize(
    "sa,sb", [((2, 3), (2, 3)), ((2, 3), ()), ((), (3,)), ((4, 1, 3), (2, 1)), ((2, 1), (1, 3))]
)
def test_binary_broadcasting(name, sa, sb):
    a, b = r(*sa), r(*sb) + (3.0 if name == "div" else 0.0)
    both(name, a, b)


def test_binary_python_scalars_dtypes_and_errors():
    x = r(2, 3, dtype=np.float32)
    both("add", x, 2.0)  # a weak Python scalar keeps float32
    both("mul", 3, x)
    both("add", x, r(3).astype(np.float32))
    same(G.add(G.from_numpy(np.arange(3)), G.from_numpy(np.arange(3))), np.arange(3) * 2)
    with pytest.raises(ValueError, match=r"add: operands could not be broadcast.*\(2, 3\) \(4,\)"):
        G.add(G.from_numpy(x), G.from_numpy(r(4, dtype=np.float32)))


def test_maximum_propagates_nan():
    a, b = np.array([1.0, np.nan, 3.0]), np.array([2.0, 0.0, np.nan])
    both("maximum", a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary(dtype):
    x = np.abs(r(3, 4, dtype=dtype)) + 0.5
    for name in ("neg", "exp", "log", "sqrt"):
        both(name, x)
    both("power", x, 2.5)
    both("power", -x, 2.0)


def test_transposed_views_feed_every_kernel():
    x = r(2, 3, 4)
    t = G.transpose(G.from_numpy(x), (2, 0, 1))
    assert not t.is_c_contiguous() and t.shape == (4, 2, 3)
    want = np.transpose(x, (2, 0, 1))
    same(G.contiguous(t), want)
    same(G.copy(t), want)
    b = r(3)
    same(G.add(t, G.from_numpy(b)), want + b)
    same(G.exp(t), np.exp(want))
    same(G.reshape(t, (8, 3)), want.reshape(8, 3))
    with pytest.raises(NotImplementedError, match="contiguous"):
        t.reshape(-1)  # a raw view: the simulator refuses, as a GPU must not reinterpret it
    same(G.sum(t, axis=1), want.sum(axis=1))
    same(G.getitem(t, (1, slice(None), 2)), want[1, :, 2])


@pytest.mark.parametrize(
    "axis,keepdims",
    [(None, False), (0, False), (1, True), ((0, 2), False), ((0, 1, 2), True), ((), False)],
)
def test_sum(axis, keepdims):
    both("sum", r(3, 4, 5), axis=axis, keepdims=keepdims)


def test_sum_long_rows_use_the_block_reduction(monkeypatch):
    both("sum", r(2, 1100), axis=1)  # > 4 * REDUCE_THREADS per row: the shared-memory tree
    monkeypatch.setattr(G, "REDUCE_CHUNK", 512)
    both("sum", r(2, 1100), axis=1)  # several chunks per row, reduced again
    both("sum", np.array([True, False, True]))
    both("sum", np.arange(6).reshape(2, 3), axis=0)


@pytest.mark.parametrize("shape,target", [((4, 2, 3), (2, 3)), ((2, 3), (2, 1)), ((2, 3), (1,))])
def test_sum_to_shape_and_broadcast_to(shape, target):
    both("sum_to_shape", r(*shape), target)
    both("broadcast_to", r(*target), shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "sa,sb",
    [
        ((5, 7), (7, 3)),
        ((70, 20), (20, 66)),
        ((2, 3, 4), (4, 5)),
        ((3, 1, 2, 4), (2, 4, 3)),
        ((2, 1, 3, 4), (3, 4, 2)),
        ((2, 1, 3, 2, 4), (1, 2, 1, 4, 3)),
        ((4,), (4, 3)),
        ((3, 4), (4,)),
    ],
)
def test_matmul(dtype, sa, sb):
    a, b = r(*sa, dtype=dtype), r(*sb, dtype=dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    same(G.matmul(G.from_numpy(a), G.from_numpy(b)), np.matmul(a, b), rtol=tol, atol=tol)


@pytest.mark.parametrize("sa,sb", [((200, 7), (7, 70)), ((3, 150, 5), (3, 5, 9))])
def test_matmul_row_tiles_stride_over_the_grid(sa, sb):
    """More row tiles (and batch entries) than the grid has y (and z) blocks: the blocks walk
    the (batch, row tile) pairs (a GPU has at most 65535 blocks along y; the simulator 2)."""
    from tinycnn.ops.cuda.array_shape import gemm_grid

    m, n, nb = sa[-2], sb[-1], int(np.prod(sa[:-2]))
    assert gemm_grid(m, n, nb)[1] < -(-m // 64)
    a, b = r(*sa), r(*sb)
    same(G.matmul(G.from_numpy(a), G.from_numpy(b)), np.matmul(a, b), rtol=1e-12)


def test_a_launch_a_gpu_would_refuse_or_copy_around_fails_under_the_simulator():
    from tinycnn.ops.cuda import _elementwise as E

    out = G.empty((4,), np.float32)
    with pytest.raises(ValueError, match="_elementwise.fill: a GPU cannot launch"):
        E.fill[(1, 65536), 32](out, np.float32(0))
    with pytest.raises(TypeError, match="_elementwise.cast: launched with a host"):
        E.cast[1, 32](np.zeros(4, np.float32), out)


def test_matmul_reads_transposed_operands_in_place():
    a, b = r(6, 5), r(6, 3)
    at = G.transpose(G.from_numpy(a), (1, 0))
    same(G.matmul(at, G.from_numpy(b)), a.T @ b, rtol=1e-12)
    c = r(2, 4, 3)
    ct = G.transpose(G.from_numpy(c), (0, 2, 1))
    d = r(2, 4, 2)
    want = np.matmul(c.transpose(0, 2, 1), d)
    same(G.matmul(ct, G.from_numpy(d)), want, rtol=1e-12)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        G.matmul(G.from_numpy(a), G.from_numpy(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, True), (True, True)])
def test_matmul_loads_transposed_operands_along_their_unit_stride(dtype, ta, tb):
    """A transposed view is loaded along its rows (A) or K (B), not the row-major way: every
    edge of the 64 x 64 x 16 tiles partial (m 70, n 66, k 20), against NumPy."""
    m, k, n = 70, 20, 66
    a = r(k, m, dtype=dtype) if ta else r(m, k, dtype=dtype)
    b = r(n, k, dtype=dtype) if tb else r(k, n, dtype=dtype)
    da, db = G.from_numpy(a), G.from_numpy(b)
    if ta:
        a, da = a.T, G.transpose(da, (1, 0))
    if tb:
        b, db = b.T, G.transpose(db, (1, 0))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    same(G.matmul(da, db), a @ b, rtol=tol, atol=tol)


def test_concatenate_and_slice_axis():
    a, b = r(2, 3, 4), r(2, 1, 4)
    same(G.concatenate([G.from_numpy(a), G.from_numpy(b)], 1), np.concatenate([a, b], 1))
    same(G.concatenate([G.from_numpy(a), G.from_numpy(a)], -1), np.concatenate([a, a], -1))
    both("slice_axis", a, 1, 1, 3)
    both("slice_axis", a, 2, 0, 1)
    both("slice_axis", a, 0, 1, 5)


@pytest.mark.parametrize(
    "index",
    [
        1,
        (slice(None), 1),
        (1, 2),
        (slice(0, 2), None, slice(None, None, 2)),
        (Ellipsis, -1),
        (slice(None, None, -1),),
        np.array([0, 2, 0]),
        (slice(None), np.array([1, 1])),
    ],
)
def test_getitem_and_backward(index):
    x = r(3, 4, 5)
    both("getitem", x, index)
    g = np.asarray(x[index]) * 0 + r(*np.shape(x[index]))
    same(G.getitem_backward(G.from_numpy(g), index, x.shape), C.getitem_backward(g, index, x.shape))


def test_getitem_out_of_range_raises():
    with pytest.raises(IndexError):
        G.getitem(G.from_numpy(r(2, 3)), (5,))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_take_and_backward(axis):
    x = r(3, 4, 5)
    idx = np.array([0, 2, 2, -1])
    both("take", x, idx, axis)
    g = r(*np.take(x, idx, axis=axis).shape)
    both("take_backward", g, idx, axis, x.shape[axis])
    with pytest.raises(IndexError, match="out of range"):
        G.take(G.from_numpy(x), np.array([7]), axis)


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_compare(op):
    a = RNG.integers(0, 3, (3, 4)).astype(np.float64)
    both("compare", a, a[:1].copy(), op)
    both("compare", a, 1.0, op)
    both("compare", a.astype(np.int64), 1, op)


def test_where_argmax_astype_isfinite():
    c = r(3, 4) > 0
    both("where", c, r(3, 4), r(4))
    both("where", c, r(3, 4), 0.0)
    x = r(3, 4, 5)
    for axis in (None, 0, 1, 2):
        both("argmax", x, axis)
    both("argmax", np.array([1.0, np.nan, 2.0]))
    for src, dst in [
        (np.float64, np.float32),
        (np.float32, np.float64),
        (bool, np.float32),
        (np.float32, np.int64),
        (np.int64, np.float64),
    ]:
        both("astype", (r(2, 3) * 3).astype(src), dst)
    assert G.isfinite_all(G.from_numpy(r(3))) is True
    assert G.isfinite_all(G.from_numpy(np.array([0.0, np.inf]))) is False
    assert G.isfinite_all(G.from_numpy(np.array([np.nan, 1.0], np.float32))) is False
