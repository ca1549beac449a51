"""One place for how CPU kernels are compiled.

Threading: a training step alternates Numba loops (im2col, pooling, activations) with BLAS
GEMMs, many of them small.  Numba's OpenMP layer launches a parallel loop in a few
microseconds; its ``workqueue`` layer took ~100 us per launch here (a LeNet-5 step: 5.3 ms
against 10.5 ms), so OpenMP comes first when it is available.  After a parallel region OpenMP's
workers spin before they sleep; ``GOMP_SPINCOUNT`` shortens that to ~10k spins (a few
microseconds) so they do not hold a core the GEMM that follows needs -- unless the user set
it; ``import tinycnn`` sets it, since OpenMP reads it once, when it loads.  The layer must be
chosen before the pool starts (the first parallel kernel, or ``numba.get_num_threads()``),
which is why every kernel module imports ``njit`` from here, and why code that asks Numba for
its thread count imports this module first.  BLAS threading is in ``_blas.py``.

Errors: ``error_model="numpy"``.  Numba's default ("python") checks every float division for a
zero divisor so that it can raise ``ZeroDivisionError``; that branch stops LLVM from vectorising
the loop (a vectorisable tanh measured 6.7x slower with it).  Kernels follow NumPy and PyTorch
instead (``x / 0`` is inf or NaN); the ops validate their arguments before any kernel runs.

Vector width: on CPUs with AVX-512, LLVM vectorises for 256-bit registers unless told
otherwise (its ``prefer-256-bit`` tuning, from the time when 512-bit instructions slowed the
clock).  The direct convolutions are bound by their multiply-adds, and NumPy's OpenBLAS already
runs 512-bit GEMMs on those CPUs, so the host features are passed on with ``-prefer-256-bit``
(the README: direct convolutions 5-14 % faster, the rest level).  Not when the user set
``NUMBA_CPU_FEATURES`` or ``NUMBA_CPU_NAME``, or ``TINYCNN_AVX512=0``.  This is a setting of
Numba's CPU target, so it applies to every function Numba compiles in the process after the
first tinycnn kernel module loads.

Cache: kernels are cached on disk (``cache=True``), but Numba keys a cached kernel only on its
own bytecode and its own file's time stamp.  The compiler settings below and the helpers of
``_vmath.py`` inlined into kernels live in other files, so their hash is added to the key: a
kernel compiled under other settings, or with another version of the helpers, is never reused.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba
from numba.core.caching import FunctionCache

if "NUMBA_THREADING_LAYER" not in os.environ and "NUMBA_THREADING_LAYER_PRIORITY" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]


def _wide_vectors() -> None:
    """Let LLVM use 512-bit vectors where the CPU has AVX-512 (see the module docstring)."""
    if numba.config.CPU_FEATURES is not None or numba.config.CPU_NAME is not None:
        return  # the user chose the target
    if os.environ.get("TINYCNN_AVX512", "1") == "0":
        return
    from numba.core.codegen import get_host_cpu_features

    features = get_host_cpu_features()
    if "+avx512f" in features.split(","):
        numba.config.CPU_FEATURES = features + ",-prefer-256-bit"


_wide_vectors()

# fastmath flags for every kernel: reassociation and contraction (vectorised reductions, FMA)
# but never 'nnan'/'ninf', so NaN and Inf propagate as the user expects.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# for a kernel whose order of operations is the point: with 'reassoc' LLVM may rewrite
# ``(x - m) - c`` as ``x - (m + c)``, which loses every bit of ``x - m`` when |m| is ~1e16
ORDERED_FASTMATH = FASTMATH - {"reassoc"}
ERROR_MODEL = "numpy"


def _toolchain_hash() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("_numba.py", "_vmath.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


TOOLCHAIN = _toolchain_hash()


class _Cache(FunctionCache):
    """Numba's per-function disk cache with :data:`TOOLCHAIN` in the index key."""

    def _index_key(self, sig, codegen):
        return (*super()._index_key(sig, codegen), TOOLCHAIN)


def njit(*args, parallel: bool = False, **kwargs):
    """``numba.njit`` with tinycnn's settings: cached on disk (keyed on the toolchain too),
    shared fastmath flags, NumPy's error model, no GIL."""
    cache = kwargs.pop("cache", True)
    kwargs.setdefault("fastmath", FASTMATH)
    kwargs.setdefault("error_model", ERROR_MODEL)
    kwargs.setdefault("nogil", True)

    def decorate(fn):
        dispatcher = numba.njit(parallel=parallel, **kwargs)(fn)
        if not hasattr(dispatcher, "py_func"):  # NUMBA_DISABLE_JIT=1: the plain function
            return dispatcher
        if cache and kwargs.get("inline") != "always":  # inlined helpers are never called
            dispatcher._cache = _Cache(dispatcher.py_func)  # what Dispatcher.enable_caching does
        return dispatcher

    if args:  # used bare: @njit
        return decorate(*args)
    return decorate


prange = numba.prange
