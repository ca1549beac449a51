"""Numba's disk cache keys a kernel on its own bytecode and its own file only.  tinycnn adds the
hash of its compiler settings and inlined helpers (``tinycnn/ops/cpu/_numba.py``,
``_vmath.py``) to the key, so a kernel compiled under other settings is never reused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tinycnn.ops.cpu import _numba, activation


def test_toolchain_hash_covers_the_settings_and_the_helpers():
    here = Path(_numba.__file__).parent
    expected = hashlib.sha256(
        (here / "_numba.py").read_bytes() + (here / "_vmath.py").read_bytes()
    ).hexdigest()[:16]
    assert _numba.TOOLCHAIN == expected


def test_cache_key_holds_the_toolchain_and_a_changed_toolchain_misses(monkeypatch):
    x = np.linspace(-3, 3, 7)
    out = np.empty_like(x)
    activation.tanh_forward(x, out)  # compiles or loads _tanh_forward_ser
    kernel = activation._tanh_forward_ser
    cache = kernel._cache
    assert isinstance(cache, _numba._Cache)
    sig = kernel.signatures[0]
    codegen = kernel.targetctx.codegen()
    assert cache._index_key(sig, codegen)[-1] == _numba.TOOLCHAIN
    assert cache.load_overload(sig, kernel.targetctx) is not None  # saved under today's key
    monkeypatch.setattr(_numba, "TOOLCHAIN", "another-toolchain")
    assert cache.load_overload(sig, kernel.targetctx) is None
