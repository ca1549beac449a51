"""tinycnn: a from-scratch convolutional-network engine (Numba kernels, tape autograd, a graph DSL).

``import tinycnn`` loads NumPy and the tensor core only; kernels, the DSL, the zoo's dependencies
and anything CUDA load on first use.
"""

from __future__ import annotations

import importlib
import os

# OpenMP's workers (Numba's threading layer) spin ~300k times after each parallel loop before
# they sleep, holding a core the GEMM that follows needs; tinycnn asks for a short spin unless
# the user set one.  libgomp reads the variable once, when it loads, which can happen before
# tinycnn's first kernel (``numba.get_num_threads()`` starts the pool), so it is set here.
# Measured: `tinycnn bench resnet50` at batch 8 took 2.0 s per step when it was set too late,
# 1.4 s with it (see ops/cpu/_numba.py for the rest of the threading policy).
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from .autograd import enable_grad, is_grad_enabled, no_grad
from .ops.shape import cat
from .random import manual_seed
from .tensor import Tensor, ones, tensor, zeros

__version__ = "0.1.0"

_LAZY = {
    "functional": "tinycnn.functional",
    "optim": "tinycnn.optim",
    "init": "tinycnn.init",
    "layers": "tinycnn.layers",
    "graph": "tinycnn.graph",
    "regularizers": "tinycnn.regularizers",
    "constraints": "tinycnn.constraints",
    "activations": "tinycnn.activations",
    "cuda": "tinycnn.cuda",
    "datasets": "tinycnn.datasets",
    "train": "tinycnn.train",
    "callbacks": "tinycnn.train.callbacks",
    "io": "tinycnn.io",
}
_LAZY_ATTRS = {
    "Input": ("tinycnn.graph", "Input"),
    "Model": ("tinycnn.graph", "Model"),
    "Sequential": ("tinycnn.graph", "Sequential"),
    "block": ("tinycnn.graph", "block"),
}

__all__ = [
    "Tensor",
    "cat",
    "enable_grad",
    "is_grad_enabled",
    "manual_seed",
    "no_grad",
    "ones",
    "tensor",
    "zeros",
    *_LAZY,
    *_LAZY_ATTRS,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    if name in _LAZY_ATTRS:
        module_name, attr = _LAZY_ATTRS[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinycnn' has no attribute {name!r}")
