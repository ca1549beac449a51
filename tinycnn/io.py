"""Checkpoints that cannot run code and cannot be half-written.

Format: a NumPy ``.npz`` archive (a zip of ``.npy`` files), read with ``allow_pickle=False`` so
loading a file from anywhere never executes code, plus one JSON document (the ``__meta__``
member, stored as bytes) with the format version, the kind of checkpoint, the array names and
anything the caller adds (epoch, optimizer hyper-parameters, RNG state).

Writes are atomic: the archive goes to a temporary file in the target's directory, is flushed
and fsynced, then ``os.replace``-d over the target (and the directory is fsynced).  A process
killed at any moment leaves either the previous checkpoint or the new one, never a mix; the
zip's CRC-32 per array and the name list in the metadata catch a file damaged later.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "load_state",
    "load_weights",
    "save_checkpoint",
    "save_state",
    "save_weights",
    "write_text",
]

FORMAT = "tinycnn-checkpoint"
VERSION = 1
_META = "__meta__"

# Test hook: called after the temporary file is complete and before it replaces the target
# (tests kill the process there to prove the previous checkpoint survives).
_before_replace = None


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, not a tinycnn checkpoint, or does not fit."""


# ------------------------------------------------------------------------------ raw format
def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # e.g. filesystems that refuse opening a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty file next to ``path`` for its next version: with ``path``'s permissions
    when it exists, else those a new file gets (``0o666`` less the umask), as ``np.save``'s."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
        except FileExistsError:
            continue
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        return fd, tmp
    raise FileExistsError(f"save_state: no free temporary name next to {path}")


def save_state(
    path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None
) -> Path:
    """Write ``arrays`` (name -> ndarray, numeric dtypes only) and the JSON-serialisable
    ``meta`` to ``path`` atomically; returns the path."""
    path = Path(path)
    clean: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or name == _META:
            raise ValueError(f"save_state: invalid array name {name!r}")
        a = np.asarray(value)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"save_state: {name} has dtype {a.dtype}; only numeric arrays")
        clean[name] = a
    doc = {"format": FORMAT, "version": VERSION, "names": list(clean), **(meta or {})}
    try:
        meta_bytes = json.dumps(doc, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save_state: meta must be JSON-serialisable ({exc})") from None
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(directory / path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{_META: np.frombuffer(meta_bytes, np.uint8)}, **clean)
            f.flush()
            os.fsync(f.fileno())
        if _before_replace is not None:
            _before_replace()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` as :func:`save_state` writes: atomically, so that a
    process killed meanwhile leaves the previous file whole."""
    path = Path(path)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _checked_file(path: str | os.PathLike) -> Path:
    """``path`` if it exists and starts as an .npz does (np.load would try to unpickle
    anything else it does not recognise)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        what = "is empty" if not head else f"starts with {head!r}"
        raise CheckpointError(
            f"{path}: not a tinycnn checkpoint (the file {what}, not with an .npz's zip header)"
        )
    return path


@contextlib.contextmanager
def _reading(path: Path):
    """Open ``path`` as an .npz; whatever goes wrong reading it becomes a CheckpointError."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            yield npz
    except CheckpointError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        KeyError,
        json.JSONDecodeError,
        UnicodeDecodeError,
    ) as exc:
        raise CheckpointError(
            f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    except (ValueError, RuntimeError) as exc:  # a pickled object array, a bad header, a zip
        # member that is encrypted or compressed in a way zipfile does not read
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None


def _meta(npz, path: Path) -> dict[str, Any]:
    """The ``__meta__`` entry of an open file: a tinycnn checkpoint of a version we read."""
    if _META not in npz.files:
        raise CheckpointError(f"{path}: not a tinycnn checkpoint (no {_META} entry)")
    raw = npz[_META]  # np.load gives the member's bytes when it is not an .npy
    if not isinstance(raw, np.ndarray):
        raise CheckpointError(f"{path}: corrupt checkpoint ({_META} is not an .npy array)")
    meta = json.loads(raw.tobytes().decode())
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinycnn checkpoint (format {meta!r:.80})")
    version, names = meta.get("version", 0), meta.get("names", [])
    if not isinstance(version, int) or not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise CheckpointError(
            f"{path}: corrupt checkpoint metadata (version {version!r:.40}, names {names!r:.80}; "
            "need an int and a list of array names)"
        )
    if version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta['version']} is newer than this "
            f"tinycnn reads ({VERSION}); upgrade tinycnn"
        )
    return meta


def load_state(path: str | os.PathLike) -> tuple[OrderedDict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_state`: ``(arrays in saved order, meta)``.

    Raises :class:`CheckpointError` for a truncated or corrupt file, a file that is not a
    tinycnn checkpoint, or one that holds pickled objects.
    """
    path = _checked_file(path)
    with _reading(path) as npz:
        meta = _meta(npz, path)
        names = meta.pop("names", [])
        present = set(npz.files) - {_META}
        if set(names) != present:
            lost = sorted(set(names) - present)[:5]
            raise CheckpointError(f"{path}: arrays missing from the file: {lost}")
        arrays = OrderedDict((name, _read_array(npz, name, path)) for name in names)
    return arrays, meta


def _read_array(npz, name: str, path: Path) -> np.ndarray:
    """``npz[name]``, once its header's shape and dtype are found to need exactly the bytes the
    member holds (a damaged header could otherwise ask for terabytes, or read too little)."""
    member = name + ".npy" if name + ".npy" in npz.zip.namelist() else name
    info = npz.zip.getinfo(member)
    with npz.zip.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is not None:
            shape, _, dtype = read_header(f)
            held = info.file_size - f.tell()
            needed = math.prod(shape) * dtype.itemsize
            if not dtype.hasobject and needed != held:
                raise CheckpointError(
                    f"{path}: corrupt checkpoint: array {name} declares shape {shape} of "
                    f"{dtype} ({needed:,} bytes) but the file holds {held:,} bytes of it"
                )
    return npz[name]


def load_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a :func:`save_state` file (a checkpoint's epoch and history, say),
    without reading its arrays; the same checks and errors as :func:`load_state`."""
    path = _checked_file(path)
    with _reading(path) as npz:
        meta = _meta(npz, path)
    meta.pop("names", None)
    return meta


# --------------------------------------------------------------------------------- weights
def _model_name(model) -> str | None:
    return getattr(model, "name", None)


def save_weights(model, path: str | os.PathLike) -> Path:
    """Save ``model.state_dict()`` (every weight, BN statistics included) atomically."""
    state = model.state_dict()
    meta = {"kind": "weights", "model": _model_name(model)}
    return save_state(path, state, meta)


def _check_fits(model, arrays: dict[str, np.ndarray], meta: dict, path) -> None:
    """Compare names, shapes and dtypes; explain the first mismatches, or a whole different
    architecture, before anything is changed."""
    own = model.state_dict()
    missing = [k for k in own if k not in arrays]
    unexpected = [k for k in arrays if k not in own]
    where = f"{path}"
    saved_from = meta.get("model")
    same_shapes = [a.shape for a in arrays.values()] == [a.shape for a in own.values()]
    if missing and unexpected and same_shapes:
        raise CheckpointError(
            f"{where}: the weight names differ but the shapes match in order (file: "
            f"{unexpected[:3]}, model: {missing[:3]}): auto-generated layer names depend on how "
            "many layers were built before; name the layers, or call "
            "tinycnn.graph.clear_session() before building the model"
        )
    if missing and unexpected and len(missing) + len(unexpected) > len(own) // 2:
        raise CheckpointError(
            f"{where}: this checkpoint is of another architecture (saved from model "
            f"{saved_from!r}, {len(arrays)} weights; this is model {_model_name(model)!r}, "
            f"{len(own)} weights); e.g. it lacks {missing[:3]} and has {unexpected[:3]}"
        )
    problems = []
    if missing:
        problems.append(f"missing from the file: {', '.join(missing[:10])}")
    if unexpected:
        problems.append(f"not in the model: {', '.join(unexpected[:10])}")
    for key, want in own.items():
        if key in arrays:
            got = arrays[key]
            if got.shape != want.shape:
                problems.append(f"{key}: shape {got.shape} in the file, {want.shape} in the model")
            elif got.dtype != want.dtype:
                problems.append(f"{key}: dtype {got.dtype} in the file, {want.dtype} in the model")
    if problems:
        raise CheckpointError(
            f"{where} does not fit model {_model_name(model)!r} (saved from {saved_from!r}):\n  "
            + "\n  ".join(problems)
        )


def load_weights(model, path: str | os.PathLike) -> dict[str, Any]:
    """Load weights saved by :func:`save_weights` (or the model part of a training checkpoint)
    into ``model``; every name, shape and dtype is checked first.  Returns the metadata."""
    arrays, meta = load_state(path)
    if meta.get("kind") == "training":
        arrays = OrderedDict(
            (k[len("model/") :], v) for k, v in arrays.items() if k.startswith("model/")
        )
    _check_fits(model, arrays, meta, path)
    model.load_state_dict(arrays)
    return meta


# ------------------------------------------------------------------------ training state
def save_checkpoint(
    path: str | os.PathLike,
    model,
    optimizer=None,
    epoch: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A training checkpoint: weights, optimizer state, the epoch count (epochs completed),
    and the global RNG state (dropout masks, initializers), so ``fit(..., initial_epoch=epoch)``
    continues exactly where the run stopped."""
    from . import random as tc_random

    arrays: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in model.state_dict().items():
        arrays["model/" + k] = v
    meta: dict[str, Any] = {
        "kind": "training",
        "model": _model_name(model),
        "epoch": int(epoch),
        "rng": tc_random.get_state(),
        **(extra or {}),
    }
    if optimizer is not None:
        sd = optimizer.state_dict()
        for k, v in sd["state"].items():
            arrays["optimizer/" + k] = v
        meta["optimizer"] = {"name": sd["optimizer"], "hyper": sd["hyper"]}
    return save_state(path, arrays, meta)


def load_checkpoint(
    path: str | os.PathLike, model, optimizer=None, restore_rng: bool = True
) -> dict[str, Any]:
    """Restore a :func:`save_checkpoint` file into ``model`` (and ``optimizer``); returns the
    metadata (``meta["epoch"]`` is the ``initial_epoch`` to resume from)."""
    from . import random as tc_random

    arrays, meta = load_state(path)
    if meta.get("kind") != "training":
        raise CheckpointError(f"{path}: holds weights only, not a training checkpoint")
    weights = OrderedDict((k[6:], v) for k, v in arrays.items() if k.startswith("model/"))
    _check_fits(model, weights, meta, path)
    if optimizer is not None:
        saved = meta.get("optimizer")
        if saved is None:
            raise CheckpointError(f"{path}: has no optimizer state")
        opt_state = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer/")}
        try:
            optimizer.load_state_dict(
                {"optimizer": saved["name"], "hyper": saved["hyper"], "state": opt_state}
            )
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    model.load_state_dict(weights)
    if restore_rng and "rng" in meta:
        tc_random.set_state(meta["rng"])
    return meta
