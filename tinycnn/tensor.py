"""The :class:`Tensor`: an array on a device, plus the link to the op that produced it."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import autograd
from ._lazy import LazyModule
from .device import check_device, get_backend

# the op modules import this one: bound on first use (see _lazy.py)
_arith = LazyModule("tinycnn.ops.arith", globals(), "_arith")
_shape_ops = LazyModule("tinycnn.ops.shape", globals(), "_shape_ops")
_reduce = LazyModule("tinycnn.ops.reduce", globals(), "_reduce")
_activation = LazyModule("tinycnn.ops.activation", globals(), "_activation")

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Tensor:
    """An n-dimensional array on ``device`` ("cpu" or "cuda") that can record gradients.

    Parameters
    ----------
    data : array-like
        NumPy array, nested lists, a scalar or a Tensor.  Float NumPy arrays keep their dtype
        (float32 or float64); Python floats become float32 and Python ints int64, as in
        PyTorch.  A writable NumPy array is shared; a Tensor is copied.
    requires_grad : bool
        Accumulate d(loss)/d(self) into ``.grad`` on ``backward``.
    device : str
        ``"cpu"`` or ``"cuda"``.
    dtype : numpy dtype, optional
        Cast to this dtype.
    """

    __array_priority__ = 1000  # make ``ndarray * tensor`` call Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, device: str = "cpu", dtype=None):
        device = check_device(device)
        if isinstance(data, Tensor):  # a new tensor, as torch.tensor(t): never a view of t
            data = data.numpy().copy() if data.device == "cpu" else data.numpy()
        array = _as_array(data, dtype)
        if requires_grad and array.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"tensor: only float32/float64 tensors can require grad, got dtype {array.dtype}"
            )
        self.device = device
        self.data = get_backend(device).from_numpy(array)
        self.requires_grad = bool(requires_grad)
        self.grad: Tensor | None = None
        self._ctx: autograd.Function | None = None

    @classmethod
    def _wrap(cls, data: Any, device: str, requires_grad: bool = False) -> Tensor:
        """Wrap a device array without copying (used by ops)."""
        t = cls.__new__(cls)
        t.device = device
        t.data = data
        t.requires_grad = requires_grad
        t.grad = None
        t._ctx = None
        return t

    # ----------------------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    @property
    def size(self) -> int:
        """Number of elements (NumPy's meaning of ``size``)."""
        return int(np.prod(self.data.shape, dtype=np.int64))

    def numel(self) -> int:
        return self.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def _backend(self):
        return get_backend(self.device)

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                f"bool: the truth value of a tensor of {self.size} elements (shape "
                f"{self.shape}) is ambiguous; use (t == u).sum() or a reduction first"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def _scalar(self, op: str):
        if self.size != 1:
            raise ValueError(
                f"{op}: only one-element tensors convert to a Python scalar, shape {self.shape}"
            )
        return self.item()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        body = np.array2string(self.numpy(), precision=4, threshold=20, edgeitems=2)
        return f"tensor({body}, dtype={self.dtype}{dev}{grad})"

    # ----------------------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (a copy from the GPU; the array itself on the CPU)."""
        return self._backend.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(t)``: the values, as :meth:`numpy` (the tape is not followed)."""
        array = self.numpy()
        if copy:
            array = array.copy()
        return array if dtype is None else array.astype(dtype, copy=False)

    def item(self) -> float:
        if self.size != 1:
            raise ValueError(
                f"item: only one-element tensors convert to a scalar, shape {self.shape}"
            )
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` (itself if it is already there); differentiable."""
        device = check_device(device)
        if device == self.device:
            return self
        return _shape_ops.ToDevice.apply(self, device=device)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def astype(self, dtype) -> Tensor:
        """A copy in ``dtype``; differentiable to float32/float64 only (an integer or bool
        result has no gradient, as in PyTorch)."""
        try:
            target = np.dtype(dtype)
        except TypeError as e:
            raise TypeError(f"astype: {dtype!r} is not a dtype: {e}") from None
        if target.kind not in "biuf" or target == np.float16:
            raise TypeError(
                f"astype: a tensor holds float32 or float64 values, or integers and bools, "
                f"got {target}"
            )
        target = target.newbyteorder("=")
        if target not in _FLOAT_DTYPES:
            with autograd.no_grad():
                return _shape_ops.Cast.apply(self, dtype=target)
        return _shape_ops.Cast.apply(self, dtype=target)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def detach(self) -> Tensor:
        """A tensor sharing this data, cut from the tape."""
        return Tensor._wrap(self.data, self.device, False)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"requires_grad_: dtype {self.dtype} cannot require grad")
        if not flag and not self.is_leaf:
            raise RuntimeError(
                "requires_grad_: only a leaf tensor's flag can be changed; this one is the "
                "output of an op (use .detach() for a copy cut from the tape)"
            )
        self.requires_grad = bool(flag)
        return self

    # ----------------------------------------------------------------------------- autograd
    def backward(self, grad: Any = None) -> None:
        """Accumulate gradients into the ``.grad`` of every leaf this tensor depends on."""
        if grad is not None and not isinstance(grad, Tensor):
            try:
                array = np.asarray(grad)
            except ValueError as e:  # ragged lists
                raise ValueError(f"backward: grad must be numbers: {_what(grad)}: {e}") from None
            if array.dtype.kind not in "biuf":
                raise TypeError(f"backward: grad must be numbers, got {array.dtype} {_what(grad)}")
            grad = Tensor(array.astype(self.dtype), device=self.device)
        autograd.backward(self, grad)

    def _accumulate_grad(self, g: Any) -> None:
        if tuple(g.shape) != self.shape:  # pragma: no cover - guarded by every op's backward
            raise RuntimeError(f"internal: gradient shape {tuple(g.shape)} != {self.shape}")
        if self.grad is None:
            self.grad = Tensor._wrap(g, self.device)
        else:
            self.grad = Tensor._wrap(self._backend.add(self.grad.data, g), self.device)

    def zero_grad(self) -> None:
        self.grad = None

    # ----------------------------------------------------------------------------- arithmetic
    def _operand(self, other: Any, op: str) -> Tensor:
        """``other`` as a tensor of this one's dtype and device (a Python number or an array
        is cast), unless the cast would change its value's kind: a float given to an integer
        or bool tensor, or a number to a bool tensor, raises instead of truncating."""
        if isinstance(other, Tensor):
            return other
        kind = self.dtype.kind
        try:
            value = np.asarray(other)
        except ValueError as e:  # ragged lists
            raise ValueError(f"{op}: cannot make an array of {_what(other)}: {e}") from None
        if value.dtype.kind not in "biuf":  # None (NaN as a float), a string, a complex
            raise TypeError(
                f"{op}: the other operand must be a tensor, a number or an array of numbers, "
                f"got {_what(other)} ({value.dtype})"
            )
        if kind in "iub" and (value.dtype.kind == "f" or (kind == "b" != value.dtype.kind)):
            article = "an" if str(self.dtype)[0] in "aeiou" else "a"
            raise TypeError(
                f"{op}: {article} {self.dtype} tensor with {other!r} ({value.dtype}) would be "
                f"cast to {self.dtype} and lose its value; cast the tensor first, e.g. "
                "t.astype(np.float32)"
            )
        try:
            value = np.asarray(other, dtype=self.dtype)
        except OverflowError as e:  # 300 with an int8 tensor
            raise OverflowError(f"{op}: {_what(other)} does not fit in {self.dtype}: {e}") from None
        if isinstance(other, numbers.Number):
            return Tensor._wrap(self._backend.from_numpy(value), self.device)
        return Tensor(value, device=self.device)

    def __add__(self, other):
        return _arith.Add.apply(self, self._operand(other, "add"))

    def __radd__(self, other):
        return _arith.Add.apply(self._operand(other, "add"), self)

    def __sub__(self, other):
        return _arith.Sub.apply(self, self._operand(other, "sub"))

    def __rsub__(self, other):
        return _arith.Sub.apply(self._operand(other, "sub"), self)

    def __mul__(self, other):
        return _arith.Mul.apply(self, self._operand(other, "mul"))

    def __rmul__(self, other):
        return _arith.Mul.apply(self._operand(other, "mul"), self)

    def __truediv__(self, other):
        return _arith.Div.apply(self, self._operand(other, "div"))

    def __rtruediv__(self, other):
        return _arith.Div.apply(self._operand(other, "div"), self)

    def __neg__(self):
        if self.dtype == np.bool_:
            raise TypeError("neg: a bool tensor has no negative; for logical not use t == False")
        return _arith.Neg.apply(self)

    def __pow__(self, exponent: float):
        if not isinstance(exponent, numbers.Real):
            raise TypeError("pow: the exponent must be a Python number")
        if self.dtype.kind != "f":
            raise TypeError(
                f"pow: needs a float tensor, got {self.dtype}; cast it first, e.g. "
                "t.astype(np.float64)"
            )
        return _arith.Pow.apply(self, exponent=float(exponent))

    def __matmul__(self, other):
        return _arith.MatMul.apply(self, self._operand(other, "matmul"))

    def __rmatmul__(self, other):
        return _arith.MatMul.apply(self._operand(other, "matmul"), self)

    def __getitem__(self, index):
        return _shape_ops.GetItem.apply(self, index=index)

    # comparisons return plain (non-differentiable) tensors
    def _compare(self, other, op: str) -> Tensor:
        if isinstance(other, Tensor):
            check_same_device(f"compare {op}", (self, other))
        other_data = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(self._backend.compare(self.data, other_data, op), self.device)

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, "eq")

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, "ne")

    def __lt__(self, other):
        return self._compare(other, "lt")

    def __le__(self, other):
        return self._compare(other, "le")

    def __gt__(self, other):
        return self._compare(other, "gt")

    def __ge__(self, other):
        return self._compare(other, "ge")

    __hash__ = object.__hash__

    # ----------------------------------------------------------------------------- methods
    def sum(self, dim=None, keepdim: bool = False) -> Tensor:
        return _reduce.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> Tensor:
        return _reduce.Mean.apply(self, dim=dim, keepdim=keepdim)

    def argmax(self, dim: int | None = None) -> Tensor:
        axis = None
        if dim is not None:
            if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
                raise TypeError(f"argmax: dim must be None or an int, got {dim!r}")
            nd = max(self.ndim, 1)  # a 0-d tensor takes 0 and -1, as in PyTorch
            if not -nd <= dim < nd:
                raise ValueError(f"argmax: dim {dim} is out of range for a {self.ndim}-d tensor")
            axis = int(dim) % nd if self.ndim else None
        if (self.shape[axis] if axis is not None else self.size) == 0:
            raise ValueError(
                f"argmax: the reduced {'tensor' if axis is None else f'dim {axis}'} is empty "
                f"(shape {self.shape}): an empty sequence has no argmax"
            )
        return Tensor._wrap(self._backend.argmax(self.data, axis), self.device)

    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _shape_ops.Reshape.apply(self, shape=_ints("reshape", "shape", shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _shape_ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return _shape_ops.transpose(self, dim0, dim1)

    def permute(self, *dims) -> Tensor:
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return _shape_ops.Permute.apply(self, dims=_ints("permute", "dims", dims))

    @property
    def T(self) -> Tensor:
        if self.ndim != 2:
            raise ValueError(f"T: expects a 2-d tensor, got shape {self.shape}")
        return self.transpose(0, 1)

    def exp(self) -> Tensor:
        return _arith.Exp.apply(self)

    def log(self) -> Tensor:
        return _arith.Log.apply(self)

    def relu(self) -> Tensor:
        return _activation.relu(self)

    def tanh(self) -> Tensor:
        return _activation.tanh(self)

    def sigmoid(self) -> Tensor:
        return _activation.sigmoid(self)


def _as_array(data: Any, dtype) -> np.ndarray:
    if isinstance(data, np.ndarray) and dtype is None:
        array = data
    else:
        try:
            array = np.asarray(data, dtype=None if dtype is None else np.dtype(dtype), order="C")
        except (ValueError, TypeError, OverflowError) as e:  # ragged lists, "abc" as float, ...
            raise type(e)(f"tensor: cannot make an array of {_what(data)}: {e}") from None
        if dtype is None and not isinstance(data, np.generic) and array.dtype == np.float64:
            array = array.astype(np.float32)  # Python floats: float32, PyTorch's default dtype
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"tensor: cannot hold {array.dtype} data ({_what(data)}); a tensor holds float32 or "
            "float64 values, or integers and bools (labels, masks)"
        )
    if not array.dtype.isnative:  # big-endian data (e.g. from a file): the kernels need native
        array = array.astype(array.dtype.newbyteorder("="))
    array = np.asarray(array, order="C")
    # the ops update some tensors in place (parameters, running statistics): own a read-only
    # array's values (np.frombuffer, a read-only memmap) instead of failing inside a kernel
    return array if array.flags.writeable else array.copy()


def _ints(op: str, name: str, values: Sequence[Any]) -> tuple[int, ...]:
    """``values`` as ints; a float (``2.5``, also ``2.0``) raises instead of being truncated."""
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in values):
        raise TypeError(f"{op}: {name} must be ints, got {tuple(values)!r}")
    return tuple(int(v) for v in values)


def _what(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 40 else text[:37] + "..."


def tensor(data: Any, requires_grad: bool = False, device: str = "cpu", dtype=None) -> Tensor:
    """Create a :class:`Tensor` (see its docstring)."""
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def check_same_device(op: str, tensors: Iterable[Tensor]) -> str:
    """The common device of ``tensors``; a clear error if they differ."""
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(
            f"{op}: all tensors must be on one device, got {sorted(devices)}; "
            "move them with .to(device) first"
        )
    return devices.pop() if devices else "cpu"


def check_same_float_dtype(op: str, names: Sequence[str], tensors: Sequence[Tensor | None]) -> None:
    """Raise TypeError unless every given tensor has the same float dtype."""
    present = [(n, t) for n, t in zip(names, tensors) if t is not None]
    for name, t in present:
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{op}: {name} must be float32 or float64, got {t.dtype}")
    dtypes = {t.dtype for _, t in present}
    if len(dtypes) > 1:
        got = ", ".join(f"{n}={t.dtype}" for n, t in present)
        raise TypeError(f"{op}: all tensors must have one dtype, got {got}; cast with .astype()")


def zeros(*shape, dtype=np.float32, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def ones(*shape, dtype=np.float32, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad, device=device)
