"""Fetching datasets that are not bundled, into a cache, safely.

* The cache is ``$TINYCNN_DATA`` or ``~/.cache/tinycnn``.
* A file is downloaded to ``<name>.part`` beside its final path, checked against its published
  checksum, fsynced and only then renamed into place (``os.replace`` is atomic): an interrupted
  or corrupt download never sits where a good file is expected.
* An interrupted download resumes from the ``.part`` file with an HTTP ``Range`` request when the
  server supports it (it starts over when not); the checksum covers the whole file either way.
* A lock file keeps two processes from writing the same ``.part`` at once.
* Without a network the error says so, and says where to put the file by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["DownloadError", "cache_dir", "fetch", "file_digest"]

_CHUNK = 1 << 20


class DownloadError(OSError):
    """A dataset file could not be fetched or did not match its checksum."""


def cache_dir() -> Path:
    """Where downloaded datasets live: ``$TINYCNN_DATA``, else ``~/.cache/tinycnn``."""
    env = os.environ.get("TINYCNN_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinycnn"


def _parse_checksum(checksum: str) -> tuple[str, str]:
    algo, _, digest = checksum.partition(":")
    if algo not in ("sha256", "md5") or not digest:
        raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    return algo, digest.lower()


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock, the rename stays atomic
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fetch(url: str, filename: str, checksum: str, subdir: str = "", timeout: float = 30.0) -> Path:
    """The path of ``filename`` in the cache, downloading it from ``url`` if needed.

    Parameters
    ----------
    url : str
        Where to download the file from.
    filename : str
        Its name in the cache (``<cache>/<subdir>/<filename>``).
    checksum : str
        ``"sha256:<hex>"`` or ``"md5:<hex>"`` (some datasets only publish MD5 sums).
    """
    algo, digest = _parse_checksum(checksum)
    directory = cache_dir() / subdir if subdir else cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / filename
    part = directory / (filename + ".part")
    with _locked(directory / (filename + ".lock")):
        damaged = ""
        if final.exists():
            got = file_digest(final, algo)
            if got == digest:
                return final
            # a damaged cached copy: fetch it again (a good download replaces it)
            damaged = f"; the file at {final} does not match: expected {algo} {digest}, got {got}"
        try:
            _download(url, part, final, timeout)
        except DownloadError as exc:
            if damaged:
                raise DownloadError(f"{exc}{damaged}") from None
            raise
        got = file_digest(part, algo)
        if got != digest:
            part.unlink()
            raise DownloadError(
                f"{filename}: {algo} checksum mismatch after downloading {url}: expected "
                f"{digest}, got {got}; the partial file was deleted, try again"
            )
        os.replace(part, final)
        _fsync_dir(directory)
    return final


def _download(url: str, part: Path, final: Path, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "tinycnn"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part is already whole: let the checksum decide
            return
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not download {url} ({reason}): are you offline? Fetch the file by other "
            f"means and place it at {final} (or set TINYCNN_DATA to a directory "
            "that has it)"
        ) from None
    with response:
        resumed = offset and response.status == 206
        mode = "ab" if resumed else "wb"
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with open(part, mode) as f:
            try:
                while True:
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    f.write(block)
                    received += len(block)
            except (TimeoutError, http.client.IncompleteRead, ConnectionError) as exc:
                f.flush()
                raise DownloadError(
                    f"download of {url} interrupted after {received} bytes ({exc!r}); run again "
                    f"to resume from {part}"
                ) from None
            finally:
                f.flush()
                os.fsync(f.fileno())
        if expected is not None and received < expected:
            raise DownloadError(
                f"download of {url} interrupted after {received} of {expected} bytes; run again "
                f"to resume from {part}"
            )
