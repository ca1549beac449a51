"""Reusable host scratch buffers (im2col columns, GEMM results): ``tinycnn/ops/_workspace.py``
over ``numpy.empty``."""

from __future__ import annotations

import numpy as np

from .._workspace import Workspace

get, nbytes, clear = Workspace(lambda shape, dtype: np.empty(shape, dtype=dtype)).functions()
