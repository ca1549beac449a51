"""conv2d on "cuda" (simulator) equal to "cpu", forward and all three gradients, through each
of the three algorithms (1x1 GEMM, direct incl. depthwise, im2col + GEMM in both layouts)."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn.functional as F
from tinycnn.ops import conv as conv_op
from tinycnn.ops.conv import Conv2d
from tinycnn.ops.cuda import conv as cuda_conv

from .helpers import rand, same_on_both

RNG = np.random.default_rng(5)
TOL = {"atol": 1e-10, "rtol": 1e-9}

CASES = [  # x shape, w shape, stride, padding (t, b, l, r), dilation, groups
    ((2, 4, 5, 6), (6, 2, 3, 2), (2, 1), (1, 0, 1, 1), (1, 2), 2),
    ((1, 3, 6, 5), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((2, 3, 7, 7), (2, 3, 2, 3), (3, 2), (0, 1, 2, 0), (2, 1), 1),
]


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CASES)
def test_direct_and_im2col(algorithm, xs, ws, stride, padding, dilation, groups):
    def fn(x, w, b):
        return Conv2d.apply(
            x,
            w,
            b,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            algorithm=algorithm,
        )

    same_on_both(fn, [rand(RNG, *xs), rand(RNG, *ws), rand(RNG, ws[0])], **TOL)


@pytest.mark.parametrize("groups,per_chunk", [(1, 1), (2, 2)])
def test_im2col_per_image_layout_and_chunks(monkeypatch, groups, per_chunk):
    """One column matrix per image, in chunks of 1 or 2 of the 3 images (the weight gradient
    sums the images of a chunk, then accumulates over the chunks)."""
    monkeypatch.setattr(cuda_conv, "PER_IMAGE_MIN", 1)
    monkeypatch.setattr(cuda_conv, "COLS_BYTES", per_chunk * 4 * 9 * 4 * 4 * 8)
    xs, ws = (3, 4, 4, 4), (4, 4 // groups, 3, 3)

    def fn(x, w, b):
        return Conv2d.apply(
            x,
            w,
            b,
            stride=(1, 1),
            padding=(1, 1, 1, 1),
            dilation=(1, 1),
            groups=groups,
            algorithm="im2col",
        )

    same_on_both(fn, [rand(RNG, *xs), rand(RNG, *ws), rand(RNG, 4)], **TOL)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("per_image", [False, True])
def test_gemm1x1(groups, per_image, monkeypatch):
    """Both weight-gradient paths: transposed to (C, N*H*W), or one GEMM per image summed
    over chunks of one image."""
    if per_image:
        monkeypatch.setattr(conv_op, "PER_IMAGE_WEIGHT_MIN", 1)
        monkeypatch.setattr(conv_op, "PARTS_BYTES", 1)
    same_on_both(
        lambda x, w, b: F.conv2d(x, w, b, groups=groups),
        [rand(RNG, 2, 4, 3, 3), rand(RNG, 6, 4 // groups, 1, 1), rand(RNG, 6)],
        **TOL,
    )


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise(multiplier):
    c = 3
    same_on_both(
        lambda x, w: F.conv2d(x, w, stride=2, padding=1, dilation=(1, 2), groups=c),
        [rand(RNG, 2, c, 6, 7), rand(RNG, c * multiplier, 1, 3, 3)],
        **TOL,
    )


def test_padding_modes_and_same_float32():
    x, w = rand(RNG, 1, 2, 5, 5, dtype=np.float32), rand(RNG, 3, 2, 3, 3, dtype=np.float32)
    same_on_both(
        lambda x, w: F.conv2d(x, w, padding=1, padding_mode="reflect"), [x, w], atol=1e-5, rtol=1e-5
    )
    same_on_both(
        lambda x, w: F.conv2d(x, w[:, :, :2], padding="same"), [x, w], atol=1e-5, rtol=1e-5
    )


def _im2col_conv(x, w, b):
    return Conv2d.apply(
        x, w, b, stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1, algorithm="im2col"
    )


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the simulator's inf * 0
def test_im2col_padding_is_zero_whatever_the_input_holds():
    """An Inf in the first input element spreads to the outputs that read it, not to every
    output that reads padding (the padded column entries are 0, not ``x[0] * 0``)."""
    x = rand(RNG, 1, 2, 4, 4)
    x[0, 0, 0, 0] = np.inf
    arrays = [x, rand(RNG, 3, 2, 3, 3), rand(RNG, 3)]
    out = same_on_both(_im2col_conv, arrays, requires_grad=[False] * 3, **TOL)
    assert np.isfinite(out.numpy()[:, :, 2:, 2:]).all()


def test_im2col_of_an_empty_input_height():
    """H = 0 with padding gives an output of padding only: no kernel reads the empty input."""
    arrays = [rand(RNG, 2, 2, 0, 3), rand(RNG, 3, 2, 1, 1), rand(RNG, 3)]
    out = same_on_both(_im2col_conv, arrays, **TOL)
    assert out.shape == (2, 3, 2, 5)


def _both(fn, x, w, g):
    """``fn(x, w)`` and its gradients on "cpu" and "cuda" under the upstream gradient ``g``."""
    import tinycnn as tc

    runs = []
    for device in ("cpu", "cuda"):
        xt = tc.tensor(x, requires_grad=True, device=device)
        wt = tc.tensor(w, requires_grad=True, device=device)
        out = fn(xt, wt)
        out.backward(tc.tensor(g, device=device))
        runs.append([out.numpy(), xt.grad.numpy(), wt.grad.numpy()])
    for what, c, d in zip(("output", "input grad", "weight grad"), *runs):
        np.testing.assert_array_equal(np.isnan(d), np.isnan(c), err_msg=what)
        np.testing.assert_allclose(d, c, atol=1e-10, rtol=1e-9, err_msg=what)
    return runs[0]


NON_FINITE = [  # algorithm, groups, stride, dilation, weight shape
    ("direct", 1, (1, 1), (1, 1), (2, 2, 3, 3)),
    ("direct", 2, (2, 1), (1, 2), (2, 1, 3, 3)),  # depthwise
    ("direct", 2, (1, 2), (2, 1), (4, 1, 3, 2)),  # depthwise, multiplier 2
    ("im2col", 1, (1, 1), (1, 1), (2, 2, 3, 3)),
]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the simulator's inf * 0
@pytest.mark.parametrize("algorithm,groups,stride,dilation,ws", NON_FINITE)
def test_a_non_finite_weight_or_gradient_meets_the_padding_as_on_the_cpu(
    algorithm, groups, stride, dilation, ws
):
    """The padding is ``0 * w``: a NaN in the weight's corner tap makes every output whose
    corner tap reads padding NaN, on both devices (16 of 16 at 4x4, stride 1); an Inf in the
    upstream gradient makes the weight gradient's taps that read padding ``0 * Inf``, NaN."""

    def fn(x, w):
        return Conv2d.apply(
            x,
            w,
            None,
            stride=stride,
            padding=(1, 1, 1, 1),
            dilation=dilation,
            groups=groups,
            algorithm=algorithm,
        )

    x = rand(RNG, 1, 2, 4, 4)
    w = rand(RNG, *ws)
    w[0, 0, 0, 0] = np.nan
    n = (4 + 2 - dilation[0] * (ws[2] - 1) - 1) // stride[0] + 1
    m = (4 + 2 - dilation[1] * (ws[3] - 1) - 1) // stride[1] + 1
    g = rand(RNG, 1, ws[0], n, m)
    g[0, 0, 0, 0] = np.inf
    out, _, dw = _both(fn, x, w, g)
    # the corner tap of the first output channel reads padding at the top and left border
    assert np.isnan(out[:, 0, 0, :]).all() and np.isnan(out[:, 0, :, 0]).all()
    # output (0, 0) reads padding through its corner tap: that tap's gradient is 0 * Inf
    assert np.isnan(dw[0, 0, 0, 0])
