"""2-d convolution: validation, the choice of algorithm, forward and backward (the chain rule).

Three algorithms, all over the kernels of ``tinycnn/ops/<device>/conv.py``:

``gemm1x1``  1x1, stride 1, no padding: the input already *is* the column matrix, so the
             forward is one batched GEMM straight into NCHW and needs no im2col at all.
``direct``   depthwise, grouped and few-channel convolutions: tiny GEMMs waste BLAS, and a
             direct loop over padded planes in cache beats writing a column matrix to memory.
``im2col``   everything else: columns for the whole batch in one reused buffer, then one large
             GEMM per group for the forward, the weight gradient and the input gradient.

The columns are recomputed in the backward instead of being saved: saving them would keep
``C*kH*kW`` times the input alive per layer until the backward (gigabytes for a deep net).
Only columns at most ``KEEP_COLS_RATIO`` times the output's size are kept (``Conv2d.keep``).
"""

from __future__ import annotations

import math
import numbers

from ..autograd import Function, is_grad_enabled
from ..device import get_backend, get_kernels
from ..tensor import Tensor, check_same_device, check_same_float_dtype
from ._validate import output_size, pair, tensor_arg
from .shape import pad

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
ALGORITHMS = ("gemm1x1", "direct", "im2col")

# Upper bound of one im2col column buffer; larger batches are processed in chunks of images.
COLS_BYTES = 64 << 20
# Output planes at least this large get one column matrix per image (see Conv2d._layout).
PER_IMAGE_MIN = 1024
# Columns at most this many times the output's size are kept for the backward (Conv2d.keep).
KEEP_COLS_RATIO = 3


def choose_algorithm(x_shape, w_shape, stride, padding, groups) -> str:
    """The algorithm :class:`Conv2d` runs for these shapes (see the module docstring).

    The thresholds come from ``benchmarks/ops.py``: the direct loop wins while the per-group
    GEMM would be small in either of its output dimensions."""
    cout, cg, kh, kw = w_shape
    og = cout // groups
    if kh == 1 and kw == 1 and stride == (1, 1) and not any(padding):
        return "gemm1x1"
    if cg == 1 or og <= 16 or cg * kh * kw <= 64:
        return "direct"
    return "im2col"


class Conv2d(Function):
    """``conv2d`` on already padded-mode-resolved inputs; ``padding`` is (top, bottom, left,
    right) zero padding, possibly asymmetric (``padding="same"`` with an even kernel)."""

    # the im2col options, decided per call by _plan_im2col (off for the other algorithms)
    fold = keep = False
    saved_cols = ()

    def forward(self, x, w, b, stride, padding, dilation, groups, algorithm=None):
        B = get_backend(self.device)
        K = get_kernels(self.device, "conv")
        x, w = B.contiguous(x), B.contiguous(w)
        N, C, H, W = x.shape
        cout, cg, kh, kw = w.shape
        pt, pb, pl, pr = padding
        oh = (H + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (W + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        algo = algorithm or choose_algorithm(x.shape, w.shape, stride, padding, groups)
        self.algo, self.groups = algo, groups
        self.geom = (kh, kw, stride[0], stride[1], pt, pl, dilation[0], dilation[1], oh, ow)
        self.per_image = oh * ow >= PER_IMAGE_MIN
        self.x_shape, self.w_shape, self.dtype = x.shape, w.shape, x.dtype
        self.x = x if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        bias = B.contiguous(b) if b is not None else B.zeros((cout,), x.dtype)
        out = B.empty((N, cout, oh, ow), x.dtype)
        if algo == "gemm1x1":
            G, og = groups, cout // groups
            K.gemm(
                B.reshape(w, (G, og, cg)),
                B.reshape(x, (N, G, cg, H * W)),
                B.reshape(out, (N, G, og, oh * ow)),
            )
            if b is not None:
                K.add_bias(B.reshape(out, (N, cout, oh * ow)), bias)
        elif algo == "direct":
            sh, sw, dh, dw = stride[0], stride[1], dilation[0], dilation[1]
            K.conv2d_forward(x, w, bias, sh, sw, pt, pl, dh, dw, groups, out)
        else:
            self._plan_im2col(b is not None)
            self._im2col_forward(x, w, bias, out)
        return out

    # ------------------------------------------------------------------------ im2col + GEMM
    def _plan_im2col(self, has_bias: bool) -> None:
        """Decide the two per-call options of the im2col path.

        ``fold``: with one group, per-image column matrices and a bias, the column matrix gets a
        row of ones and the weight matrix a column holding the bias, so the GEMM adds the bias
        and the weight-gradient GEMM yields the bias gradient as its last row: two passes over
        the output fewer (1.8 of the 24 ms of ``benchmarks/ops.py``'s 7x7 stem, case e).
        ``keep``: when the columns are at most ``KEEP_COLS_RATIO`` times the size of the output
        (a stem with three input channels: 148 rows for 64 outputs), they are kept for the
        backward instead of being recomputed there; the buffers come from the workspace's
        free list, so a training loop reuses them step after step."""
        C, (cout, _, kh, kw) = self.x_shape[1], self.w_shape
        self.fold = has_bias and self.groups == 1 and self.per_image
        self.rows = C * kh * kw + (1 if self.fold else 0)
        self.keep = (
            is_grad_enabled() and self.needs_input_grad[1] and self.rows <= KEEP_COLS_RATIO * cout
        )
        self.saved_cols = []

    def __del__(self):
        # kept columns of a forward whose backward never ran (evaluation with grad enabled,
        # a graph dropped) go back to the free list: the next forward reuses their pages
        if self.saved_cols:
            try:
                WS = get_kernels(self.device, "workspace")
                for cols in self.saved_cols:
                    WS.give(cols)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def _chunks(self):
        """Image ranges whose columns fit in ``COLS_BYTES``."""
        N = self.x_shape[0]
        oh, ow = self.geom[8], self.geom[9]
        per_image = self.rows * oh * ow * self.dtype.itemsize
        step = max(1, COLS_BYTES // max(per_image, 1))
        return [(n0, min(N, n0 + step)) for n0 in range(0, N, step)]

    def _layout(self, nc, rows=None):
        """(row_stride, image_stride) of a column buffer of ``rows`` rows for ``nc`` images.

        Large images get one column matrix per image: the GEMM then writes NCHW directly.
        Small ones (late layers) get one matrix for the whole chunk, so the GEMM is wide
        enough for BLAS; its ``(C, N, HW)`` result is transposed to NCHW (a small copy)."""
        rows = self.rows if rows is None else rows
        ohw = self.geom[8] * self.geom[9]
        if self.per_image:
            return ohw, rows * ohw
        return nc * ohw, ohw

    def _columns(self, x, n0, n1):
        """im2col of images ``n0:n1`` (flat): into the reused workspace buffer, or into a kept
        buffer when ``keep``; with ``fold`` the last row of each matrix is ones."""
        WS = get_kernels(self.device, "workspace")
        K = get_kernels(self.device, "conv")
        nc, ohw = n1 - n0, self.geom[8] * self.geom[9]
        size = (self.rows * nc * ohw,)
        cols = WS.take(size, self.dtype) if self.keep else WS.get("conv.cols", size, self.dtype)
        row_stride, image_stride = self._layout(nc)
        K.im2col(x[n0:n1], *self.geom, row_stride, image_stride, cols)
        if self.fold:
            K.fill_rows(cols, (self.rows - 1) * row_stride, image_stride, nc, ohw, 1.0)
        return cols

    def _im2col_forward(self, x, w, bias, out):
        B = get_backend(self.device)
        K = get_kernels(self.device, "conv")
        WS = get_kernels(self.device, "workspace")
        G, (cout, cg, kh, kw) = self.groups, w.shape
        og, rows = cout // G, self.rows // G
        ohw = self.geom[8] * self.geom[9]
        wg = B.reshape(w, (G, og, cg * kh * kw))
        if self.fold:  # the bias as the weight column of the ones row (one group)
            wb = B.concatenate([B.reshape(w, (cout, rows - 1)), B.reshape(bias, (cout, 1))], 1)
            wg = B.reshape(wb, (1, og, rows))
        for n0, n1 in self._chunks():
            nc = n1 - n0
            cols = self._columns(x, n0, n1)
            if self.keep:
                self.saved_cols.append(cols)
            if self.per_image:
                K.gemm(wg, cols.reshape(nc, G, rows, ohw), out[n0:n1].reshape(nc, G, og, ohw))
                if not self.fold:
                    K.add_bias(out[n0:n1].reshape(nc, cout, ohw), bias)
            else:
                res = WS.get("conv.gemm", (G, og, nc * ohw), self.dtype)
                K.gemm(wg, cols.reshape(G, rows, nc * ohw), res)
                K.cnhw_to_nchw(res.reshape(cout, nc, ohw), bias, out[n0:n1].reshape(nc, cout, ohw))

    def _im2col_backward(self, g, gx, need_w):
        """Input gradient written into ``gx`` (if given); returns the weight gradient and, with
        ``fold``, the bias gradient (else None)."""
        B = get_backend(self.device)
        K = get_kernels(self.device, "conv")
        WS = get_kernels(self.device, "workspace")
        G, (cout, cg, kh, kw) = self.groups, self.w_shape
        og, kg, rows = cout // G, cg * kh * kw, self.rows // G
        ohw = self.geom[8] * self.geom[9]
        gw = gb = None
        for i, (n0, n1) in enumerate(self._chunks()):
            nc = n1 - n0
            if self.per_image:
                gt = g[n0:n1].reshape(nc, G, og, ohw)
            else:
                gt = WS.get("conv.grad", (cout, nc, ohw), self.dtype)
                K.nchw_to_cnhw(g[n0:n1].reshape(nc, cout, ohw), gt)
                gt = gt.reshape(G, og, nc * ohw)
            if need_w:
                # dW^T = cols @ g^T: 10-25 % faster in OpenBLAS than g @ cols^T for these
                # shapes (the long reduction over pixels is the columns' contiguous axis)
                cols = self.saved_cols[i] if self.keep else self._columns(self.x, n0, n1)
                if self.per_image:  # one GEMM per image, summed (the gradient is small)
                    part = WS.get("conv.dw", (nc, G, rows, og), self.dtype)
                    K.gemm(cols.reshape(nc, G, rows, ohw), B.transpose(gt, (0, 1, 3, 2)), part)
                    part = B.sum(part, axis=0)
                else:
                    part = WS.get("conv.dw", (G, rows, og), self.dtype)
                    K.gemm(cols.reshape(G, rows, nc * ohw), B.transpose(gt, (0, 2, 1)), part)
                if self.keep:
                    WS.give(cols)
                if self.fold:  # the ones row's gradient is the bias gradient
                    part_b = B.reshape(B.slice_axis(part, 1, kg, rows), (cout,))
                    gb = B.copy(part_b) if gb is None else B.add(gb, part_b)
                    part = B.slice_axis(part, 1, 0, kg)
                part = B.transpose(part, (0, 2, 1))  # (G, og, kg)
                gw = B.copy(part) if gw is None else B.add(gw, part)
            if gx is not None:
                flat = WS.get("conv.cols", (G * kg * nc * ohw,), self.dtype)
                wt = B.transpose(B.reshape(self.w, (G, og, kg)), (0, 2, 1))
                shape = (nc, G, kg, ohw) if self.per_image else (G, kg, nc * ohw)
                K.gemm(wt, gt, flat.reshape(shape))
                K.col2im(flat, *self.geom, *self._layout(nc, kg * G), gx[n0:n1])
        self.saved_cols = []
        return (None if gw is None else B.reshape(gw, self.w_shape)), gb

    # ------------------------------------------------------------------------ backward
    def backward(self, g):
        B = get_backend(self.device)
        K = get_kernels(self.device, "conv")
        g = B.contiguous(g)
        need_x, need_w, need_b = self.needs_input_grad
        N, C, H, W = self.x_shape
        cout, cg, kh, kw = self.w_shape
        kh, kw, sh, sw, pt, pl, dh, dw, oh, ow = self.geom
        G = self.groups
        gx = B.empty(self.x_shape, self.dtype) if need_x else None
        gw = B.empty(self.w_shape, self.dtype) if need_w and self.algo != "im2col" else None
        gb = None
        fold_b = need_b and need_w and N > 0 and self.fold
        if need_b and not fold_b:
            gb = B.empty((cout,), self.dtype)
            K.bias_grad(B.reshape(g, (N, cout, oh * ow)), gb)
        if N == 0 or not (need_x or need_w):
            return gx, B.zeros(self.w_shape, self.dtype) if need_w else None, gb
        if self.algo == "gemm1x1":
            og = cout // G
            if need_x:
                wt = B.transpose(B.reshape(self.w, (G, og, cg)), (0, 2, 1))
                K.gemm(wt, B.reshape(g, (N, G, og, H * W)), B.reshape(gx, (N, G, cg, H * W)))
            if need_w:
                self._gemm1x1_weight(g, gw)
        elif self.algo == "direct":
            if need_x:
                K.conv2d_backward_input(g, self.w, sh, sw, pt, pl, dh, dw, G, gx)
            if need_w:
                K.conv2d_backward_weight(self.x, g, sh, sw, pt, pl, dh, dw, G, gw)
        else:
            gw, gb_folded = self._im2col_backward(g, gx, need_w)
            if fold_b:
                gb = gb_folded
        return gx, gw, gb

    def _gemm1x1_weight(self, g, gw):
        """``gw = sum_n g[n] @ x[n].T`` as one GEMM over the batch-major layouts."""
        B = get_backend(self.device)
        K = get_kernels(self.device, "conv")
        WS = get_kernels(self.device, "workspace")
        N, C, H, W = self.x_shape
        cout, cg = self.w_shape[:2]
        G, hw = self.groups, H * W
        gt = WS.get("conv.grad", (cout, N, hw), self.dtype)
        K.nchw_to_cnhw(B.reshape(g, (N, cout, hw)), gt)
        xt = WS.get("conv.cols", (C, N, hw), self.dtype)
        K.nchw_to_cnhw(B.reshape(self.x, (N, C, hw)), xt)
        K.gemm(
            gt.reshape(G, cout // G, N * hw),
            B.transpose(xt.reshape(G, cg, N * hw), (0, 2, 1)),
            B.reshape(gw, (G, cout // G, cg)),
        )


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
