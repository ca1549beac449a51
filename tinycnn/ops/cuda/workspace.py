"""Reusable device scratch buffers (im2col columns): ``tinycnn/ops/_workspace.py`` over
``cuda.device_array`` -- on a GPU a fresh allocation is a driver call, and memory that only
numba's deallocation queue gives back."""

from __future__ import annotations

from numba import cuda

from .._workspace import Workspace

get, nbytes, clear = Workspace(
    lambda shape, dtype: cuda.device_array(shape, dtype=dtype)
).functions()
