"""The shape and data-movement half of the CUDA array back end (re-exported by ``array.py``):
reshape, transpose, broadcast_to, concatenate, slice_axis, indexing, take and matmul."""

from __future__ import annotations

import math

import numpy as np

from . import _elementwise as E
from ._base import (
    _FLOAT,
    _broadcast_shape,
    _check_dtype,
    _flat,
    _gather,
    _is_device,
    _launch,
    _layout,
    _prod,
    _shape,
    contiguous,
    empty,
    from_numpy,
    zeros,
)
from ._cuda import flat_buffer, host_c, is_dense, permuted_view, to_host
from ._gemm import TX, TY, gemm
from .config import GEMM_BM, GEMM_BN, MAX_BLOCKS


def reshape(a, shape):
    return contiguous(a).reshape(tuple(int(s) for s in shape))


def transpose(a, axes):
    """A view: the GEMM and the gather kernels read it in place; ``contiguous`` copies it."""
    axes = tuple(int(ax) % max(a.ndim, 1) for ax in axes)
    if not is_dense(a):
        a = contiguous(a)
    return permuted_view(a, axes)


def broadcast_to(a, shape):
    shape = _broadcast_shape("broadcast_to", a.shape, _shape(shape))
    flat, strides = _flat(a)
    lead = len(shape) - a.ndim
    st = (0,) * lead + tuple(0 if n == 1 else s for n, s in zip(a.shape, strides))
    return _gather(flat, shape, st)


def _slab(src, dst, outer, src_mid, dst_mid, inner, src_off, dst_off, mid) -> None:
    args = (outer, src_mid, dst_mid, inner, src_off, dst_off, mid)
    _launch(E.slab_copy, outer * mid * inner, flat_buffer(src), flat_buffer(dst), *args)


def concatenate(arrays, axis: int):
    arrays = [contiguous(a) for a in arrays]
    ref = arrays[0]
    axis = int(axis) % ref.ndim
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) > 1:
        raise TypeError(f"concatenate: arrays have different dtypes {sorted(map(str, dtypes))}")
    total = sum(int(a.shape[axis]) for a in arrays)
    out_shape = tuple(ref.shape[:axis]) + (total,) + tuple(ref.shape[axis + 1 :])
    out = empty(out_shape, ref.dtype)
    outer, inner = _prod(out_shape[:axis]), _prod(out_shape[axis + 1 :])
    offset = 0
    for a in arrays:
        mid = int(a.shape[axis])
        _slab(a, out, outer, mid, total, inner, 0, offset, mid)
        offset += mid
    return out


def slice_axis(a, axis: int, start: int, stop: int):
    a = contiguous(a)
    axis = int(axis) % a.ndim
    n = int(a.shape[axis])
    start, stop, _ = slice(start, stop).indices(n)
    mid = max(0, stop - start)
    shape = tuple(a.shape)
    out = empty(shape[:axis] + (mid,) + shape[axis + 1 :], a.dtype)
    _slab(a, out, _prod(shape[:axis]), n, mid, _prod(shape[axis + 1 :]), start, 0, mid)
    return out


# ------------------------------------------------------------------------------ indexing
def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if item is None or item is Ellipsis or isinstance(item, slice):
            continue
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            continue
        return False
    return True


def _basic_view(shape, strides, index):
    """(shape, element strides, element offset) of ``array[index]`` for a basic index.

    NumPy does the index arithmetic (bounds errors included) on a zero-size-stride probe that
    is never read, so the rules are exactly NumPy's."""
    base = np.zeros(1, dtype=np.int64)
    probe = np.lib.stride_tricks.as_strided(base, shape, tuple(8 * s for s in strides))
    items = index if isinstance(index, tuple) else (index,)
    if not any(item is Ellipsis for item in items):
        items = items + (Ellipsis,)  # a 0-d view, never a NumPy scalar
    view = probe[items]
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 8
    return tuple(view.shape), tuple(s // 8 for s in view.strides), int(offset)


def getitem(a, index):
    if not _is_basic(index):  # advanced (integer-array or mask) indexing: on the host
        return from_numpy(host_c(to_host(a)[index]))
    flat, strides = _flat(a)
    shape, vstrides, offset = _basic_view(tuple(a.shape), strides, index)
    return _gather(flat, shape, vstrides, offset)


def getitem_backward(grad, index, shape):
    shape = _shape(shape)
    if not _is_basic(index):
        out = np.zeros(shape, dtype=grad.dtype)
        np.add.at(out, index, to_host(grad))
        return from_numpy(out)
    out = zeros(shape, grad.dtype)
    c_strides = tuple(int(np.prod(shape[d + 1 :], dtype=np.int64)) for d in range(len(shape)))
    vshape, vstrides, offset = _basic_view(shape, c_strides, index)
    grad = contiguous(grad)
    if grad.size:
        nd_shape, (st,) = _layout(vshape, [(vshape, vstrides)])
        args = (flat_buffer(grad), flat_buffer(out), nd_shape, st, offset)
        _launch(E.scatter, grad.size, *args)
    return out


def _indices(op: str, indices, size: int):
    host = to_host(indices) if _is_device(indices) else np.asarray(indices)
    if host.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got {host.dtype}")
    host = host_c(host.astype(np.int64).reshape(-1))
    if host.size and (host.min() < -size or host.max() >= size):
        raise IndexError(f"{op}: index out of range for an axis of size {size}")
    return from_numpy(host)


def take(a, indices, axis: int):
    a = contiguous(a)
    axis = int(axis) % a.ndim
    n = int(a.shape[axis])
    idx_shape = tuple(np.shape(indices)) if not _is_device(indices) else tuple(indices.shape)
    idx = _indices("take", indices, n)
    shape = tuple(a.shape)
    out = empty(shape[:axis] + idx_shape + shape[axis + 1 :], a.dtype)
    inner = _prod(shape[axis + 1 :])
    _launch(E.take, out.size, flat_buffer(a), idx, flat_buffer(out), n, idx.size, inner)
    return out


def take_backward(grad, indices, axis: int, size: int):
    """Gradient of ``take(a, indices, axis)`` w.r.t. ``a`` (repeated indices add up)."""
    grad = contiguous(grad)
    axis = int(axis) % grad.ndim
    idx_ndim = len(np.shape(indices)) if not _is_device(indices) else indices.ndim
    idx = _indices("take_backward", indices, int(size))
    shape = tuple(grad.shape)
    tail = shape[axis + idx_ndim :]
    out = zeros(shape[:axis] + (int(size),) + tail, grad.dtype)
    _launch(
        E.take_backward,
        grad.size,
        flat_buffer(grad),
        idx,
        flat_buffer(out),
        int(size),
        idx.size,
        _prod(tail),
    )
    return out


# ------------------------------------------------------------------------------ matmul
def _batch_geometry(a, b, batch):
    """Flat buffers and (outer, inner, row, col) element strides of ``a`` and ``b`` read as
    stacks over ``batch`` (broadcast dims get stride 0), plus the inner batch size.  Batch dims
    that do not merge into two levels are materialised first (a copy, rare)."""
    fa, sta = _flat(a)
    fb, stb = _flat(b)
    ops = [(tuple(a.shape[:-2]), sta[:-2]), (tuple(b.shape[:-2]), stb[:-2])]
    shape, (ba, bb) = _layout(batch, ops) if batch else ((), [(), ()])
    dims = [d for d, n in enumerate(shape) if n != 1]
    if len(dims) > 2:
        a = broadcast_to(a, batch + tuple(a.shape[-2:]))
        b = broadcast_to(b, batch + tuple(b.shape[-2:]))
        return _batch_geometry(a, b, batch)
    sizes = [shape[d] for d in dims]
    outer_a = [ba[d] for d in dims]
    outer_b = [bb[d] for d in dims]
    while len(sizes) < 2:
        sizes.insert(0, 1)
        outer_a.insert(0, 0)
        outer_b.insert(0, 0)
    sa = (outer_a[0], outer_a[1], sta[-2], sta[-1])
    sb = (outer_b[0], outer_b[1], stb[-2], stb[-1])
    return fa, fb, tuple(int(v) for v in sa), tuple(int(v) for v in sb), int(sizes[1])


def gemm_into(a, b, out) -> None:
    """``out[...] = a @ b`` for 2-d matrices stacked over broadcast batch dims; ``out`` is
    C-contiguous of the broadcast shape.  Operands may be transposed views (read in place)."""
    m, k = int(a.shape[-2]), int(a.shape[-1])
    n = int(b.shape[-1])
    batch = tuple(int(s) for s in out.shape[:-2])
    nb = _prod(batch)
    if out.size == 0:
        return
    fa, fb, sa, sb, inner = _batch_geometry(a, b, batch)
    gemm[gemm_grid(m, n, nb), (TX, TY)](fa, fb, flat_buffer(out), nb, inner, m, n, k, sa, sb)


def gemm_grid(m: int, n: int, batch: int) -> tuple[int, int, int]:
    """The GEMM's grid for a ``batch`` of (m, n) results: column tiles along x (up to 2**31 - 1
    blocks), row tiles and the batch along y and z (65535 at most each; the kernel strides)."""
    rows = min(math.ceil(m / GEMM_BM), MAX_BLOCKS)
    return math.ceil(n / GEMM_BN), rows, min(batch, MAX_BLOCKS)


def matmul(a, b):
    """NumPy's ``matmul`` (1-d operands promoted, batch dims broadcast) on the tiled GEMM."""
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: operands have different dtypes ({a.dtype} and {b.dtype})")
    _check_dtype(a.dtype, _FLOAT, "matmul")
    a1, b1 = a.ndim == 1, b.ndim == 1
    if a1:
        a = reshape(a, (1, a.shape[0]))
    if b1:
        b = reshape(b, (b.shape[0], 1))
    (m, k), (k2, n) = tuple(a.shape[-2:]), tuple(b.shape[-2:])
    if k != k2:
        raise ValueError(f"matmul: inner dimensions differ: {tuple(a.shape)} @ {tuple(b.shape)}")
    batch = _broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
    out = empty(batch + (m, n), a.dtype)
    gemm_into(a, b, out)
    shape = tuple(out.shape)
    if a1:
        shape = shape[:-2] + shape[-1:]
    if b1:
        shape = shape[:-1]
    return out.reshape(shape)
