"""tinycnn's GEMM: NumPy's matmul, split across tinycnn's threads when large, with BLAS held at one
thread for the call and its thread count restored afterwards."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from tinycnn.ops.cpu import _blas

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((300, 200), (200, 150)),  # split by rows
        ((4, 256, 300), (300, 100)),  # split by batch, b broadcast
        ((1, 64, 300), (6, 300, 200)),  # a broadcast over the batch
        ((2, 3, 128, 64), (64, 512)),  # 4-d
        ((1, 64, 300), (1, 300, 1000)),  # few rows: split by columns
        ((32, 300), (300, 777)),  # columns, a ragged last block
        ((50, 70), (70, 30)),  # small: one thread
        ((70,), (70, 30)),  # a vector
        ((30, 70), (70,)),
    ],
)
def test_matmul_equals_numpy(sa, sb, monkeypatch):
    monkeypatch.setattr(_blas, "SPLIT_MIN_FLOPS", 0.0)  # split whatever fits
    a = RNG.standard_normal(sa).astype(np.float32)
    b = RNG.standard_normal(sb).astype(np.float32)
    expected = np.matmul(a, b)
    got = _blas.matmul(a, b)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    out = np.empty_like(expected)
    assert _blas.matmul(a, b, out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_blocks_cover_the_output_once():
    a, b = np.ones((5, 64, 8)), np.ones((8, 16))
    out = np.empty((5, 64, 16))
    blocks = _blas._blocks(a, b, out, 2)
    assert [blk[2].shape[0] for blk in blocks] == [2, 3]
    assert _blas._blocks(np.ones((100, 8)), b, np.empty((100, 16)), 2) is None  # < 2*64 rows
    # too few rows but enough columns: blocks of whole cache lines (multiples of COL_ALIGN)
    wide = _blas._blocks(np.ones((64, 8)), np.ones((8, 1000)), np.empty((64, 1000)), 2)
    assert [blk[2].shape for blk in wide] == [(64, 496), (64, 504)]
    assert all(blk[1].base is not None for blk in wide)  # views, not copies


def test_threads_give_the_same_result_and_blas_threads_are_restored(monkeypatch):
    monkeypatch.setattr(_blas, "SPLIT_MIN_FLOPS", 0.0)
    a = RNG.standard_normal((8, 256, 96))
    b = RNG.standard_normal((96, 80))
    before = [lib.get_num_threads() for lib in _blas._controllers()]
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            results.append(_blas.matmul(a, b))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-13)
    assert [lib.get_num_threads() for lib in _blas._controllers()] == before


def test_gemms_with_inf_and_nan_give_them_without_numpy_warnings():
    """As in every Numba kernel: Inf * 0 is NaN in the result, and BLAS' calls do not add
    ``RuntimeWarning: invalid value encountered in matmul`` to it."""
    import warnings

    a = np.ones((128, 64), np.float32)
    a[3, 5] = np.inf
    b = np.zeros((64, 96), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _blas.matmul(a, b)
    assert np.isnan(out[3]).all() and (np.delete(out, 3, axis=0) == 0).all()
