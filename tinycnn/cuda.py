"""``tinycnn.cuda``: is a CUDA GPU usable here, and how much device memory is tinycnn holding?

Nothing here imports ``numba.cuda`` until asked, so ``import tinycnn`` stays free of CUDA.
Before its first CUDA call tinycnn installs a caching allocator (``tinycnn/ops/cuda/memory.py``;
``TINYCNN_CUDA_POOL=0`` keeps numba's own).
"""

from __future__ import annotations

import contextlib
import sys
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


@contextlib.contextmanager
def launch_profile(sync: bool = False):
    """Count and time every tinycnn kernel launched inside the ``with`` block::

        with tc.cuda.launch_profile() as profile:
            model.fit(x, y, epochs=1)
        # profile: {kernel name: [launches, seconds]}

    Without ``sync`` the seconds are the host's part of each launch (what bounds small
    batches); with ``sync=True`` every launch waits for its kernel, so they are launch + run
    (slower overall, but per kernel).  Copies to and from the device are not launches."""
    require()
    from .ops.cuda import _cuda

    if _cuda.PROFILE is not None:
        raise RuntimeError("launch_profile: already profiling (the blocks do not nest)")
    profile: dict[str, list] = {}
    _cuda.PROFILE, _cuda.PROFILE_SYNC = profile, bool(sync)
    try:
        yield profile
    finally:
        _cuda.PROFILE, _cuda.PROFILE_SYNC = None, False


def profile_report(profile: dict, steps: int = 1) -> str:
    """:func:`launch_profile`'s counts as a table, per step, the costliest kernels first."""
    rows = sorted(profile.items(), key=lambda kv: -kv[1][1])
    total_n = sum(n for n, _ in profile.values())
    total_s = sum(t for _, t in profile.values())
    short = {name: ".".join(name.split(".")[-2:]) for name in profile}  # module.kernel
    width = max([len("kernel")] + [len(v) for v in short.values()])
    lines = [f"{'kernel':<{width}}  launches/step  us/launch  us/step"]
    for name, (n, t) in rows:
        lines.append(
            f"{short[name]:<{width}}  {n / steps:13.1f}  {1e6 * t / n:9.1f}  {1e6 * t / steps:7.0f}"
        )
    lines.append(
        f"{'total':<{width}}  {total_n / steps:13.1f}  {1e6 * total_s / max(total_n, 1):9.1f}  "
        f"{1e6 * total_s / steps:7.0f}"
    )
    return "\n".join(lines)


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
    the same process); returns the bytes freed.  Live tensors are untouched; this thread's
    scratch buffers (im2col columns, the largest temporaries) are given back too."""
    from .ops.cuda import memory

    workspace = sys.modules.get("tinycnn.ops.cuda.workspace")  # imported by a conv only
    if workspace is not None:
        workspace.clear()
    return memory.empty_cache()
