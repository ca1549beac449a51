"""Property tests: for random hyper-parameters, the output shape of conv2d / max_pool2d /
avg_pool2d equals the seed's formula ``floor((W - F + 2P)/S) + 1`` (``ceil`` with ceil_mode,
effective ``F = d*(k-1) + 1``), and illegal ones raise ValueError.  The formula is written out
here again on purpose, independent of ``tinycnn.ops._validate``."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tinycnn as tc
import tinycnn.functional as F

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def formula(size, kernel, padding, stride, dilation=1, ceil_mode=False):
    eff = dilation * (kernel - 1) + 1
    span = size - eff + 2 * padding
    if not ceil_mode:
        return span // stride + 1  # floor: a negative span gives < 1
    # ceil_mode accepts a span down to -(stride - 1), as PyTorch: a window hanging past the
    # padded edge still counts if it starts inside the input or the left padding
    out = math.ceil(span / stride) + 1
    if out > 1 and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _x(n, c, h, w):
    return tc.tensor(np.zeros((n, c, h, w), dtype=np.float32))


@st.composite
def conv_params(draw):
    groups = draw(st.integers(1, 3))
    return dict(
        n=draw(st.integers(1, 2)),
        groups=groups,
        cin=groups * draw(st.integers(1, 2)),
        cout=groups * draw(st.integers(1, 2)),
        h=draw(st.integers(1, 12)),
        w=draw(st.integers(1, 12)),
        k=(draw(st.integers(1, 5)), draw(st.integers(1, 5))),
        s=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        p=(draw(st.integers(0, 3)), draw(st.integers(0, 3))),
        d=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
    )


@SETTINGS
@given(conv_params())
def test_conv2d_shape_matches_formula(q):
    x = _x(q["n"], q["cin"], q["h"], q["w"])
    w = tc.tensor(np.zeros((q["cout"], q["cin"] // q["groups"], *q["k"]), dtype=np.float32))
    oh = formula(q["h"], q["k"][0], q["p"][0], q["s"][0], q["d"][0])
    ow = formula(q["w"], q["k"][1], q["p"][1], q["s"][1], q["d"][1])
    call = dict(stride=q["s"], padding=q["p"], dilation=q["d"], groups=q["groups"])
    if oh < 1 or ow < 1:
        with pytest.raises(ValueError, match="conv2d: output (height|width)"):
            F.conv2d(x, w, **call)
        return
    assert F.conv2d(x, w, **call).shape == (q["n"], q["cout"], oh, ow)
    if q["s"] == (1, 1):  # "same" keeps the size whatever the kernel and dilation
        same = F.conv2d(x, w, padding="same", dilation=q["d"], groups=q["groups"])
        assert same.shape == (q["n"], q["cout"], q["h"], q["w"])


@SETTINGS
@given(conv_params(), st.sampled_from(["stride", "dilation"]), st.integers(-2, 0))
def test_conv2d_illegal_hyperparameters_raise(q, name, bad):
    x = _x(1, q["cin"], q["h"], q["w"])
    w = tc.tensor(np.zeros((q["cout"], q["cin"] // q["groups"], *q["k"]), dtype=np.float32))
    with pytest.raises(ValueError, match=f"conv2d: {name}"):
        F.conv2d(x, w, groups=q["groups"], **{name: bad})


@st.composite
def pool_params(draw, dilation=True):
    k = draw(st.integers(1, 5))
    return dict(
        h=draw(st.integers(1, 12)),
        w=draw(st.integers(1, 12)),
        k=k,
        s=draw(st.one_of(st.none(), st.integers(1, 4))),
        p=draw(st.integers(0, k // 2)),  # PyTorch: padding <= kernel_size / 2
        d=draw(st.integers(1, 3)) if dilation else 1,
        ceil=draw(st.booleans()),
    )


def _windows_see_input(size, out, q, stride):
    """Every window along one axis has at least one tap inside the input."""
    return all(
        any(0 <= o * stride - q["p"] + i * q["d"] < size for i in range(q["k"])) for o in range(out)
    )


@SETTINGS
@given(pool_params())
def test_max_pool2d_shape_matches_formula(q):
    x = _x(1, 2, q["h"], q["w"])
    stride = q["k"] if q["s"] is None else q["s"]
    oh = formula(q["h"], q["k"], q["p"], stride, q["d"], q["ceil"])
    ow = formula(q["w"], q["k"], q["p"], stride, q["d"], q["ceil"])
    args = (x, q["k"], q["s"], q["p"], q["d"], q["ceil"])
    if oh < 1 or ow < 1:
        with pytest.raises(ValueError):
            F.max_pool2d(*args)
        return
    if not (
        _windows_see_input(q["h"], oh, q, stride) and _windows_see_input(q["w"], ow, q, stride)
    ):
        # tinycnn's documented deviation: PyTorch returns -inf here and corrupts its backward
        with pytest.raises(ValueError, match="holds only padding"):
            F.max_pool2d(*args)
        return
    assert F.max_pool2d(*args).shape == (1, 2, oh, ow)


@SETTINGS
@given(pool_params(dilation=False))
def test_avg_pool2d_shape_matches_formula(q):
    x = _x(1, 2, q["h"], q["w"])
    stride = q["k"] if q["s"] is None else q["s"]
    oh = formula(q["h"], q["k"], q["p"], stride, 1, q["ceil"])
    ow = formula(q["w"], q["k"], q["p"], stride, 1, q["ceil"])
    args = (x, q["k"], q["s"], q["p"], q["ceil"])
    if oh < 1 or ow < 1:
        with pytest.raises(ValueError):
            F.avg_pool2d(*args)
        return
    assert F.avg_pool2d(*args).shape == (1, 2, oh, ow)


@SETTINGS
@given(pool_params(dilation=False), st.sampled_from(["max", "avg"]), st.integers(1, 3))
def test_pool_padding_over_half_kernel_raises(q, kind, extra):
    """PyTorch's rule: padding must be at most half the kernel size."""
    assume(q["h"] >= q["k"] and q["w"] >= q["k"])
    x = _x(1, 2, q["h"], q["w"])
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    with pytest.raises(ValueError):
        fn(x, q["k"], q["s"], q["k"] // 2 + extra)
