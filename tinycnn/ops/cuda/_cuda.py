"""How CUDA kernels are declared, launched and viewed (the counterpart of ``cpu/_numba.py``).

Every kernel is declared with :func:`kernel` and the argument types it is launched with.  The
declaration is what ``tests/cuda_ptx`` compiles for a real GPU (``numba.cuda.compile_ptx``), and
under the simulator every launch checks that its argument types are among the declared ones, so
a launch with a type nobody compiled fails in CI rather than on a GPU.  Likewise a grid or block
a GPU would refuse (:func:`check_launch`, on a GPU too) and, under the simulator, a host array
argument (which numba would copy to the device and back around every launch on a GPU).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from numba import config as _numba_config
from numba import cuda, typeof
from numba.core import sigutils
from numba.core.errors import NumbaPerformanceWarning

from . import config

SIMULATOR = bool(_numba_config.ENABLE_CUDASIM)


def _sources_hash(folder: Path = Path(__file__).parent) -> str:
    """A hash of every module of the CUDA back end.  numba keys a cached kernel only on its own
    file, but kernels freeze values of ``config.py`` (a shared array's size, the GEMM tile) and
    inline device functions of sibling modules: a change there must not reuse a stale kernel
    (one whose shared arrays no longer match the block size the launch takes)."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


SOURCES = _sources_hash()


@functools.cache
def _cache_class():
    from numba.cuda.dispatcher import CUDACache

    class _Cache(CUDACache):
        """numba's CUDA kernel cache with :data:`SOURCES` in the index key (as
        ``cpu/_numba.py`` adds its toolchain's hash)."""

        def _index_key(self, sig, codegen):
            return (*super()._index_key(sig, codegen), SOURCES)

    return _Cache


if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    # A real DeviceNDArray's host-side ``shape`` is a plain tuple (``a.shape[-1]`` works); the
    # simulator's FakeShape refuses negative indices everywhere (a rule meant for kernel code),
    # which would fail host code under the simulator that runs on a GPU.
    FakeCUDAArray.shape = property(lambda self: tuple(self._ary.shape))

    _sim_reshape = FakeCUDAArray.reshape

    def _strict_reshape(self, *args, **kwargs):
        # NumPy would copy; a real DeviceNDArray refuses, or (2-d F-contiguous, i.e. a
        # transposed view) silently reinterprets the memory in C order.  Refuse, so a missing
        # ``contiguous()`` fails under the simulator instead of giving wrong numbers on a GPU.
        if not self._ary.flags.c_contiguous:
            raise NotImplementedError(
                "reshape of a non-C-contiguous device array: call contiguous() first"
            )
        return _sim_reshape(self, *args, **kwargs)

    FakeCUDAArray.reshape = _strict_reshape
FLOATS = ("float32", "float64")

# what every GPU accepts: blocks of a grid along x, y, z; threads of a block along x, y, z and
# in all.  The simulator runs any launch, even one of 0 blocks: each launch is checked here.
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_BLOCK = (1024, 1024, 64)
MAX_BLOCK_THREADS = 1024

# per thread: {kernel name: {(grid, block): numba launch configuration}}
_LAUNCHERS = threading.local()
MAX_LAUNCHERS = 256  # distinct launch shapes kept per kernel (a model uses a few dozen)

# every declared kernel, by qualified name: (python function, [argument-type tuples])
REGISTRY: dict[str, tuple] = {}
# under the simulator: the argument types each kernel was launched with
LAUNCHED: dict[str, set] = {}
# while tinycnn.cuda.launch_profile() is on: {kernel name: [launches, seconds]}, and whether
# each launch waits for the kernel (its seconds are then launch + run, else the host's part)
PROFILE: dict[str, list] | None = None
PROFILE_SYNC = False


def each(template: str, **choices) -> list[str]:
    """Expand ``{T}``-style placeholders: ``each("{T}[::1]", T=FLOATS)`` gives two signatures."""
    out = [template]
    for key, values in (choices or {"T": FLOATS}).items():
        out = [s.replace("{" + key + "}", v) for s in out for v in values]
    return out


def _parse(signature: str) -> tuple:
    args, _ = sigutils.normalize_signature(f"void({signature})")
    return tuple(args)


class Kernel:
    """A ``@cuda.jit`` kernel and the signatures it is launched with; launch: ``k[grid, block]``."""

    def __init__(self, fn, signatures: list[str], name: str | None = None):
        self.py_func = fn
        self.name = name or f"{fn.__module__}.{fn.__name__}"
        self.signatures = [_parse(s) for s in signatures]
        # the simulator runs the Python function itself: nothing to cache
        self.dispatcher = cuda.jit(fn) if SIMULATOR else cuda.jit(fn, cache=True)
        if not SIMULATOR:
            self.dispatcher._cache = _cache_class()(fn)  # what enable_caching does, keyed
        REGISTRY[self.name] = (fn, self.signatures)

    def __getitem__(self, launch):
        if PROFILE is not None:
            return self._timed(self._launcher(launch))
        return self._launcher(launch)

    def _timed(self, launcher):
        entry = PROFILE.setdefault(self.name, [0, 0.0])

        def timed(*args):
            t0 = time.perf_counter()
            launcher(*args)
            if PROFILE_SYNC:
                cuda.synchronize()
            entry[0] += 1
            entry[1] += time.perf_counter() - t0

        return timed

    def _launcher(self, launch):
        if not SIMULATOR:
            # numba builds a launch configuration object on every ``dispatcher[grid, block]``
            # (microseconds of Python per launch, and a low-occupancy warning for each small
            # grid); a configuration is reusable, so each (grid, block) is built once per thread
            cache = _LAUNCHERS.__dict__.setdefault(self.name, {})
            launcher = cache.get(launch)
            if launcher is None:
                if len(cache) >= MAX_LAUNCHERS:
                    cache.clear()
                launcher = cache[launch] = self._configure(launch)
            return launcher
        grid, block = launch
        check_launch(self.name, grid, block)
        launcher = self.dispatcher[grid, block]

        def checked(*args):
            if any(isinstance(a, np.ndarray) for a in args):
                # typed like a device array, but on a GPU numba copies it to the device and
                # back around the launch, waiting for the kernel: a hidden host round trip
                raise TypeError(f"{self.name}: launched with a host (NumPy) array argument")
            types = tuple(typeof(a) for a in args)
            if types not in self.signatures:
                raise TypeError(
                    f"{self.name}: launched with undeclared argument types {types}; add them "
                    "to its @kernel signatures so tests/cuda_ptx compiles them"
                )
            LAUNCHED.setdefault(self.name, set()).add(types)
            return launcher(*args)

        return checked

    def _configure(self, launch):
        grid, block = launch
        check_launch(self.name, grid, block)
        with warnings.catch_warnings():
            # tinycnn sizes each grid to its work (grid-stride loops): a small grid for a small
            # array is intended, not the beginner's mistake numba's warning is there to catch
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            return self.dispatcher[grid, block]


def _dims(dims) -> tuple[int, int, int]:
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))


def check_launch(name: str, grid, block) -> None:
    """Raise where a GPU would refuse ``kernel[grid, block]`` (too many blocks along y or z,
    too many threads, or an empty dimension), with the kernel's name."""
    g, b = _dims(grid), _dims(block)
    fits = all(1 <= v <= hi for v, hi in zip(g + b, MAX_GRID + MAX_BLOCK))
    if not fits or b[0] * b[1] * b[2] > MAX_BLOCK_THREADS:
        raise ValueError(
            f"{name}: a GPU cannot launch grid {g} x block {b} (at most {MAX_GRID} blocks, "
            f"{MAX_BLOCK} and {MAX_BLOCK_THREADS} threads in all, none of them 0)"
        )


def kernel(*signatures: str, name: str | None = None):
    """Declare a CUDA kernel with the argument types (numba strings) it is launched with."""

    def deco(fn):
        return Kernel(fn, list(signatures), name)

    return deco


def blocks(n: int, threads: int = config.THREADS) -> int:
    """Blocks for a grid-stride loop over ``n`` items (capped: the loop covers the rest)."""
    return max(1, min(math.ceil(n / threads), config.MAX_BLOCKS))


# ------------------------------------------------------------------------------ device arrays
def elem_strides(a) -> tuple[int, ...]:
    item = np.dtype(a.dtype).itemsize
    return tuple(int(s) // item for s in a.strides)


def is_dense(a) -> bool:
    """True when ``a`` is a permutation of a C-contiguous array (our ``transpose`` views)."""
    dims = sorted(
        ((int(n), s) for n, s in zip(a.shape, elem_strides(a)) if n != 1),
        key=lambda d: -d[1],
    )
    expected = 1
    for n, s in reversed(dims):
        if s != expected:
            return False
        expected *= n
    return True


def flat_buffer(a):
    """The memory of a dense array (see :func:`is_dense`) as a 1-d contiguous device array."""
    if a.is_c_contiguous():
        return a.reshape((a.size,))
    if SIMULATOR:
        return a.ravel(order="K")  # a view for a permuted contiguous NumPy array
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    item = np.dtype(a.dtype).itemsize
    return DeviceNDArray((a.size,), (item,), a.dtype, gpu_data=a.gpu_data)


def permuted_view(a, axes: tuple[int, ...]):
    """``a`` with its axes permuted, sharing memory (numba's own transpose copies, 2-d only)."""
    if SIMULATOR:
        return a.transpose(axes)
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    shape = tuple(a.shape[i] for i in axes)
    strides = tuple(a.strides[i] for i in axes)
    return DeviceNDArray(shape, strides, a.dtype, gpu_data=a.gpu_data)


def host_c(a) -> np.ndarray:
    """C-contiguous, keeping 0-d arrays 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    return np.asarray(a, order="C")


def to_host(a) -> np.ndarray:
    """A C-contiguous host copy of any device array, dense or not."""
    if a.is_c_contiguous() or a.size == 0:
        return host_c(a.copy_to_host())
    if is_dense(a):
        strides = elem_strides(a)
        flat = flat_buffer(a).copy_to_host()
        item = flat.dtype.itemsize
        return host_c(
            np.lib.stride_tricks.as_strided(
                flat, a.shape, tuple(s * item for s in strides), writeable=False
            )
        )
    return host_c(a.copy_to_host())  # other views: numba copies their extent
