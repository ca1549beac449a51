"""The IDX file format (MNIST, Fashion-MNIST), read strictly.

Layout: two zero bytes, a dtype code, the number of dimensions ``d``; ``d`` big-endian uint32
sizes; then the data, big-endian, C order.  Files may be gzip-compressed (detected by gzip's
magic bytes, not by the name).  Every way a file can be wrong gets its own message: a download
cut short, a file that is not IDX, a header that promises more data than there is.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDXError", "decode_idx", "encode_idx", "read_idx"]

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file is not a valid (or not the expected) IDX file."""


def _gunzip(raw: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise IDXError(
            f"{name}: the gzip stream ends early: the file is truncated (an interrupted "
            "download?); delete it and fetch it again"
        ) from None
    except (OSError, zlib.error) as exc:  # BadGzipFile, CRC or length mismatch
        raise IDXError(f"{name}: corrupt gzip data ({exc}); delete it and fetch it again") from None


def decode_idx(raw: bytes, name: str = "<bytes>", sha256: str | None = None) -> np.ndarray:
    """Parse IDX bytes (gzip-compressed or not) into an array in native byte order.

    ``sha256``, when given, is checked against the *uncompressed* IDX bytes: that is what the
    bundled ``SHA256SUMS`` lists (its file names have no ``.gz``), so the check does not depend
    on how the file was compressed.
    """
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(raw, name)
    if sha256 is not None:
        got = hashlib.sha256(raw).hexdigest()
        if got != sha256.lower():
            raise IDXError(
                f"{name}: SHA-256 mismatch: expected {sha256}, got {got} ({len(raw)} bytes); "
                "the file is corrupt or not the expected one"
            )
    if len(raw) < 4:
        raise IDXError(f"{name}: {len(raw)} bytes is too short for an IDX header (4 bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(
            f"{name}: not an IDX file: magic number starts with bytes {raw[0]:#04x} {raw[1]:#04x}, "
            "expected 0x00 0x00"
        )
    code, ndim = raw[2], raw[3]
    if code not in _DTYPES:
        valid = ", ".join(f"{c:#04x}" for c in _DTYPES)
        raise IDXError(f"{name}: unknown IDX dtype code {code:#04x} (valid: {valid})")
    if ndim == 0:
        raise IDXError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(
            f"{name}: truncated header: {ndim} dimensions need {header} bytes, the file has "
            f"{len(raw)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    got = len(raw) - header
    if got < expected:
        raise IDXError(
            f"{name}: truncated: the header declares shape {dims} of {dtype.name} "
            f"({expected} bytes of data), but only {got} bytes follow"
        )
    if got > expected:
        raise IDXError(
            f"{name}: {got - expected} unexpected bytes after the data of shape {dims} "
            f"({expected} bytes): not a valid IDX file"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike, sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) from ``path``; see :func:`decode_idx`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}") from None
    return decode_idx(raw, name=str(path), sha256=sha256)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of ``array`` (for tests and for writing subsets)."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise IDXError(f"encode_idx: dtype {array.dtype} has no IDX code")
    if array.ndim == 0 or array.ndim > 255:
        raise IDXError(f"encode_idx: IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
