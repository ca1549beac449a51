"""Devices and their array back ends.

A back end is a module of device-neutral array functions (``tinycnn/ops/<device>/array.py``):
the ops in ``tinycnn/ops/`` call only these and the per-family kernels, so each backward is
written once for every device.  Back ends are imported on first use: ``import tinycnn`` loads
neither Numba's CUDA target nor any kernel.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

DEVICES = ("cpu", "cuda")


def check_device(device) -> str:
    name = str(device).lower()
    if name.startswith("cuda:"):
        if name != "cuda:0":
            raise ValueError(
                f"device: {device!r} is not available: tinycnn runs on one GPU, 'cuda' (or "
                "'cuda:0'), the first one numba sees; choose it with CUDA_VISIBLE_DEVICES"
            )
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"device: expected one of {DEVICES}, got {device!r}")
    if name == "cuda":
        from . import cuda

        cuda.require()
    return name


@cache
def get_backend(device: str) -> ModuleType:
    """The array back end of ``device``."""
    return importlib.import_module(f"tinycnn.ops.{device}.array")


@cache
def get_kernels(device: str, family: str) -> ModuleType:
    """The kernel module of op ``family`` on ``device`` (e.g. ``tinycnn.ops.cpu.conv``)."""
    return importlib.import_module(f"tinycnn.ops.{device}.{family}")
