"""Datasets: bundled MNIST, the strict IDX reader, and the downloader against a local HTTP server
on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import socket
import tarfile
import threading

import numpy as np
import pytest

from tinycnn import datasets
from tinycnn.datasets import DownloadError, IDXError, decode_idx, encode_idx, fetch


# ------------------------------------------------------------------------------------- MNIST
def test_load_mnist_bundled():
    x, y = datasets.load_mnist("train")
    assert x.shape == (60000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (60000,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert y[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training labels
    assert np.bincount(y).tolist()[:2] == [5923, 6742]
    xt, yt = datasets.load_mnist("test", limit=5)
    assert xt.shape == (5, 1, 28, 28) and yt.tolist() == [7, 2, 1, 0, 4]


def test_load_mnist_seed_preprocessing():
    x, y = datasets.load_mnist("test", pad_to_32=True, one_hot=True, limit=100)
    raw, labels = datasets.load_mnist("test", scale=False, limit=100)
    assert x.shape == (100, 1, 32, 32) and y.shape == (100, 10) and y.dtype == np.float32
    assert (x[:, :, :2].max(), x[:, :, -2:].max(), x[..., :2].max(), x[..., -2:].max()) == (0,) * 4
    np.testing.assert_array_equal(x[:, :, 2:30, 2:30] * 255, np.round(raw))
    assert raw.max() == 255.0
    np.testing.assert_array_equal(y.argmax(1), labels)
    np.testing.assert_array_equal(y.sum(1), 1.0)


def test_load_mnist_bad_arguments():
    with pytest.raises(ValueError, match="load_mnist: split must be 'train' or 'test', got 'val'"):
        datasets.load_mnist("val")
    with pytest.raises(ValueError, match="limit must be a positive int"):
        datasets.load_mnist("test", limit=0)


def test_bundled_checksums_are_over_the_uncompressed_files():
    from importlib import resources

    data = resources.files("tinycnn.datasets").joinpath("data")
    lines = data.joinpath("SHA256SUMS").read_text().split("\n")
    sums = dict(reversed(line.split()) for line in lines if line)
    assert len(sums) == 4
    for name, digest in sums.items():
        raw = gzip.decompress(data.joinpath(name + ".gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == digest


# --------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    raw = encode_idx(a)
    for blob in (raw, gzip.compress(raw)):
        b = decode_idx(blob, sha256=hashlib.sha256(raw).hexdigest())
        assert b.dtype == np.dtype(dtype) and b.dtype.isnative
        np.testing.assert_array_equal(a, b)


def test_idx_rejects_bad_files(tmp_path):
    raw = encode_idx(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    cases = [
        (raw[:-1], r"truncated: the header declares shape \(3, 4, 5\) of uint8 \(60 bytes of data"),
        (raw + b"\0", "1 unexpected bytes after the data"),
        (b"\x01" + raw[1:], "not an IDX file: magic number starts with bytes 0x01 0x00"),
        (raw[:2] + b"\x0a" + raw[3:], "unknown IDX dtype code 0x0a"),
        (raw[:10], r"truncated header: 3 dimensions need 16 bytes, the file has 10"),
        (raw[:3] + b"\x00" + raw[4:], "declares 0 dimensions"),
        (b"\0\0", "too short for an IDX header"),
        (gzip.compress(raw)[:-12], "the gzip stream ends early: the file is truncated"),
        (  # 65536**4 bytes: past int64, no overflow
            bytes([0, 0, 8, 4]) + np.full(4, 65536, ">u4").tobytes(),
            r"shape \(65536, 65536, 65536, 65536\) of uint8 \(18446744073709551616 bytes",
        ),
    ]
    for blob, message in cases:
        with pytest.raises(IDXError, match=message):
            decode_idx(blob)
    corrupt = bytearray(gzip.compress(raw))
    corrupt[-8] ^= 0xFF  # the CRC
    with pytest.raises(IDXError, match="corrupt gzip data"):
        decode_idx(bytes(corrupt))
    with pytest.raises(IDXError, match="SHA-256 mismatch: expected 00"):
        decode_idx(raw, sha256="00" * 32)
    path = tmp_path / "x.idx"
    path.write_bytes(raw[:-5])
    with pytest.raises(IDXError, match=f"{path}: truncated"):
        datasets.read_idx(path)
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        datasets.read_idx(tmp_path / "missing")


# -------------------------------------------------------------------------------- downloader
class _Server:
    """A local HTTP server of in-memory files; supports Range; can cut a response short."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.cut_after: int | None = None  # send only this many bytes of the next response
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                chunk = body[start:]
                if server.cut_after is not None:
                    chunk, server.cut_after = chunk[: server.cut_after], None
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server({})
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCNN_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def test_fetch_downloads_verifies_and_caches(server, cache):
    body = np.random.default_rng(0).bytes(3_000_000)
    server.files["/a.bin"] = body
    path = fetch(server.url + "/a.bin", "a.bin", _sha(body), subdir="sub")
    assert path == cache / "sub" / "a.bin" and path.read_bytes() == body
    assert not (cache / "sub" / "a.bin.part").exists()
    server.close()  # the cached copy needs no network
    assert fetch(server.url + "/a.bin", "a.bin", _sha(body), subdir="sub") == path


def test_fetch_md5_and_default_cache_dir(server, monkeypatch, tmp_path):
    monkeypatch.delenv("TINYCNN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.cache_dir() == tmp_path / ".cache" / "tinycnn"
    server.files["/b"] = b"hello"
    path = fetch(server.url + "/b", "b", "md5:" + hashlib.md5(b"hello").hexdigest())
    assert path.parent == tmp_path / ".cache" / "tinycnn"


def test_fetch_checksum_mismatch_leaves_nothing(server, cache):
    server.files["/a"] = b"not what was published"
    with pytest.raises(DownloadError, match="sha256 checksum mismatch.*expected 00"):
        fetch(server.url + "/a", "a", "sha256:" + "00" * 32)
    assert sorted(p.name for p in cache.iterdir()) == ["a.lock"]


def test_fetch_offline_and_http_errors(server, cache):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=r"are you offline\? .*place it at .*x\.gz"):
        fetch(f"http://127.0.0.1:{port}/x.gz", "x.gz", _sha(b""), timeout=5)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url + "/missing", "m", _sha(b""))
    assert not (cache / "x.gz").exists() and not (cache / "m").exists()


def test_fetch_interrupted_then_resumed(server, cache):
    body = np.random.default_rng(1).bytes(500_000)
    server.files["/big"] = body
    server.cut_after = 200_000
    with pytest.raises(DownloadError, match="interrupted after 200000 .*run again to resume"):
        fetch(server.url + "/big", "big", _sha(body))
    assert not (cache / "big").exists()  # never a half file at the final path
    assert (cache / "big.part").stat().st_size == 200_000
    path = fetch(server.url + "/big", "big", _sha(body))
    assert path.read_bytes() == body
    assert server.requests[-1] == ("/big", "bytes=200000-")  # resumed, not restarted
    assert not (cache / "big.part").exists()


def test_fetch_replaces_a_damaged_cached_copy(server, cache):
    server.files["/c"] = b"good data"
    cache.mkdir(parents=True)
    (cache / "c").write_bytes(b"bad data!")
    assert fetch(server.url + "/c", "c", _sha(b"good data")).read_bytes() == b"good data"


def test_fetch_offline_keeps_a_damaged_cached_copy_and_says_so(cache):
    cache.mkdir(parents=True)
    (cache / "c").write_bytes(b"bad data!")  # placed by hand, say
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=r"are you offline\?.*c does not match: expected sha"):
        fetch(f"http://127.0.0.1:{port}/c", "c", _sha(b"good data"), timeout=5)
    assert (cache / "c").read_bytes() == b"bad data!"


def test_a_damaged_bundled_checksum_list_is_named(tmp_path, monkeypatch):
    from tinycnn.datasets import mnist

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "SHA256SUMS").write_text("00 t10k-images-idx3-ubyte\nnot a checksum\n")
    monkeypatch.setattr(mnist.resources, "files", lambda package: tmp_path)
    mnist._bundled_sums.cache_clear()
    mnist._mnist_raw.cache_clear()
    try:
        with pytest.raises(IDXError, match="SHA256SUMS, line 2: expected '<sha256> <file>'"):
            mnist.load_mnist("test")
        (tmp_path / "data" / "SHA256SUMS").write_text("00 t10k-labels-idx1-ubyte\n")
        mnist._bundled_sums.cache_clear()
        with pytest.raises(IDXError, match="SHA256SUMS has no checksum of t10k-images-idx3"):
            mnist.load_mnist("test")
    finally:
        mnist._bundled_sums.cache_clear()
        mnist._mnist_raw.cache_clear()


def test_load_fashion_mnist_from_a_mirror(server, cache, monkeypatch):
    rng = np.random.default_rng(2)
    files = {}
    for split, n in (("train", 6), ("test", 4)):
        prefix = "train" if split == "train" else "t10k"
        images = encode_idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        labels = encode_idx(rng.integers(0, 10, n, dtype=np.uint8))
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(images)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(labels)
    for name, blob in files.items():
        server.files["/fm/" + name] = blob
    sums = {name: _sha(blob) for name, blob in files.items()}
    monkeypatch.setitem(datasets.mnist.FASHION_MNIST, "files", sums)
    x, y = datasets.load_fashion_mnist("test", base_url=server.url + "/fm/", one_hot=True)
    assert x.shape == (4, 1, 28, 28) and y.shape == (4, 10)
    assert (cache / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").exists()


def test_load_cifar10_from_a_mirror(server, cache, monkeypatch):
    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    want = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in datasets.cifar.CIFAR10["train"] + datasets.cifar.CIFAR10["test"]:
            labels = rng.integers(0, 10, 3, dtype=np.uint8)
            pixels = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
            data = np.concatenate([labels[:, None], pixels], axis=1).tobytes()
            want[name] = (labels, pixels)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    server.files["/cifar.tgz"] = blob
    monkeypatch.setitem(datasets.cifar.CIFAR10, "checksum", _sha(blob))
    x, y = datasets.load_cifar10("train", url=server.url + "/cifar.tgz", scale=False)
    assert x.shape == (15, 3, 32, 32) and y.shape == (15,)
    labels, pixels = want["cifar-10-batches-bin/data_batch_2.bin"]
    np.testing.assert_array_equal(y[3:6], labels)
    np.testing.assert_array_equal(x[3:6].reshape(3, -1), pixels)
    xt, _ = datasets.load_cifar10("test", url=server.url + "/cifar.tgz")
    assert xt.shape == (3, 3, 32, 32) and xt.max() <= 1.0
