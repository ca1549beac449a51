"""GEMMs through NumPy's BLAS, with the threads owned by tinycnn.

On two cores, OpenBLAS' own thread pool and Numba's fight: after each GEMM OpenBLAS' idle
workers spin for ~2^28 cycles (~70 ms), taking a core from the Numba loop that follows (a LeNet-5
training step measured 10.5 ms with OpenBLAS threaded, 5.3 ms with it single-threaded), and the
variable that shortens the spin (``OPENBLAS_THREAD_TIMEOUT``) is read only when NumPy loads.  So
every tinycnn GEMM runs OpenBLAS single-threaded (set through ``threadpoolctl`` for the call and
restored after: a user's own NumPy code keeps its BLAS threads), and a large GEMM is split into
independent row or batch blocks that tinycnn's own workers run side by side.  Idle workers
block on a queue: they never spin.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

# Below this many flops (2*M*N*K) a GEMM runs on the calling thread: handing work to another
# thread costs ~20-50 us.
SPLIT_MIN_FLOPS = 2e7
# A row split keeps at least this many rows per block, so BLAS' kernels stay efficient.
MIN_ROWS = 64
# With too few rows (a layer with <= 64 output channels), the columns are split instead:
# blocks of at least MIN_COLS columns, cut at multiples of COL_ALIGN (whole cache lines).
MIN_COLS = 256
COL_ALIGN = 16

_lock = threading.Lock()
_blas = None  # threadpoolctl controllers of the BLAS libraries NumPy loaded (found on first use)
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _controllers():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # pragma: no cover - threadpoolctl missing or a BLAS it cannot drive
            _blas = []
    return _blas


def _workers(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tinycnn-gemm")
            _pool_size = n
        return _pool


class _SingleThreadedBlas:
    """Run the block with every BLAS library at one thread, then restore the counts."""

    def __enter__(self):
        self.saved = []
        for lib in _controllers():
            n = lib.get_num_threads()
            if n != 1:
                lib.set_num_threads(1)
                self.saved.append((lib, n))
        return self

    def __exit__(self, *exc):
        for lib, n in self.saved:
            lib.set_num_threads(n)


def _blocks(a: np.ndarray, b: np.ndarray, out: np.ndarray, parts: int):
    """``parts`` independent (a, b, out) blocks of ``out = a @ b``, or None if none fits."""
    if out.ndim > 2 and out.shape[0] >= parts:
        nd = out.ndim
        a = a.reshape((1,) * (nd - a.ndim) + a.shape)
        b = b.reshape((1,) * (nd - b.ndim) + b.shape)
        edges = np.linspace(0, out.shape[0], parts + 1).astype(int)
        return [
            (
                a if a.shape[0] == 1 else a[lo:hi],
                b if b.shape[0] == 1 else b[lo:hi],
                out[lo:hi],
            )
            for lo, hi in zip(edges[:-1], edges[1:])
        ]
    rows = out.shape[-2] if out.ndim >= 2 else 1
    if out.ndim >= 2 and a.ndim >= 2 and rows >= parts * MIN_ROWS:
        edges = np.linspace(0, rows, parts + 1).astype(int)
        return [(a[..., lo:hi, :], b, out[..., lo:hi, :]) for lo, hi in zip(edges[:-1], edges[1:])]
    cols = out.shape[-1] if out.ndim >= 2 and b.ndim >= 2 else 1
    if cols >= parts * MIN_COLS:
        edges = np.linspace(0, cols, parts + 1).astype(int) // COL_ALIGN * COL_ALIGN
        edges[-1] = cols
        return [(a, b[..., lo:hi], out[..., lo:hi]) for lo, hi in zip(edges[:-1], edges[1:])]
    return None


def split(items: list, parts: int) -> list[list]:
    """``items`` cut into at most ``parts`` runs of consecutive items, as even as they go (the
    work of :func:`parallel`'s threads)."""
    parts = max(1, min(parts, len(items)))
    return [items[k * len(items) // parts : (k + 1) * len(items) // parts] for k in range(parts)]


# Partial sums that must not depend on the thread count (the weight gradients): the work is cut
# into at most LANES runs of consecutive items, each summed into its own partial, the partials
# then added in order.  Fewer lanes for large partials (at least 2, for two threads), so that
# each stays within LANE_BYTES.
LANES = 8
LANE_BYTES = 16 << 20


def lanes(items: list, partial_bytes: int) -> list[list]:
    """``items`` cut into the runs (lanes) of partial sums of ``partial_bytes`` each: a cut
    that follows the shapes alone, never the thread count."""
    return split(items, max(2, min(LANES, LANE_BYTES // max(partial_bytes, 1))))


def parallel(fn, parts: list) -> None:
    """``fn(part)`` for every part, side by side: the first on the calling thread, the others
    on tinycnn's workers, every BLAS call inside single-threaded.  For kernels that pair Numba
    loops (which release the GIL) with GEMMs on data each thread keeps in its own cache; at
    most ``numba.get_num_threads()`` parts."""
    threads = numba.get_num_threads()
    if len(parts) > threads:
        raise ValueError(f"parallel: {len(parts)} parts for {threads} threads")
    with _SingleThreadedBlas():
        if len(parts) <= 1:
            for part in parts:
                _quiet(fn, part)
            return
        pool = _workers(threads - 1)
        pending = [pool.submit(_quiet, fn, part) for part in parts[1:]]
        try:
            _quiet(fn, parts[0])
        finally:
            for p in pending:
                p.result()


def _quiet(fn, part) -> None:
    """``fn(part)`` with NumPy's floating-point warnings off (they are per thread): an Inf or
    NaN in the data gives Inf or NaN in a GEMM as in every Numba kernel, with no
    ``RuntimeWarning: invalid value encountered in matmul`` from BLAS' calls alone."""
    with np.errstate(all="ignore"):
        fn(part)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` (NumPy's broadcasting matmul) into ``out`` (allocated if None)."""
    if out is None:
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        mn = (a.shape[-2] if a.ndim > 1 else None, b.shape[-1] if b.ndim > 1 else None)
        shape = shape + tuple(d for d in mn if d is not None)
        out = np.empty(shape, np.result_type(a, b))
    threads = numba.get_num_threads()
    flops = 2.0 * out.size * a.shape[-1]
    blocks = _blocks(a, b, out, threads) if threads > 1 and flops >= SPLIT_MIN_FLOPS else None
    parallel(lambda blk: np.matmul(blk[0], blk[1], out=blk[2]), blocks or [(a, b, out)])
    return out
