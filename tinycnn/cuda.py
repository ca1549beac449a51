"""``tinycnn.cuda``: is a CUDA GPU usable here, and how much device memory is tinycnn holding?

Nothing here imports ``numba.cuda`` until asked, so ``import tinycnn`` stays free of CUDA.
Before its first CUDA call tinycnn installs a caching allocator (``tinycnn/ops/cuda/memory.py``;
``TINYCNN_CUDA_POOL=0`` keeps numba's own).
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _probe() -> str | None:
    """None when CUDA is usable, else the reason it is not."""
    try:
        from numba import cuda  # noqa: F401  (the numba-cuda package provides this target)
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"numba's CUDA target cannot be imported ({exc}); pip install 'tinycnn[cuda]'"
    from .ops.cuda import memory

    memory.install()  # before any CUDA context exists: numba binds a context's manager once
    try:
        if not cuda.is_available():
            return "no CUDA GPU or driver was found on this machine"
    except Exception as exc:  # pragma: no cover
        return f"the CUDA driver failed to start ({exc})"
    try:
        import importlib

        importlib.import_module("tinycnn.ops.cuda.array")
    except ImportError as exc:  # pragma: no cover
        return f"tinycnn's CUDA back end is not available ({exc})"
    return None


def is_available() -> bool:
    """True when tensors can be placed on ``"cuda"``."""
    return _probe() is None


def require() -> None:
    reason = _probe()
    if reason is not None:
        raise RuntimeError(f"device 'cuda' is not available: {reason}. Use device='cpu'.")


def synchronize() -> None:
    """Wait for every kernel launched on the GPU to finish (for timing); a no-op without CUDA."""
    if is_available():
        from numba import cuda

        cuda.synchronize()


def memory_stats() -> dict:
    """The caching allocator's counters: ``active`` (is it in use), ``in_use_bytes`` (held by
    live arrays), ``cached_bytes`` (freed, kept for reuse), ``peak_bytes``, ``driver_allocs``
    (``cuMemAlloc`` calls) and ``reuses`` (allocations served from the cache)."""
    from .ops.cuda import memory

    return memory.stats()


def empty_cache() -> int:
    """Give every cached, unused device block back to the driver (e.g. for another library in
    the same process); returns the bytes freed.  Live tensors are untouched."""
    from .ops.cuda import memory

    return memory.empty_cache()
