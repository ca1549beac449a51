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


_PLAIN_PYTHON_STEP = """
import numpy as np, tinycnn as tc, tinycnn.functional as F
rng = np.random.default_rng(0)
x = tc.tensor(rng.random((2, 3, 6, 6)), requires_grad=True)
w = tc.tensor(rng.random((4, 3, 3, 3)) - 0.5, requires_grad=True)
y = F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2)
loss = F.cross_entropy(y.flatten(1), tc.tensor(np.array([0, 1])))
loss.backward()
print(repr(loss.item()), *map(repr, w.grad.numpy().ravel().tolist()))
"""


def test_the_kernels_run_as_plain_python_with_numba_disable_jit():
    """``NUMBA_DISABLE_JIT=1`` (to step through a kernel with pdb) runs every kernel of a
    conv, relu, max-pool, cross-entropy step as Python; it gives the compiled result."""
    import os
    import subprocess
    import sys

    def run(**env):
        out = subprocess.run(
            [sys.executable, "-c", _PLAIN_PYTHON_STEP],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr
        return np.array([float(v) for v in out.stdout.split()])

    plain, compiled = run(NUMBA_DISABLE_JIT="1"), run()
    np.testing.assert_allclose(plain, compiled, rtol=1e-12, atol=1e-14)
