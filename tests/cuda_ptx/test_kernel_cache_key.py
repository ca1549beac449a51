"""The on-disk cache of CUDA kernels is keyed on every source file of the CUDA back end, not
only on the kernel's own (numba's rule): a block size changed in ``config.py`` must not run
with a cached kernel whose shared arrays were sized for the old one.  No GPU needed."""

from __future__ import annotations

import pytest

pytest.importorskip("numba.cuda")

from numba.cuda.dispatcher import CUDACache  # noqa: E402

from tinycnn.ops.cuda import _cuda, _elementwise  # noqa: E402


def test_every_kernel_cache_key_holds_the_sources_hash(monkeypatch):
    kernel = _elementwise.fill
    cache = kernel.dispatcher._cache
    assert isinstance(cache, CUDACache) and type(cache) is _cuda._cache_class()
    monkeypatch.setattr(CUDACache, "_index_key", lambda self, sig, codegen: ("numba's key",))
    assert cache._index_key(None, None) == ("numba's key", _cuda.SOURCES)


def test_sources_hash_follows_every_file(tmp_path):
    (tmp_path / "config.py").write_text("REDUCE_THREADS = 256\n")
    (tmp_path / "norm.py").write_text("def kernel(): pass\n")
    before = _cuda._sources_hash(tmp_path)
    (tmp_path / "config.py").write_text("REDUCE_THREADS = 128\n")
    assert _cuda._sources_hash(tmp_path) != before
    assert _cuda._sources_hash() == _cuda.SOURCES  # the installed back end's files
