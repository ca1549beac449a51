"""2-d convolution: validation, the choice of algorithm, forward and backward (the chain rule).

Four algorithms, all over the kernels of ``tinycnn/ops/<device>/conv.py``:

``gemm1x1``  1x1, stride 1, no padding: the input already *is* the column matrix, so the
             forward is one batched GEMM straight into NCHW and needs no im2col at all.
``direct``   depthwise, grouped and few-channel convolutions: tiny GEMMs waste BLAS, and a
             direct loop over padded planes in cache beats writing a column matrix to memory.
``winograd`` 3x3, stride 1, one group, wide enough for im2col (CPU only): Winograd F(2x2, 3x3),
             16 GEMMs with 2.25x fewer multiply-adds than im2col's one, for the forward, the
             input gradient and (where that pays, :func:`winograd_weight_gradient`; im2col's
             otherwise) the weight gradient.
``im2col``   everything else: column matrices, then GEMMs for the forward, the weight gradient
             and the input gradient.  How the columns are cut (per thread tiles that stay in
             cache on the CPU, batch chunks on a GPU) is the kernels' business.

``direct``, ``winograd`` and ``im2col`` kernels take the same arguments (``*_forward``,
``*_backward_input``, ``*_backward_weight``), so the op's backward is written once.  The columns
are recomputed in the backward instead of being saved: saving them would keep ``C*kH*kW`` times
the input alive per layer until the backward (gigabytes for a deep net).
"""

from __future__ import annotations

import math
import numbers

from ..autograd import Function
from ..device import get_backend, get_kernels
from ..tensor import Tensor, check_same_device, check_same_float_dtype
from ._validate import output_size, pair, tensor_arg
from .shape import pad

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
ALGORITHMS = ("gemm1x1", "direct", "winograd", "im2col")
# the kernels of each algorithm but gemm1x1: forward, input gradient, weight gradient
KERNELS = {
    "direct": ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"),
    "winograd": ("winograd_forward", "winograd_backward_input", "winograd_backward_weight"),
    "im2col": ("im2col_forward", "im2col_backward_input", "im2col_backward_weight"),
}

# gemm1x1's weight gradient: one GEMM per image from this many pixels on (Conv2d._gemm1x1_weight),
# their results summed in chunks of images whose partial gradients take at most PARTS_BYTES
PER_IMAGE_WEIGHT_MIN = 256
PARTS_BYTES = 16 << 20
# Winograd computes a grid of 2x2 tiles one tile wider and taller than the output: at most this
# many tiles per 2x2 outputs (1.44 at 10x10 outputs, 2.04 at 7x7 where im2col is faster) ...
WINOGRAD_WASTE = 1.5
# ... and its transforms cost per input and output channel what its GEMMs save per pair of
# them: with 32 input channels it measured no faster than im2col, with 64 and more it is
WINOGRAD_MIN_CHANNELS = 64
# Winograd's weight gradient transforms both the input and the upstream gradient per tile: on
# 64 input channels with 27 % wasted tiles (16x16 outputs) it measured 6 % slower than im2col's,
# on 128 channels and more, or 64 at 56x56, 10-40 % faster
WINOGRAD_WEIGHT_MIN_CHANNELS = 128
WINOGRAD_WEIGHT_WASTE = 1.2


def choose_algorithm(
    x_shape, w_shape, stride, padding, groups, dilation=(1, 1), winograd=False
) -> str:
    """The algorithm :class:`Conv2d` runs for these shapes (see the module docstring);
    ``winograd``: whether the device has the Winograd kernels.

    The thresholds come from ``benchmarks/ops.py``: the direct loop wins while the per-group
    GEMM would be small in either of its output dimensions; Winograd where its GEMMs are wide
    and its tile grid wastes little."""
    cout, cg, kh, kw = w_shape
    og = cout // groups
    if kh == 1 and kw == 1 and stride == (1, 1) and not any(padding):
        return "gemm1x1"
    if cg == 1 or og <= 32 or cg * kh * kw <= 64:
        return "direct"
    if (
        winograd
        and cg >= WINOGRAD_MIN_CHANNELS
        and winograd_applies(w_shape, stride, padding, groups, dilation)
    ):
        oh = x_shape[2] + padding[0] + padding[1] - 2
        ow = x_shape[3] + padding[2] + padding[3] - 2
        if oh > 0 and ow > 0 and winograd_waste(oh, ow) <= WINOGRAD_WASTE:
            return "winograd"
    return "im2col"


def winograd_applies(w_shape, stride, padding, groups, dilation) -> bool:
    """Whether Winograd F(2x2, 3x3) computes this convolution: a 3x3 kernel, stride 1, no
    dilation, one group, padding at most 2 on every side (the input gradient pads by 2 - p)."""
    return (
        tuple(w_shape[2:]) == (3, 3)
        and tuple(stride) == (1, 1)
        and tuple(dilation) == (1, 1)
        and groups == 1
        and max(padding) <= 2
    )


def winograd_weight_gradient(cg: int, oh: int, ow: int) -> bool:
    """Whether a Winograd convolution computes its weight gradient by Winograd too (else by
    im2col): with many input channels, or few tiles wasted."""
    return cg >= WINOGRAD_WEIGHT_MIN_CHANNELS or winograd_waste(oh, ow) <= WINOGRAD_WEIGHT_WASTE


def winograd_waste(oh: int, ow: int) -> float:
    """Tiles Winograd F(2x2, 3x3) computes per 2x2 block of an ``oh x ow`` output."""
    return ((oh + 1) // 2 + 1) * ((ow + 1) // 2 + 1) / (oh * ow / 4)


class Conv2d(Function):
    """``conv2d`` on already padded-mode-resolved inputs; ``padding`` is (top, bottom, left,
    right) zero padding, possibly asymmetric (``padding="same"`` with an even kernel)."""

    def forward(self, x, w, b, stride, padding, dilation, groups, algorithm=None):
        B = get_backend(self.device)
        K = get_kernels(self.device, "conv")
        x, w = B.contiguous(x), B.contiguous(w)
        N, C, H, W = x.shape
        cout, cg, kh, kw = w.shape
        pt, pb, pl, pr = padding
        oh = (H + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (W + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        algo = algorithm or choose_algorithm(
            x.shape, w.shape, stride, padding, groups, dilation, hasattr(K, KERNELS["winograd"][0])
        )
        self.algo, self.groups = algo, groups
        self.geom = (stride[0], stride[1], pt, pl, dilation[0], dilation[1])
        self.x_shape, self.w_shape, self.dtype = x.shape, w.shape, x.dtype
        self.x = x if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        out = B.empty((N, cout, oh, ow), x.dtype)
        if algo == "gemm1x1":
            G, og = groups, cout // groups
            K.gemm(
                B.reshape(w, (G, og, cg)),
                B.reshape(x, (N, G, cg, H * W)),
                B.reshape(out, (N, G, og, oh * ow)),
            )
            if b is not None:
                K.add_bias(B.reshape(out, (N, cout, oh * ow)), B.contiguous(b))
            return out
        bias = B.contiguous(b) if b is not None else B.zeros((cout,), x.dtype)
        if not hasattr(K, KERNELS[algo][0]):
            raise ValueError(f"conv2d: the {algo} algorithm has no kernels on {self.device}")
        if algo == "winograd" and not winograd_applies(w.shape, stride, padding, groups, dilation):
            raise ValueError(
                "conv2d: winograd needs a 3x3 kernel, stride 1, dilation 1, groups 1 and "
                f"padding <= 2; got weight {tuple(w.shape)}, stride {stride}, dilation "
                f"{dilation}, groups {groups}, padding {padding}"
            )
        self.kernels = KERNELS[algo]
        if algorithm is None and algo == "winograd" and not winograd_weight_gradient(cg, oh, ow):
            self.kernels = (*self.kernels[:2], KERNELS["im2col"][2])  # a forced algo is whole
        getattr(K, self.kernels[0])(x, w, bias, *self.geom, groups, out)
        return out

    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "conv")
        g = B.contiguous(g)
        need_x, need_w, need_b = self.needs_input_grad
        N, C, H, W = self.x_shape
        cout, cg = self.w_shape[:2]
        G = self.groups
        gx = B.empty(self.x_shape, self.dtype) if need_x else None
        gw = B.empty(self.w_shape, self.dtype) if need_w and self.algo != "gemm1x1" else None
        gb = None
        if need_b:
            gb = B.empty((cout,), self.dtype)
            K.bias_grad(B.reshape(g, (N, cout, g.shape[2] * g.shape[3])), gb)
        if N == 0 or not (need_x or need_w):
            return gx, B.zeros(self.w_shape, self.dtype) if need_w else None, gb
        if self.algo == "gemm1x1":
            og = cout // G
            if need_x:
                wt = B.transpose(B.reshape(self.w, (G, og, cg)), (0, 2, 1))
                K.gemm(wt, B.reshape(g, (N, G, og, H * W)), B.reshape(gx, (N, G, cg, H * W)))
            if need_w:
                gw = self._gemm1x1_weight(g)
            return gx, gw, gb
        _, backward_input, backward_weight = self.kernels
        if need_x:
            getattr(K, backward_input)(g, self.w, *self.geom, G, gx)
        if need_w:
            getattr(K, backward_weight)(self.x, g, *self.geom, G, gw)
        return gx, gw, gb

    def _gemm1x1_weight(self, g):
        """``sum_n g[n] @ x[n].T``, ``(C_out, C_in/groups, 1, 1)``.

        Images of at least ``PER_IMAGE_WEIGHT_MIN`` pixels: one GEMM per image (split across
        threads by image), summed over the images, with no copy of ``g`` or ``x``.  Smaller
        ones would give GEMMs with a reduction of a few dozen pixels, so ``g`` and ``x`` are
        transposed to ``(C, N*H*W)`` and one GEMM runs over the whole batch."""
        B = get_backend(self.device)
        K = get_kernels(self.device, "conv")
        WS = get_kernels(self.device, "workspace")
        N, C, H, W = self.x_shape
        cout, cg = self.w_shape[:2]
        G, og, hw = self.groups, cout // self.groups, H * W
        if hw >= PER_IMAGE_WEIGHT_MIN:
            step = max(1, PARTS_BYTES // (cout * cg * self.dtype.itemsize))
            total = None
            for n0 in range(0, N, step):
                nc = min(N, n0 + step) - n0
                part = WS.get("conv.dw", (nc, G, og, cg), self.dtype)
                xt = B.transpose(B.reshape(self.x[n0 : n0 + nc], (nc, G, cg, hw)), (0, 1, 3, 2))
                K.gemm(B.reshape(g[n0 : n0 + nc], (nc, G, og, hw)), xt, part)
                part = B.sum(part, axis=0)
                total = part if total is None else B.add(total, part)
            return B.reshape(total, self.w_shape)
        gt = WS.get("conv.grad", (cout, N, hw), self.dtype)
        K.nchw_to_cnhw(B.reshape(g, (N, cout, hw)), gt)
        xt = WS.get("conv.cols", (C, N, hw), self.dtype)
        K.nchw_to_cnhw(B.reshape(self.x, (N, C, hw)), xt)
        gw = B.empty(self.w_shape, self.dtype)
        K.gemm(
            gt.reshape(G, og, N * hw),
            B.transpose(xt.reshape(G, cg, N * hw), (0, 2, 1)),
            B.reshape(gw, (G, og, cg)),
        )
        return gw


# ---------------------------------------------------------------------------- public op
def _hyper(name: str, value, minimum: int) -> tuple[int, int]:
    for v in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(v, float) and math.isnan(v):
            raise ValueError(f"conv2d: {name} is NaN, got {value!r}")
    return pair("conv2d", name, value, minimum)


def _resolve_padding(padding, stride, dilation, kh, kw) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) under PyTorch's rules for ``padding``."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding != "same":
            raise ValueError(
                f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"
            )
        if stride != (1, 1):
            raise ValueError(
                f"conv2d: padding='same' requires stride 1, got stride {stride} "
                "(the output size would depend on the input size modulo the stride)"
            )
        total_h, total_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        # PyTorch puts the odd extra pixel on the bottom/right
        return total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2
    ph, pw = _hyper("padding", padding, 0)
    return ph, ph, pw, pw


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """2-d convolution (cross-correlation, as PyTorch), NCHW.

    Parameters
    ----------
    x : Tensor
        ``(N, C_in, H, W)``.
    weight : Tensor
        ``(C_out, C_in / groups, kH, kW)``.
    bias : Tensor, optional
        ``(C_out,)``.
    stride, dilation : int or pair
        ``>= 1``.
    padding : int, pair, "same" or "valid"
        "same" (stride 1 only) keeps H and W, padding the odd pixel at the bottom/right.
    groups : int
        Channels are split into ``groups`` independent convolutions; ``groups == C_in`` is a
        depthwise convolution.
    padding_mode : "zeros", "reflect", "replicate" or "circular"
        What the padding holds (as ``torch.nn.Conv2d``).

    Returns
    -------
    Tensor
        ``(N, C_out, H_out, W_out)`` with ``H_out = floor((H + 2P - d*(k-1) - 1) / S) + 1``.
    """
    op = "conv2d"
    tensor_arg(op, "input", x, 4, "N, C_in, H, W")
    tensor_arg(op, "weight", weight, 4, "C_out, C_in/groups, kH, kW")
    if bias is not None:
        tensor_arg(op, "bias", bias, 1, "C_out")
    check_same_float_dtype(op, ("input", "weight", "bias"), (x, weight, bias))
    check_same_device(op, [t for t in (x, weight, bias) if t is not None])
    stride = _hyper("stride", stride, 1)
    dilation = _hyper("dilation", dilation, 1)
    if isinstance(groups, float) and math.isnan(groups):
        raise ValueError("conv2d: groups is NaN")
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be an int >= 1, got {groups!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"conv2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}"
        )
    groups = int(groups)
    N, C, H, W = x.shape
    cout, cg, kh, kw = weight.shape
    if min(cout, cg, kh, kw) < 1:
        raise ValueError(f"conv2d: weight must have no empty dimension, got shape {weight.shape}")
    if C % groups:
        raise ValueError(
            f"conv2d: groups={groups} must divide in_channels {C} ({C} % {groups} = {C % groups})"
        )
    if cout % groups:
        raise ValueError(
            f"conv2d: groups={groups} must divide out_channels {cout} "
            f"(weight.shape[0]; {cout} % {groups} = {cout % groups})"
        )
    if cg * groups != C:
        raise ValueError(
            f"conv2d: input has {C} channels but weight.shape[1]*groups = {cg}*{groups} = "
            f"{cg * groups} (weight {weight.shape}, groups {groups}); expected weight.shape[1] "
            f"= {C // groups}"
        )
    if bias is not None and bias.shape != (cout,):
        raise ValueError(f"conv2d: bias must have shape ({cout},) = (C_out,), got {bias.shape}")
    pt, pb, pl, pr = _resolve_padding(padding, stride, dilation, kh, kw)
    output_size(op, "height", H, kh, pt, stride[0], dilation[0], pad_right=pb)
    output_size(op, "width", W, kw, pl, stride[1], dilation[1], pad_right=pr)
    if padding_mode != "zeros" and (pt or pb or pl or pr):
        for axis, size, lo, hi in (("height", H, pt, pb), ("width", W, pl, pr)):
            if padding_mode == "reflect" and max(lo, hi) >= size:
                raise ValueError(
                    f"conv2d: padding_mode='reflect' needs padding < input size; "
                    f"{axis} padding ({lo}, {hi}) vs input {axis} {size}"
                )
            if padding_mode == "circular" and max(lo, hi) > size:
                raise ValueError(
                    f"conv2d: padding_mode='circular' needs padding <= input size; "
                    f"{axis} padding ({lo}, {hi}) vs input {axis} {size}"
                )
        x = pad(x, (pl, pr, pt, pb), mode=padding_mode)
        pt = pb = pl = pr = 0
    return Conv2d.apply(
        x, weight, bias, stride=stride, padding=(pt, pb, pl, pr), dilation=dilation, groups=groups
    )
