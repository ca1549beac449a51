"""CUDA kernels of conv2d: the functions of ``cpu/conv.py``, by name and argument order, so the
three algorithms of ``tinycnn/ops/conv.py`` (1x1 GEMM, direct, im2col + GEMM) run unchanged.

* ``gemm`` is the tiled shared-memory GEMM of ``_gemm.py`` (batched, broadcast, transposed
  operands read in place).
* ``im2col`` / ``col2im``: one thread per column element / per input-gradient pixel.  col2im
  *gathers* the columns that touch its pixel (no atomics, deterministic).
* Direct convolution (groups, few channels) covers stride, padding, dilation and groups with
  one thread per output (forward) or per input-gradient pixel (backward, a gather); depthwise
  convolutions (one input channel per group) get dedicated kernels without the channel loop.
  The weight gradient uses one block per weight element with a shared-memory tree reduction.
  A padded tap still adds the padding's ``0 * w`` (forward) or ``0 * g`` (weight gradient), as
  the CPU's kernels and im2col's zero column entries do: nothing for a finite value, NaN for an
  Inf or NaN, so a non-finite weight or gradient spreads over the padded border on both devices.
  ``v - v`` is that product in v's own type (a float64 ``v * 0.0`` would widen float32 sums).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from . import workspace
from ._cuda import blocks, each, kernel, permuted_view
from .array_shape import gemm_into
from .config import MAX_BLOCKS, REDUCE_THREADS, THREADS


def _flat(a):
    return a.reshape((a.size,))


def _go(k, n: int, *args) -> None:
    if n:
        k[blocks(n), THREADS](*args)


@cuda.jit(device=True)
def _block_sum(buf, tid, value):
    buf[tid] = value
    cuda.syncthreads()
    h = REDUCE_THREADS // 2
    while h > 0:
        if tid < h:
            buf[tid] += buf[tid + h]
        cuda.syncthreads()
        h //= 2
    total = buf[0]
    cuda.syncthreads()
    return total


# ------------------------------------------------------------------------------ im2col
@kernel(*each("{T}[::1], {T}[::1], " + "int64, " * 15 + "int64"))
def _im2col(
    x, cols, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, row_stride, image_stride, nimg
):
    ohw = oh * ow
    total = C * kh * kw * nimg * ohw
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, total, step):
        yz = t % ohw
        y = yz // ow
        z = yz - y * ow
        rest = t // ohw
        n = rest % nimg
        r = rest // nimg
        j = r % kw
        i = (r // kw) % kh
        c = r // (kw * kh)
        iy = y * sh - ph + i * dh
        ix = z * sw - pw + j * dw
        k = r * row_stride + n * image_stride + yz
        # padding is a literal 0: no read of x (an input with an empty H or W has no element
        # to read), and a NaN or Inf in x stays out of the padded entries
        if 0 <= iy < H and 0 <= ix < W:
            cols[k] = x[((n * C + c) * H + iy) * W + ix]
        else:
            cols[k] = 0


@kernel(*each("{T}[::1], {T}[::1], " + "int64, " * 14 + "int64"))
def _col2im(cols, dx, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, row_stride, image_stride):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, dx.size, step):
        w = t % W
        h = (t // W) % H
        c = (t // (W * H)) % C
        n = t // (W * H * C)
        acc = 0.0
        for i in range(kh):
            ty = h + ph - i * dh
            if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                continue
            y = ty // sh
            for j in range(kw):
                tz = w + pw - j * dw
                if tz < 0 or tz % sw != 0 or tz // sw >= ow:
                    continue
                r = (c * kh + i) * kw + j
                acc += cols[r * row_stride + n * image_stride + y * ow + tz // sw]
        dx[t] = acc


# ------------------------------------------------------------------------------ layouts, bias
@kernel(*each("{T}[::1], {T}[::1], int64, int64, int64, int64, int64"))
def _add_weight_part(part, dw, nimg, G, kg, og, accumulate):
    """``dw[g, o, k] (+)= sum_n part[n, g, k, o]``: per-image ``dW^T`` parts into the weight
    gradient's layout."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, dw.size, step):
        k = t % kg
        o = (t // kg) % og
        gi = t // (kg * og)
        s = 0.0
        for n in range(nimg):
            s += part[((n * G + gi) * kg + k) * og + o]
        if accumulate:
            dw[t] += s
        else:
            dw[t] = s


@kernel(*each("{T}[::1], {T}[::1], int64, int64"))
def _add_bias(y, bias, C, HW):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, y.size, step):
        y[t] += bias[(t // HW) % C]


@kernel(*each("{T}[::1], {T}[::1], {T}[::1], int64, int64, int64"))
def _cnhw_to_nchw(src, bias, out, N, C, HW):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        s = t % HW
        c = (t // HW) % C
        n = t // (HW * C)
        out[t] = src[(c * N + n) * HW + s] + bias[c]


@kernel(*each("{T}[::1], {T}[::1], int64, int64, int64"))
def _nchw_to_cnhw(src, out, N, C, HW):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        s = t % HW
        n = (t // HW) % N
        c = t // (HW * N)
        out[t] = src[(n * C + c) * HW + s]


@kernel(*each("{T}[::1], {T}[::1], int64, int64, int64"))
def _bias_grad(g, out, N, C, HW):
    """One block per channel (blocks stride over channels); float64 tree reduction."""
    buf = cuda.shared.array(REDUCE_THREADS, float64)
    tid = cuda.threadIdx.x
    for c in range(cuda.blockIdx.x, C, cuda.gridDim.x):
        s = 0.0
        for e in range(tid, N * HW, REDUCE_THREADS):
            n = e // HW
            s += g[(n * C + c) * HW + (e - n * HW)]
        s = _block_sum(buf, tid, s)
        if tid == 0:
            out[c] = s


# ------------------------------------------------------------------------------ direct
_FWD = "{T}[::1], {T}[::1], {T}[::1], {T}[::1], " + "int64, " * 15 + "int64"


@kernel(*each(_FWD))
def _direct_forward(x, w, bias, out, C, H, W, cout, cg, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw, og):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        z = t % OW
        y = (t // OW) % OH
        o = (t // (OW * OH)) % cout
        n = t // (OW * OH * cout)
        c0 = (o // og) * cg
        acc = bias[o]
        for c in range(cg):
            xb = (n * C + c0 + c) * H
            wb = (o * cg + c) * kh
            for i in range(kh):
                iy = y * sh - ph + i * dh
                row = 0 <= iy < H
                for j in range(kw):
                    ix = z * sw - pw + j * dw
                    wv = w[(wb + i) * kw + j]
                    if row and 0 <= ix < W:
                        acc += wv * x[(xb + iy) * W + ix]
                    else:
                        acc += wv - wv  # the padding's 0 * w (module docstring)
        out[t] = acc


@kernel(*each(_FWD))
def _depthwise_forward(
    x, w, bias, out, C, H, W, cout, cg, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw, og
):
    """``cg == 1``: output channel ``o`` reads input channel ``o // og`` only."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, out.size, step):
        z = t % OW
        y = (t // OW) % OH
        o = (t // (OW * OH)) % cout
        n = t // (OW * OH * cout)
        xb = (n * C + o // og) * H
        acc = bias[o]
        for i in range(kh):
            iy = y * sh - ph + i * dh
            row = 0 <= iy < H
            for j in range(kw):
                ix = z * sw - pw + j * dw
                wv = w[(o * kh + i) * kw + j]
                if row and 0 <= ix < W:
                    acc += wv * x[(xb + iy) * W + ix]
                else:
                    acc += wv - wv  # the padding's 0 * w (module docstring)
        out[t] = acc


_BWD_IN = "{T}[::1], {T}[::1], {T}[::1], " + "int64, " * 15 + "int64"


@kernel(*each(_BWD_IN))
def _direct_backward_input(g, w, dx, C, H, W, cout, cg, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw, og):
    """Gather: pixel (n, ci, h, x) sums ``w * g`` over every output that read it."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, dx.size, step):
        xw = t % W
        h = (t // W) % H
        ci = (t // (W * H)) % C
        n = t // (W * H * C)
        grp = ci // cg
        c = ci - grp * cg
        acc = 0.0
        for o in range(grp * og, (grp + 1) * og):
            gb = (n * cout + o) * OH
            for i in range(kh):
                ty = h + ph - i * dh
                if ty < 0 or ty % sh != 0 or ty // sh >= OH:
                    continue
                for j in range(kw):
                    tz = xw + pw - j * dw
                    if tz < 0 or tz % sw != 0 or tz // sw >= OW:
                        continue
                    acc += w[((o * cg + c) * kh + i) * kw + j] * g[(gb + ty // sh) * OW + tz // sw]
        dx[t] = acc


_BWD_W = "{T}[::1], {T}[::1], {T}[::1], " + "int64, " * 16 + "int64"


@kernel(*each(_BWD_W))
def _direct_backward_weight(
    x, g, dw_out, N, C, H, W, cout, cg, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw, og
):
    """One block per weight element (blocks stride): a float64 tree reduction over n, y, z."""
    buf = cuda.shared.array(REDUCE_THREADS, float64)
    tid = cuda.threadIdx.x
    ohw = OH * OW
    for e in range(cuda.blockIdx.x, dw_out.size, cuda.gridDim.x):
        j = e % kw
        i = (e // kw) % kh
        c = (e // (kw * kh)) % cg
        o = e // (kw * kh * cg)
        ci = (o // og) * cg + c
        s = 0.0
        for q in range(tid, N * ohw, REDUCE_THREADS):
            n = q // ohw
            yz = q - n * ohw
            y = yz // OW
            z = yz - y * OW
            iy = y * sh - ph + i * dh
            ix = z * sw - pw + j * dw
            gv = g[(n * cout + o) * ohw + yz]
            if 0 <= iy < H and 0 <= ix < W:
                s += gv * x[((n * C + ci) * H + iy) * W + ix]
            else:
                s += gv - gv  # the padding's 0 * g (module docstring)
        s = _block_sum(buf, tid, s)
        if tid == 0:
            dw_out[e] = s


# ------------------------------------------------------------------------------ public
def gemm(a, b, out):
    """``out = a @ b`` (batched over leading dims, broadcasting) on the tiled GEMM."""
    gemm_into(a, b, out)
    return out


def padded_extent(oh, ow, kh, kw, sh, sw, dh, dw):
    """Rows and columns of the padded input that the output actually reads."""
    return (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1


def _ints(*values):
    return tuple(int(v) for v in values)


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, row_stride, image_stride, cols) -> None:
    """``cols[r*row_stride + n*image_stride + y*ow + z] = x[n, c, y*sh - ph + i*dh,
    z*sw - pw + j*dw]`` (zero outside the input) for the row ``r = (c*kh + i)*kw + j``."""
    N, C, H, W = _ints(*x.shape)
    geom = _ints(kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, row_stride, image_stride)
    total = C * kh * kw * N * oh * ow
    _go(_im2col, total, _flat(x), _flat(cols), C, H, W, *geom, N)


def col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, row_stride, image_stride, dx) -> None:
    """The adjoint of :func:`im2col`: ``dx`` (N, C, H, W) sums the columns of each pixel."""
    _, C, H, W = _ints(*dx.shape)
    geom = _ints(kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, row_stride, image_stride)
    _go(_col2im, dx.size, _flat(cols), _flat(dx), C, H, W, *geom)


def cnhw_to_nchw(src, bias, out) -> None:
    """``out[n, c, :] = src[c, n, :] + bias[c]``."""
    C, N, HW = _ints(*src.shape)
    _go(_cnhw_to_nchw, out.size, _flat(src), bias, _flat(out), N, C, HW)


def nchw_to_cnhw(src, out) -> None:
    """``out[c, n, :] = src[n, c, :]``."""
    N, C, HW = _ints(*src.shape)
    _go(_nchw_to_cnhw, out.size, _flat(src), _flat(out), N, C, HW)


def add_bias(y, bias) -> None:
    """``y[n, c, :] += bias[c]`` in place."""
    _, C, HW = _ints(*y.shape)
    _go(_add_bias, y.size, _flat(y), bias, C, HW)


def bias_grad(g, out) -> None:
    """``out[c] = sum over n, hw of g[n, c, hw]``."""
    N, C, HW = _ints(*g.shape)
    if C:
        _bias_grad[max(1, min(C, MAX_BLOCKS)), REDUCE_THREADS](_flat(g), out, N, C, HW)


def _direct_args(x_shape, w_shape, out_hw, sh, sw, ph, pw, dh, dw, groups):
    _, C, H, W = _ints(*x_shape)
    cout, cg, kh, kw = _ints(*w_shape)
    return (
        C,
        H,
        W,
        cout,
        cg,
        kh,
        kw,
        *_ints(*out_hw),
        *_ints(sh, sw, ph, pw, dh, dw),
        cout // int(groups),
    )


def conv2d_forward(x, w, bias, sh, sw, ph, pw, dh, dw, groups, out) -> None:
    """Direct convolution into ``out`` (N, Cout, OH, OW); depthwise has its own kernel."""
    args = _direct_args(x.shape, w.shape, out.shape[2:], sh, sw, ph, pw, dh, dw, groups)
    k = _depthwise_forward if int(w.shape[1]) == 1 else _direct_forward
    _go(k, out.size, _flat(x), _flat(w), bias, _flat(out), *args)


def conv2d_backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, dx) -> None:
    """``dx`` (N, C, H, W) of a direct convolution (a gather: no atomics)."""
    args = _direct_args(dx.shape, w.shape, g.shape[2:], sh, sw, ph, pw, dh, dw, groups)
    _go(_direct_backward_input, dx.size, _flat(g), _flat(w), _flat(dx), *args)


def conv2d_backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, dw_out) -> None:
    """``dw_out[o, c, i, j] = sum_{n, y, z} g[n, o, y, z] * xpad[n, c, y*sh + i*dh,
    z*sw + j*dw]``."""
    args = _direct_args(x.shape, dw_out.shape, g.shape[2:], sh, sw, ph, pw, dh, dw, groups)
    if dw_out.size:
        grid = max(1, min(dw_out.size, MAX_BLOCKS))
        k = _direct_backward_weight
        k[grid, REDUCE_THREADS](_flat(x), _flat(g), _flat(dw_out), int(x.shape[0]), *args)


# ------------------------------------------------------------------------------ im2col + GEMM
# Upper bound of one column buffer; larger batches are processed in chunks of images.
COLS_BYTES = 64 << 20
# Output planes at least this large get one column matrix per image (see _Im2col.layout).
PER_IMAGE_MIN = 1024


class _Im2col:
    """One im2col convolution's geometry, chunks of images and column layout on the device.

    Large images get one column matrix per image (the GEMM then writes NCHW directly); small
    ones one matrix per chunk of images, so the GEMM is wide enough to fill the GPU, and its
    ``(C, N, HW)`` result is transposed to NCHW."""

    def __init__(self, x_shape, w_shape, out_hw, sh, sw, ph, pw, dh, dw, groups, dtype):
        N, C = _ints(*x_shape[:2])
        cout, cg, kh, kw = _ints(*w_shape)
        oh, ow = _ints(*out_hw)
        self.G, self.og, self.kg, self.cout = int(groups), cout // int(groups), cg * kh * kw, cout
        self.rows, self.ohw, self.dtype = C * kh * kw, oh * ow, dtype
        self.geom = _ints(kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        self.per_image = self.ohw >= PER_IMAGE_MIN
        per = self.rows * self.ohw * np.dtype(dtype).itemsize
        step = max(1, COLS_BYTES // max(per, 1))
        self.chunks = [(n0, min(N, n0 + step)) for n0 in range(0, N, step)]

    def layout(self, nc):
        """``(row_stride, image_stride)`` of the column buffer of ``nc`` images."""
        if self.per_image:
            return self.ohw, self.rows * self.ohw
        return nc * self.ohw, self.ohw

    def columns(self, x, n0, n1):
        """im2col of images ``n0:n1``: ``(nc, G, kg, ohw)`` per image, else ``(G, kg, nc*ohw)``."""
        nc = n1 - n0
        cols = workspace.get("conv.cols", (self.rows * nc * self.ohw,), self.dtype)
        im2col(x[n0:n1], *self.geom, *self.layout(nc), cols)
        return cols.reshape(self.shape(nc))

    def shape(self, nc):
        if self.per_image:
            return nc, self.G, self.kg, self.ohw
        return self.G, self.kg, nc * self.ohw

    def grad(self, g, n0, n1):
        """The upstream gradient of images ``n0:n1`` in the GEMMs' layout."""
        nc = n1 - n0
        if self.per_image:
            return g[n0:n1].reshape((nc, self.G, self.og, self.ohw))
        gt = workspace.get("conv.grad", (self.cout, nc, self.ohw), self.dtype)
        nchw_to_cnhw(g[n0:n1].reshape((nc, self.cout, self.ohw)), gt)
        return gt.reshape((self.G, self.og, nc * self.ohw))


def im2col_forward(x, w, bias, sh, sw, ph, pw, dh, dw, groups, out) -> None:
    """``out = conv2d(x, w) + bias`` through im2col + the tiled GEMM, chunk by chunk."""
    p = _Im2col(x.shape, w.shape, out.shape[2:], sh, sw, ph, pw, dh, dw, groups, x.dtype)
    wg = w.reshape((p.G, p.og, p.kg))
    for n0, n1 in p.chunks:
        nc = n1 - n0
        cols = p.columns(x, n0, n1)
        dst = out[n0:n1].reshape((nc, p.cout, p.ohw))
        if p.per_image:
            gemm(wg, cols, dst.reshape((nc, p.G, p.og, p.ohw)))
            add_bias(dst, bias)
        else:
            res = workspace.get("conv.gemm", (p.G, p.og, nc * p.ohw), x.dtype)
            gemm(wg, cols, res)
            cnhw_to_nchw(res.reshape((p.cout, nc, p.ohw)), bias, dst)


def im2col_backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, dx) -> None:
    """``dx`` of :func:`im2col_forward`: ``W^T @ g`` per chunk, then col2im (a gather)."""
    p = _Im2col(dx.shape, w.shape, g.shape[2:], sh, sw, ph, pw, dh, dw, groups, dx.dtype)
    wt = permuted_view(w.reshape((p.G, p.og, p.kg)), (0, 2, 1))
    for n0, n1 in p.chunks:
        nc = n1 - n0
        flat = workspace.get("conv.cols", (p.rows * nc * p.ohw,), dx.dtype)
        gemm(wt, p.grad(g, n0, n1), flat.reshape(p.shape(nc)))
        col2im(flat, *p.geom, *p.layout(nc), dx[n0:n1])


def im2col_backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, dw_out) -> None:
    """``dw_out`` of :func:`im2col_forward`: ``dW^T = cols @ g^T`` per chunk (per image with
    the per-image layout), summed into ``dw_out``."""
    p = _Im2col(x.shape, dw_out.shape, g.shape[2:], sh, sw, ph, pw, dh, dw, groups, x.dtype)
    flat_dw = _flat(dw_out)
    for k, (n0, n1) in enumerate(p.chunks):
        nc = n1 - n0
        cols, gt = p.columns(x, n0, n1), p.grad(g, n0, n1)
        if p.per_image:  # one part per image, summed by _add_weight_part
            nparts = nc
            part = workspace.get("conv.dw", (nc, p.G, p.kg, p.og), x.dtype)
            gemm(cols, permuted_view(gt, (0, 1, 3, 2)), part)
        else:
            nparts = 1
            part = workspace.get("conv.dw", (p.G, p.kg, p.og), x.dtype)
            gemm(cols, permuted_view(gt, (0, 2, 1)), part)
        args = (_flat(part), flat_dw, nparts, p.G, p.kg, p.og, int(k > 0))
        _go(_add_weight_part, dw_out.size, *args)
