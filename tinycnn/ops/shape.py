"""Shape and data movement: reshape, flatten, transpose/permute, cat, pad, indexing,
device transfer and dtype casts."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from ..autograd import Function
from ..device import get_backend
from ..tensor import Tensor, check_same_device
from ._validate import tensor_arg


class Reshape(Function):
    def forward(self, x, shape):
        self.x_shape = tuple(x.shape)
        size = int(np.prod(self.x_shape, dtype=np.int64))
        known = [s for s in shape if s != -1]
        if shape.count(-1) > 1 or any(s < -1 for s in shape):
            raise ValueError(f"reshape: invalid shape {shape} (at most one -1, no other negatives)")
        prod = int(np.prod(known, dtype=np.int64)) if known else 1
        if (-1 in shape and (prod == 0 or size % prod)) or (-1 not in shape and prod != size):
            raise ValueError(f"reshape: cannot reshape {self.x_shape} ({size} elements) to {shape}")
        return get_backend(self.device).reshape(x, shape)

    def backward(self, g):
        return (get_backend(self.device).reshape(g, self.x_shape),)


def _axis(op: str, name: str, dim, ndim: int) -> int:
    """``dim`` as an axis in ``[0, ndim)`` (negative counts from the end); a 0-d tensor takes
    0 and -1, as in PyTorch."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {dim!r}")
    nd = max(ndim, 1)
    if not -nd <= dim < nd:
        raise ValueError(
            f"{op}: {name} {dim} is out of range for a {ndim}-d tensor (expected -{nd} <= "
            f"{name} < {nd})"
        )
    return int(dim) % nd


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one (``x.flatten(1)`` keeps the batch)."""
    s = _axis("flatten", "start_dim", start_dim, x.ndim)
    e = _axis("flatten", "end_dim", end_dim, x.ndim)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape
    merged = int(np.prod(shape[s : e + 1], dtype=np.int64))
    return Reshape.apply(x, shape=tuple(shape[:s]) + (merged,) + tuple(shape[e + 1 :]))


class Permute(Function):
    def forward(self, x, dims):
        axes = [_axis("permute", "dim", d, x.ndim) for d in dims] if x.ndim else list(dims)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of a {x.ndim}-d tensor")
        self.dims = tuple(axes)
        B = get_backend(self.device)
        return B.contiguous(B.transpose(x, self.dims))

    def backward(self, g):
        inverse = tuple(int(i) for i in np.argsort(self.dims))
        B = get_backend(self.device)
        return (B.contiguous(B.transpose(g, inverse)),)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    dim0 = _axis("transpose", "dim0", dim0, x.ndim)
    dim1 = _axis("transpose", "dim1", dim1, x.ndim)
    if x.ndim == 0:
        return Permute.apply(x, dims=())
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(x, dims=tuple(dims))


class Cat(Function):
    def forward(self, *arrays, dim: int):
        self.sizes = [a.shape[dim] for a in arrays]
        self.dim = dim
        return get_backend(self.device).concatenate(arrays, dim)

    def backward(self, g):
        B = get_backend(self.device)
        grads, start = [], 0
        for size, needed in zip(self.sizes, self.needs_input_grad):
            grads.append(B.slice_axis(g, self.dim, start, start + size) if needed else None)
            start += size
        return tuple(grads)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along ``dim``; every other dimension must agree."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expects a non-empty list of tensors")
    for i, t in enumerate(tensors):
        tensor_arg("cat", f"tensors[{i}]", t)
    check_same_device("cat", tensors)
    ref = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"cat: tensors[{i}] is 0-d; a 0-d tensor cannot be concatenated")
    d = _axis("cat", "dim", dim, ref.ndim)
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != ref.ndim:
            raise ValueError(f"cat: tensors[{i}] is {t.ndim}-d, tensors[0] is {ref.ndim}-d")
        other = [s for j, s in enumerate(t.shape) if j != d]
        if other != [s for j, s in enumerate(ref.shape) if j != d]:
            raise ValueError(
                f"cat: shapes must agree except in dim {dim}: tensors[0] {ref.shape}, "
                f"tensors[{i}] {t.shape}"
            )
        if t.dtype != ref.dtype:
            raise TypeError(f"cat: tensors[{i}] is {t.dtype}, tensors[0] is {ref.dtype}")
    return Cat.apply(*tensors, dim=d)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_indices(mode: str, size: int, before: int, after: int) -> np.ndarray:
    """Source index of every padded position along one axis (for non-constant modes)."""
    idx = np.arange(-before, size + after)
    if mode == "reflect":
        period = 2 * (size - 1)
        idx = np.abs(idx) % period if period else np.zeros_like(idx)
        idx = np.where(idx >= size, period - idx, idx)
    elif mode == "replicate":
        idx = np.clip(idx, 0, size - 1)
    else:  # circular
        idx = idx % size
    return idx.astype(np.int64)


class Pad(Function):
    def forward(self, x, pads, mode, value):
        B = get_backend(self.device)
        self.x_shape, self.pads, self.mode = tuple(x.shape), pads, mode
        if mode == "constant":
            out_shape = list(x.shape)
            index = [slice(None)] * x.ndim
            for axis, (lo, hi) in pads.items():
                out_shape[axis] += lo + hi
                index[axis] = slice(lo, lo + x.shape[axis])
            self.index = tuple(index)
            out = B.full(tuple(out_shape), value, x.dtype)
            out[self.index] = x
            return out
        self.indices = {a: _pad_indices(mode, x.shape[a], lo, hi) for a, (lo, hi) in pads.items()}
        for axis, idx in self.indices.items():
            x = B.take(x, idx, axis)
        return B.contiguous(x)

    def backward(self, g):
        B = get_backend(self.device)
        if self.mode == "constant":
            return (B.getitem(g, self.index),)
        for axis in sorted(self.indices, reverse=True):
            g = B.take_backward(g, self.indices[axis], axis, self.x_shape[axis])
        return (g,)


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """PyTorch's ``F.pad``: ``pad`` lists (left, right) pairs from the last dimension backwards,
    e.g. ``(left, right, top, bottom)`` for NCHW.  Modes: constant, reflect, replicate, circular."""
    tensor_arg("pad", "input", x)
    if not isinstance(pad, (tuple, list)) or any(
        isinstance(p, bool) or not isinstance(p, numbers.Integral) for p in pad
    ):
        raise TypeError(f"pad: pad must be a tuple of ints, got {pad!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: pad must hold (before, after) pairs for at most {x.ndim} dims")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    if mode != "constant" and any(p < 0 for p in pad):
        raise ValueError(
            f"pad: negative padding {pad} (cropping) is supported in constant mode only, got "
            f"mode {mode!r}"
        )
    crop = tuple(max(-p, 0) for p in pad)  # negative padding crops, as in PyTorch
    pad = tuple(max(p, 0) for p in pad)
    pads = {}
    for i in range(len(pad) // 2):
        axis = x.ndim - 1 - i
        lo, hi = pad[2 * i], pad[2 * i + 1]
        size = x.shape[axis]
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(
                f"pad: reflect padding ({lo}, {hi}) must be < the input size {size} on dim {axis}"
            )
        if mode == "replicate" and size == 0 and (lo or hi):
            raise ValueError(
                f"pad: replicate padding ({lo}, {hi}) needs a non-empty dim {axis}, got size 0"
            )
        if mode == "circular" and (lo > size or hi > size):
            raise ValueError(
                f"pad: circular padding ({lo}, {hi}) must be <= the input size {size} on dim {axis}"
            )
        if lo or hi:
            pads[axis] = (lo, hi)
    if pads:
        x = Pad.apply(x, pads=pads, mode=mode, value=float(value))
    if not any(crop):
        return x
    index = [slice(None)] * x.ndim
    for i in range(len(crop) // 2):
        axis, size = x.ndim - 1 - i, x.shape[x.ndim - 1 - i]
        lo, hi = crop[2 * i], crop[2 * i + 1]
        if lo + hi > size:
            raise ValueError(
                f"pad: negative padding (-{lo}, -{hi}) on dim {axis} crops {lo + hi} elements "
                f"of {size}"
            )
        index[axis] = slice(lo, size - hi)
    return x[tuple(index)]


class GetItem(Function):
    def forward(self, x, index):
        if isinstance(index, Tensor):
            index = index.numpy()
        elif isinstance(index, tuple):  # x[0, mask] with a tensor inside the tuple
            index = tuple(i.numpy() if isinstance(i, Tensor) else i for i in index)
        self.index, self.x_shape = index, tuple(x.shape)
        try:
            return get_backend(self.device).getitem(x, index)
        except IndexError as e:  # NumPy's rule, named: out of bounds, a float index, ...
            raise IndexError(f"getitem: {e} (indexing a tensor of shape {self.x_shape})") from None

    def backward(self, g):
        return (get_backend(self.device).getitem_backward(g, self.index, self.x_shape),)


class ToDevice(Function):
    def forward(self, x, device):
        from ..device import get_backend as backend_of

        self.source = self.device
        host = backend_of(self.source).to_numpy(x)
        self.device = device  # the output lives on the target device
        return backend_of(device).from_numpy(np.asarray(host, order="C"))

    def backward(self, g):
        host = get_backend(self.device).to_numpy(g)
        return (get_backend(self.source).from_numpy(np.asarray(host, order="C")),)


class Cast(Function):
    def forward(self, x, dtype):
        self.source_dtype = x.dtype
        return get_backend(self.device).astype(x, dtype)

    def backward(self, g):
        return (get_backend(self.device).astype(g, self.source_dtype),)
