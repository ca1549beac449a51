"""``tinycnn.cuda``: is a CUDA GPU usable here?

Nothing here imports ``numba.cuda`` until asked, so ``import tinycnn`` stays free of CUDA.
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
