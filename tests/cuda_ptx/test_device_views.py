"""The views the CUDA back end builds on numba-cuda's real ``DeviceNDArray``, without a GPU.

Under the simulator ``permuted_view`` and ``flat_buffer`` are NumPy's ``transpose`` and
``ravel``; on a GPU they build ``DeviceNDArray`` objects from strides and a device pointer.
Here those objects are built over device memory from a stand-in driver (the allocator's
``plugin`` fixture): shapes, strides, contiguity flags and device pointers must be NumPy's,
and what the ops rely on numba for (``reshape`` of a contiguous array, refusing other
reshapes) must hold.  No kernel runs and no byte is read.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tinycnn.ops.cuda import _cuda

from .test_memory_pool import plugin  # noqa: F401 - the fixture: device memory, no GPU

SHAPES = [(2, 3, 4), (1, 5, 1, 2), (3, 1), (4,)]


def _device_array(manager, shape, dtype=np.float32):
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    dtype = np.dtype(dtype)
    host = np.empty(shape, dtype)
    gpu = manager.memalloc(max(host.nbytes, 1))
    return DeviceNDArray(shape, host.strides, dtype, gpu_data=gpu), host


def _pointer(a) -> int:
    return int(a.device_ctypes_pointer.value or 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_permuted_views_have_numpys_strides_flags_and_the_same_memory(plugin, shape):  # noqa: F811
    manager, _ = plugin
    a, host = _device_array(manager, shape)
    for axes in itertools.permutations(range(len(shape))):
        view, ref = _cuda.permuted_view(a, axes), host.transpose(axes)
        assert tuple(view.shape) == ref.shape and tuple(view.strides) == ref.strides, axes
        assert view.is_c_contiguous() == ref.flags.c_contiguous, axes
        assert view.is_f_contiguous() == ref.flags.f_contiguous, axes
        assert _pointer(view) == _pointer(a)
        assert _cuda.is_dense(view) and _cuda.elem_strides(view) == tuple(
            s // 4 for s in ref.strides
        )
        flat = _cuda.flat_buffer(view)  # the memory in address order, shared
        assert tuple(flat.shape) == (host.size,) and tuple(flat.strides) == (4,)
        assert _pointer(flat) == _pointer(a) and flat.is_c_contiguous()
        back = _cuda.permuted_view(view, tuple(np.argsort(axes)))  # a view of a view
        assert tuple(back.strides) == host.strides and back.is_c_contiguous()
        assert _pointer(back.reshape((host.size,))) == _pointer(a)


def test_numba_reshapes_contiguous_arrays_in_place_and_refuses_transposed_ones(plugin):  # noqa: F811
    """``array_shape.reshape`` makes its input contiguous first because numba's reshape of a
    transposed 3-d view raises (the simulator's patched reshape raises the same)."""
    manager, _ = plugin
    a, _ = _device_array(manager, (2, 3, 4), np.float64)
    r = a.reshape((6, 4))
    assert tuple(r.strides) == (32, 8) and _pointer(r) == _pointer(a)
    with pytest.raises(NotImplementedError):
        _cuda.permuted_view(a, (2, 0, 1)).reshape((24,))


def test_a_broadcast_like_view_is_not_dense(plugin):  # noqa: F811
    """A stride-0 axis (what ``broadcast_to``'s gather never builds as a view, but a user's
    array could be) is not dense, so ``to_host`` and ``transpose`` copy it instead."""
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    manager, _ = plugin
    gpu = manager.memalloc(16)
    view = DeviceNDArray((3, 4), (0, 4), np.float32, gpu_data=gpu)
    assert not _cuda.is_dense(view)
