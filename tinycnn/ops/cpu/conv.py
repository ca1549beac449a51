"""CPU kernels of conv2d (C-contiguous NCHW arrays in, preallocated ``out`` written).

Three families, chosen per call by ``tinycnn/ops/conv.py``:

* **im2col + GEMM** for wide convolutions.  Per *tile* of the output (a few whole images, or a
  slab of output rows of a large one), a thread writes the tile's receptive fields into a
  column matrix ``(C*kH*kW, pixels)`` and multiplies it with single-threaded BLAS while it is in
  its cache (below).
* **Winograd F(2x2, 3x3)** (``winograd_forward``, ``winograd_backward_input`` in
  ``_winograd.py``, ``winograd_backward_weight`` in ``_winograd_weight.py``) for wide 3x3
  stride-1 convolutions: 16 GEMMs with 2.25x fewer multiply-adds than im2col's one.
* **direct** loops (``conv2d_forward``, ``conv2d_backward_input``, ``conv2d_backward_weight``)
  for depthwise, grouped and few-channel convolutions, where GEMMs would be tiny.  A task copies
  its input planes into a zero-padded scratch buffer (L1/L2) once, so inner loops have no bounds
  tests.  With stride 1 the output lives on a "wide" grid whose rows have the padded width
  ``Wp``: a tap ``(c, i, j)`` is then one contiguous run ``xp[off : off + L]`` with
  ``off = c*Hp*Wp + i*dh*Wp + j*dw``; the ``Wp - OW`` extra columns per row are dropped on
  output.  Taps are applied four at a time (``_taps_axpy``, ``_taps_dot``), so one pass over the
  accumulator does four FMAs per load/store pair instead of one.

Index arithmetic in inner loops goes through slices (``row = a[start:]``) indexed by the loop
counter: Numba wraps negative indices, and only an index LLVM can prove >= 0 lets a loop
vectorise (measured 5-10x on these loops).
"""

from __future__ import annotations

import numba
import numpy as np

from . import _blas as blas
from ._numba import njit, prange
from ._winograd import winograd_backward_input, winograd_forward  # noqa: F401 - kernels of conv
from ._winograd_weight import winograd_backward_weight  # noqa: F401 - a kernel of conv


# --------------------------------------------------------------------------------- helpers
@njit
def _axpy(dst, a, src, count, stride):
    """``dst[t] += a * src[t*stride]``."""
    if stride == 1:
        for t in range(count):
            dst[t] += a * src[t]
    elif stride == 2:
        for t in range(count):
            dst[t] += a * src[2 * t]
    else:
        for t in range(count):
            dst[t] += a * src[t * stride]


@njit
def _axpy_scatter(dst, a, src, count, stride):
    """``dst[t*stride] += a * src[t]``."""
    if stride == 1:
        for t in range(count):
            dst[t] += a * src[t]
    elif stride == 2:
        for t in range(count):
            dst[2 * t] += a * src[t]
    else:
        for t in range(count):
            dst[t * stride] += a * src[t]


@njit
def _dot(s, a, src, count, stride):
    """``s + sum_t a[t] * src[t*stride]`` (``s`` typed like the arrays: float32 stays float32
    and vectorises at full width)."""
    if stride == 1:
        for t in range(count):
            s += a[t] * src[t]
    elif stride == 2:
        for t in range(count):
            s += a[t] * src[2 * t]
    else:
        for t in range(count):
            s += a[t] * src[t * stride]
    return s


@njit
def _taps_axpy(acc, wv, src, offs, count):
    """``acc[t] += sum_k wv[k] * src[offs[k] + t]`` for ``t < count``, four taps per pass."""
    nt = wv.shape[0]
    k = 0
    while k + 4 <= nt:
        a0, a1, a2, a3 = wv[k], wv[k + 1], wv[k + 2], wv[k + 3]
        s0, s1 = src[offs[k] :], src[offs[k + 1] :]
        s2, s3 = src[offs[k + 2] :], src[offs[k + 3] :]
        for t in range(count):
            acc[t] += a0 * s0[t] + a1 * s1[t] + a2 * s2[t] + a3 * s3[t]
        k += 4
    while k < nt:
        a0, s0 = wv[k], src[offs[k] :]
        for t in range(count):
            acc[t] += a0 * s0[t]
        k += 1


@njit
def _taps_axpy2(acc0, acc1, wv0, wv1, src, offs, count):
    """:func:`_taps_axpy` for two accumulators with their own weights over the same runs: each
    loaded input feeds two FMAs (the loop is bound by loads, not by arithmetic)."""
    nt = wv0.shape[0]
    k = 0
    while k + 4 <= nt:
        a0, a1, a2, a3 = wv0[k], wv0[k + 1], wv0[k + 2], wv0[k + 3]
        b0, b1, b2, b3 = wv1[k], wv1[k + 1], wv1[k + 2], wv1[k + 3]
        s0, s1 = src[offs[k] :], src[offs[k + 1] :]
        s2, s3 = src[offs[k + 2] :], src[offs[k + 3] :]
        for t in range(count):
            x0, x1, x2, x3 = s0[t], s1[t], s2[t], s3[t]
            acc0[t] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
            acc1[t] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
        k += 4
    while k < nt:
        a0, b0, s0 = wv0[k], wv1[k], src[offs[k] :]
        for t in range(count):
            acc0[t] += a0 * s0[t]
            acc1[t] += b0 * s0[t]
        k += 1


@njit
def _copy(dst, src, count):
    for t in range(count):
        dst[t] = src[t]


@njit
def _taps_dot(res, zero, g, src, offs, count):
    """``res[k] += sum_t g[t] * src[offs[k] + t]`` for every tap ``k``, four taps per pass."""
    nt = res.shape[0]
    k = 0
    while k + 4 <= nt:
        s0, s1 = src[offs[k] :], src[offs[k + 1] :]
        s2, s3 = src[offs[k + 2] :], src[offs[k + 3] :]
        r0 = r1 = r2 = r3 = zero
        for t in range(count):
            v = g[t]
            r0 += v * s0[t]
            r1 += v * s1[t]
            r2 += v * s2[t]
            r3 += v * s3[t]
        res[k] += r0
        res[k + 1] += r1
        res[k + 2] += r2
        res[k + 3] += r3
        k += 4
    while k < nt:
        res[k] += _dot(zero, g, src[offs[k] :], count, 1)
        k += 1


@njit
def _add4(res, k, p0, p1, p2, p3):
    """``res[k : k+4] += (p0, p1, p2, p3)``: four sums kept in registers, stored."""
    res[k] += p0
    res[k + 1] += p1
    res[k + 2] += p2
    res[k + 3] += p3


@njit
def _taps_dot2(res0, res1, zero, g0, g1, src, offs, count):
    """:func:`_taps_dot` for two gradients over the same runs (eight sums in registers)."""
    nt = res0.shape[0]
    k = 0
    while k + 4 <= nt:
        s0, s1 = src[offs[k] :], src[offs[k + 1] :]
        s2, s3 = src[offs[k + 2] :], src[offs[k + 3] :]
        r0 = r1 = r2 = r3 = q0 = q1 = q2 = q3 = zero
        for t in range(count):
            u, v = g0[t], g1[t]
            x0, x1, x2, x3 = s0[t], s1[t], s2[t], s3[t]
            r0 += u * x0
            r1 += u * x1
            r2 += u * x2
            r3 += u * x3
            q0 += v * x0
            q1 += v * x1
            q2 += v * x2
            q3 += v * x3
        _add4(res0, k, r0, r1, r2, r3)
        _add4(res1, k, q0, q1, q2, q3)
        k += 4
    while k < nt:
        res0[k] += _dot(zero, g0, src[offs[k] :], count, 1)
        res1[k] += _dot(zero, g1, src[offs[k] :], count, 1)
        k += 1


@njit
def _taps_dot4(res0, res1, res2, res3, zero, g0, g1, g2, g3, src, offs, count):
    """:func:`_taps_dot` for four gradients over the same runs: sixteen sums in registers, so
    each pass loads eight values for sixteen multiply-adds (:func:`_taps_dot2`: six for eight;
    measured in the README, "Direct kernels")."""
    nt = res0.shape[0]
    k = 0
    while k + 4 <= nt:
        s0, s1 = src[offs[k] :], src[offs[k + 1] :]
        s2, s3 = src[offs[k + 2] :], src[offs[k + 3] :]
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
        c0 = c1 = c2 = c3 = d0 = d1 = d2 = d3 = zero
        for t in range(count):
            u, v, w, z = g0[t], g1[t], g2[t], g3[t]
            x0, x1, x2, x3 = s0[t], s1[t], s2[t], s3[t]
            a0 += u * x0
            a1 += u * x1
            a2 += u * x2
            a3 += u * x3
            b0 += v * x0
            b1 += v * x1
            b2 += v * x2
            b3 += v * x3
            c0 += w * x0
            c1 += w * x1
            c2 += w * x2
            c3 += w * x3
            d0 += z * x0
            d1 += z * x1
            d2 += z * x2
            d3 += z * x3
        _add4(res0, k, a0, a1, a2, a3)
        _add4(res1, k, b0, b1, b2, b3)
        _add4(res2, k, c0, c1, c2, c3)
        _add4(res3, k, d0, d1, d2, d3)
        k += 4
    while k < nt:
        s = src[offs[k] :]
        res0[k] += _dot(zero, g0, s, count, 1)
        res1[k] += _dot(zero, g1, s, count, 1)
        res2[k] += _dot(zero, g2, s, count, 1)
        res3[k] += _dot(zero, g3, s, count, 1)
        k += 1


# ------------------------------------------------------------------------ im2col + GEMM
# The columns of one *tile* (a few whole images, or a slab of output rows of one large image)
# are built, multiplied and dropped by one thread while they sit in its cache; the threads
# work on different tiles side by side.  Written for the whole batch at once, the columns are
# C*kH*kW times the input: written to memory and read back (measured: 9 ms of im2col and a
# 10 ms GEMM for a 32->64 3x3 layer at batch 128, against 4 ms for the tiled layer's columns).
# A tile's columns take at most TILE_BYTES when whole images fit; an image whose columns
# exceed SLAB_BYTES is split into slabs of output rows of about TILE_BYTES.
TILE_BYTES = 1 << 20
SLAB_BYTES = 4 << 20
# ... but a tile of small images takes more of them, up to SLAB_BYTES, until it has at least
# this many columns: the GEMM of one 7x7 image (49 columns) wastes most of a BLAS kernel.
MIN_TILE_COLS = 256
UINT = np.uint64  # unsigned loop offsets (see _tile_columns)


def _tiles(n, rows, oh, ow, itemsize) -> list[tuple[int, int, int, int]]:
    """``(n0, nb, y0, ny)`` tiles covering the output: images ``n0 .. n0+nb``, output rows
    ``y0 .. y0+ny`` (``nb == 1`` when ``ny < oh``)."""
    image = rows * oh * ow * itemsize
    if image <= SLAB_BYTES:
        nb = max(1, TILE_BYTES // max(image, 1))
        while nb * oh * ow < MIN_TILE_COLS and (nb + 1) * image <= SLAB_BYTES:
            nb += 1
        nb = max(1, min(nb, n))
        return [(n0, min(nb, n - n0), 0, oh) for n0 in range(0, n, nb)]
    ny = max(1, min(oh, TILE_BYTES // (rows * ow * itemsize)))
    return [(n0, 1, y0, min(ny, oh - y0)) for n0 in range(n) for y0 in range(0, oh, ny)]


@njit
def _load_block(x, n0, bn, c0, cg, r0, hrows, ph, pw, wp, cstride, xp, pitch, image_step):
    """Padded rows ``r0 .. r0+hrows`` (``wp`` wide) of images ``n0 .. n0+bn``, channels
    ``c0 .. c0+cg``, into the zeroed ``xp``: row ``r`` of image ``b`` of channel ``c`` at
    ``c*cstride + b*image_step + r*pitch``; what the output never reads is cut.  Images one
    below the other: ``pitch = wp``, ``image_step = hrows*wp``; side by side (the direct
    forward): ``pitch = bn*wp``, ``image_step = wp``.  The direct kernels load whole padded
    images (``r0 = 0, hrows = hp``), an im2col tile its slab of rows."""
    H, W = x.shape[2], x.shape[3]
    lo, hi = max(0, r0 - ph), min(H, r0 + hrows - ph)
    if hi <= lo or wp <= pw:
        return
    u_cols, u_pitch, u_w = UINT(min(W, wp - pw)), UINT(pitch), UINT(W)
    for c in range(cg):
        for b in range(bn):
            dst = xp[c * cstride + b * image_step + (lo + ph - r0) * pitch + pw :]
            src = x[n0 + b, c0 + c].reshape(-1)[lo * W :]
            for y in range(UINT(hi - lo)):
                do, so = y * u_pitch, y * u_w
                for t in range(u_cols):
                    dst[do + t] = src[so + t]


@njit
def _tile_columns(xp, nb, plane, row0, kh, kw, sh, sw, dh, dw, wp, ny, ow, cols, adjoint):
    """``cols[r, (b*ny + y)*ow + z] = xp[c, b, row0 + y*sh + i*dh, z*sw + j*dw]`` for the row
    ``r = (c*kh + i)*kw + j``: the tile's column matrix, ``(C*kh*kw, nb*ny*ow)``.  With
    ``adjoint`` the reverse (col2im): ``xp`` += every column at its receptive field.

    The offsets inside a row are unsigned (``UINT``): Numba then drops its negative-index
    wrap-around, and the short copies vectorise (2x faster than signed offsets)."""
    u_ow, u_pitch, u_sw = UINT(ow), UINT(sh * wp), UINT(sw)
    for r in range(cols.shape[0]):
        j = r % kw
        i = (r // kw) % kh
        c = r // (kw * kh)
        for b in range(nb):
            img = xp[(c * nb + b) * plane + (row0 + i * dh) * wp + j * dw :]
            col = cols[r, b * ny * ow :]
            for y in range(UINT(ny)):
                si, sc = y * u_pitch, y * u_ow
                if adjoint and sw == 1:
                    for t in range(u_ow):
                        img[si + t] += col[sc + t]
                elif adjoint:
                    for t in range(u_ow):
                        img[si + t * u_sw] += col[sc + t]
                elif sw == 1:
                    for t in range(u_ow):
                        col[sc + t] = img[si + t]
                else:
                    for t in range(u_ow):
                        col[sc + t] = img[si + t * u_sw]


@njit
def _columns(x, n0, nb, y0, ny, ph, pw, kh, kw, sh, sw, dh, dw, wp, ow, xp, cols):
    """The columns of the tile (images ``n0 .. n0+nb``, output rows ``y0 .. y0+ny``) of ``x``:
    its padded input rows into ``xp`` (``(C, nb, hrows, wp)``), then :func:`_tile_columns`."""
    C = x.shape[1]
    hrows = padded_extent(ny, ow, kh, kw, sh, sw, dh, dw)[0]
    xp[: C * nb * hrows * wp] = 0.0
    _load_block(x, n0, nb, 0, C, y0 * sh, hrows, ph, pw, wp, nb * hrows * wp, xp, wp, hrows * wp)
    _tile_columns(xp, nb, hrows * wp, 0, kh, kw, sh, sw, dh, dw, wp, ny, ow, cols, False)


@njit
def _store_tile(res, bias, n0, nb, y0, ny, out):
    """``out[n0 + b, o, y0 : y0+ny, :] = res[o, b*ny*ow : (b+1)*ny*ow] + bias[o]`` (both runs
    contiguous)."""
    OW = out.shape[3]
    run = ny * OW
    for o in range(res.shape[0]):
        bo = bias[o]
        for b in range(nb):
            src = res[o, b * run : (b + 1) * run]
            dst = out[n0 + b, o].reshape(-1)[y0 * OW : y0 * OW + run]
            for t in range(run):
                dst[t] = src[t] + bo


@njit
def _load_grad_tile(g, n0, nb, y0, ny, gt):
    """``gt[o, b*ny*ow : (b+1)*ny*ow] = g[n0 + b, o, y0 : y0+ny, :]``: the tile's upstream
    gradient in the layout of its GEMM."""
    OW = g.shape[3]
    run = ny * OW
    for o in range(gt.shape[0]):
        for b in range(nb):
            src = g[n0 + b, o].reshape(-1)[y0 * OW : y0 * OW + run]
            dst = gt[o, b * run : (b + 1) * run]
            for t in range(run):
                dst[t] = src[t]


@njit
def _crop_tile(dxp, n0, nb, hp, wp, ph, pw, dx):
    """``dx[n0 + b, c]`` = the unpadded part of ``dxp[c, b]`` ((C, nb, hp, wp)); input pixels
    past the padded extent (never read by the output) get zero."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    rows, cols = min(H, hp - ph), min(W, wp - pw)
    u_cols, u_wp, u_w = UINT(max(cols, 0)), UINT(wp), UINT(W)
    for c in range(C):
        for b in range(nb):
            plane = dx[n0 + b, c].reshape(-1)
            if rows < H or cols < W:
                plane[:] = 0.0
            src = dxp[((c * nb + b) * hp + ph) * wp + pw :]
            for y in range(UINT(max(rows, 0))):
                so, do = y * u_wp, y * u_w
                for t in range(u_cols):
                    plane[do + t] = src[so + t]


@njit
def _add_lanes(lanes, out):
    """``out[g, o, k] = sum over lanes of lanes[l, g, k, o]``, in lane order: the partial
    ``dW^T`` of each lane added up (into ``lanes[0]``), then transposed in 32 x 32 blocks."""
    nl, G, kg, og = lanes.shape
    total = lanes[0].reshape(-1)
    for lane in range(1, nl):
        src = lanes[lane].reshape(-1)
        for t in range(total.size):
            total[t] += src[t]
    acc = lanes[0]
    for gi in range(G):
        for k0 in range(0, kg, 32):
            for o0 in range(0, og, 32):
                for o in range(o0, min(og, o0 + 32)):
                    dst = out[gi, o]
                    for k in range(k0, min(kg, k0 + 32)):
                        dst[k] = acc[gi, k, o]


class _Im2col:
    """The geometry of one im2col convolution and the per-tile steps its three kernels share."""

    def __init__(self, x_shape, w_shape, out_hw, sh, sw, ph, pw, dh, dw, groups, dtype):
        self.N, self.C = int(x_shape[0]), int(x_shape[1])
        cout, cg, self.kh, self.kw = (int(s) for s in w_shape)
        self.oh, self.ow = (int(s) for s in out_hw)
        self.sh, self.sw, self.ph, self.pw, self.dh, self.dw = sh, sw, ph, pw, dh, dw
        self.G, self.og, self.kg = groups, cout // groups, cg * self.kh * self.kw
        self.extent = (self.kh, self.kw, sh, sw, dh, dw)  # padded_extent's kernel arguments
        self.hp, self.wp = padded_extent(self.oh, self.ow, *self.extent)
        self.dw_shape = (groups, self.kg, self.og)
        self.taps = (self.kh, self.kw, sh, sw, dh, dw, self.wp)
        self.dtype = np.dtype(dtype)
        self.tiles = _tiles(self.N, self.G * self.kg, self.oh, self.ow, self.dtype.itemsize)

    def scratch(self, tiles) -> dict:
        """Flat buffers of this thread's workspace, sized for the largest of ``tiles``."""
        from . import workspace

        shapes = {(nb, ny) for _, nb, _, ny in tiles}  # one or two: padded_extent once each
        L = max(nb * ny * self.ow for nb, ny in shapes)
        rows = max(nb * padded_extent(ny, self.ow, *self.extent)[0] for nb, ny in shapes)
        nb = max(nb for nb, _ in shapes)
        sizes = {
            "x": self.C * rows * self.wp,
            "cols": self.G * self.kg * L,
            "grad": self.G * self.og * L,
            "dx": self.C * nb * self.hp * self.wp,
            "dw": self.G * self.kg * self.og,
        }
        return {k: workspace.get("conv.tile_" + k, (n,), self.dtype) for k, n in sizes.items()}

    def columns(self, x, tile, buf):
        """The tile's columns, ``(G, kg, L)``."""
        n0, nb, y0, ny = tile
        L = nb * ny * self.ow
        cols = buf["cols"][: self.G * self.kg * L].reshape(self.G * self.kg, L)
        _columns(x, n0, nb, y0, ny, self.ph, self.pw, *self.taps, self.ow, buf["x"], cols)
        return cols.reshape(self.G, self.kg, L)

    def grad(self, g, tile, buf):
        """The tile's upstream gradient, ``(G, og, L)``."""
        n0, nb, y0, ny = tile
        L = nb * ny * self.ow
        gt = buf["grad"][: self.G * self.og * L].reshape(self.G * self.og, L)
        _load_grad_tile(g, n0, nb, y0, ny, gt)
        return gt.reshape(self.G, self.og, L)

    def by_image(self, parts):
        """The tiles split into at most ``parts`` runs that never cut an image (each image's
        input gradient is assembled by one thread)."""
        starts = [i for i, (_, _, y0, _) in enumerate(self.tiles) if y0 == 0]
        edges = [run[0] for run in blas.split(starts, parts)] + [len(self.tiles)]
        return [self.tiles[a:b] for a, b in zip(edges[:-1], edges[1:])]


def _threads() -> int:
    return numba.get_num_threads()


def im2col_forward(x, w, bias, sh, sw, ph, pw, dh, dw, groups, out):
    """``out = conv2d(x, w) + bias`` through tiled im2col + GEMM (the ``direct`` kernels'
    arguments)."""
    p = _Im2col(x.shape, w.shape, out.shape[2:], sh, sw, ph, pw, dh, dw, groups, x.dtype)
    if not p.tiles:
        return
    wg = w.reshape(p.G, p.og, p.kg)

    def run(tiles):
        buf = p.scratch(tiles)
        for tile in tiles:
            n0, nb, y0, ny = tile
            cols = p.columns(x, tile, buf)
            res = buf["grad"][: p.G * p.og * cols.shape[2]].reshape(p.G, p.og, -1)
            np.matmul(wg, cols, out=res)
            _store_tile(res.reshape(p.G * p.og, -1), bias, n0, nb, y0, ny, out)

    blas.parallel(run, blas.split(p.tiles, _threads()))


def im2col_backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, dx):
    """``dx`` of :func:`im2col_forward`: per tile, the column gradient ``W^T @ g`` added back
    onto the tile's receptive fields (``col2im``), then cropped to the input."""
    p = _Im2col(dx.shape, w.shape, g.shape[2:], sh, sw, ph, pw, dh, dw, groups, dx.dtype)
    if not p.tiles:
        return
    wt = np.swapaxes(w.reshape(p.G, p.og, p.kg), 1, 2)  # (G, kg, og), a transposed view

    def run(tiles):
        buf = p.scratch(tiles)
        for tile in tiles:
            n0, nb, y0, ny = tile
            gt = p.grad(g, tile, buf)
            dcols = buf["cols"][: p.G * p.kg * gt.shape[2]].reshape(p.G, p.kg, -1)
            np.matmul(wt, gt, out=dcols)
            dxp = buf["dx"][: p.C * nb * p.hp * p.wp]
            if y0 == 0:
                dxp[:] = 0.0
            flat = dcols.reshape(p.G * p.kg, -1)
            _tile_columns(dxp, nb, p.hp * p.wp, y0 * sh, *p.taps, ny, p.ow, flat, True)
            if y0 + ny == p.oh:
                _crop_tile(dxp, n0, nb, p.hp, p.wp, ph, pw, dx)

    blas.parallel(run, p.by_image(_threads()))


def im2col_backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, dw_out):
    """``dw_out`` of :func:`im2col_forward`: per tile ``cols @ g^T`` (``dW^T``: up to 25 %
    faster in OpenBLAS than ``g @ cols^T`` on these shapes), summed into the partials of
    :func:`_blas.lanes`, then the partials in order."""
    p = _Im2col(x.shape, dw_out.shape, g.shape[2:], sh, sw, ph, pw, dh, dw, groups, x.dtype)
    if not p.tiles:
        dw_out[...] = 0.0
        return
    from . import workspace

    runs = blas.lanes(p.tiles, dw_out.size * dw_out.itemsize)
    lanes = workspace.get("conv.lanes", (len(runs), *p.dw_shape), x.dtype)

    def run(lane_ids):
        buf = p.scratch([t for lane in lane_ids for t in runs[lane]])
        part = buf["dw"].reshape(p.dw_shape)
        for lane in lane_ids:
            for k, tile in enumerate(runs[lane]):
                cols, gt = p.columns(x, tile, buf), p.grad(g, tile, buf)
                dst = lanes[lane] if k == 0 else part
                np.matmul(cols, np.swapaxes(gt, 1, 2), out=dst)
                if k:
                    lanes[lane] += part

    blas.parallel(run, blas.split(list(range(len(runs))), _threads()))
    _add_lanes(lanes, dw_out.reshape(p.G, p.og, p.kg))


@njit(parallel=True)
def nchw_to_cnhw(src, out):
    """``out[c, n, :] = src[n, c, :]``."""
    N, C, HW = src.shape
    for task in prange(N * C):
        n = task // C
        c = task % C
        s = src[n, c]
        o = out[c, n]
        for t in range(HW):
            o[t] = s[t]


@njit(parallel=True)
def add_bias(y, bias):
    """``y[n, c, :] += bias[c]`` in place."""
    N, C, HW = y.shape
    for task in prange(N * C):
        b = bias[task % C]
        o = y[task // C, task % C]
        for t in range(HW):
            o[t] += b


@njit(parallel=True)
def bias_grad(g, out):
    """``out[c] = sum over n, hw of g[n, c, hw]`` (float64 partial sums); a task owns one
    channel."""
    N, C, HW = g.shape
    for c in prange(C):
        s = 0.0
        for n in range(N):
            row = g[n, c]
            part = row[0] * 0
            for t in range(HW):
                part += row[t]
            s += part
        out[c] = s


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = a @ b`` (batched over leading dims, broadcasting) through NumPy's BLAS, with
    tinycnn's threads (see ``_blas.py``)."""
    return blas.matmul(a, b, out)


# --------------------------------------------------------------------------------- direct
# Runs of at most this many accumulator elements are padded up to a multiple of ROUND, so the
# vectorised loops have no scalar remainder (the padding lands in never-read garbage columns).
ROUND = 32
# Batch chunks of the direct weight gradient, each with its partial sum: a constant, so that
# the order of the sums (and the float result) does not follow the thread count; enough for
# the threads of most machines, few enough that adding the partials costs nothing.
WEIGHT_CHUNKS = 8
# Images per task on the wide grid: planes of a few images back to back make the inner loops
# long enough (>= ~1024 elements) for the loop set-up to vanish in the work.
WIDE_TARGET = 1024


@njit
def padded_extent(oh, ow, kh, kw, sh, sw, dh, dw):
    """Rows and columns of the padded input that the output actually reads."""
    return (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1


@njit
def _block(n, groups, plane, unit):
    """Images per task: enough to fill WIDE_TARGET, while leaving >= 8 tasks when possible."""
    if not unit:
        return 1
    b = max(1, min(n, (WIDE_TARGET + plane - 1) // plane))
    while b > 1 and ((n + b - 1) // b) * groups < 8:
        b -= 1
    return b


@njit
def _round(count):
    return (count + ROUND - 1) // ROUND * ROUND


@njit
def _load_grad_block(g, n0, bn, o, pitch, image_step, dst):
    """Upstream gradient of channel ``o``, images ``n0 .. n0+bn``, on the wide grid (row ``y``
    of image ``b`` at ``b*image_step + y*pitch``), zero everywhere else in ``dst``."""
    OH, OW = g.shape[2], g.shape[3]
    dst[:] = 0.0
    for b in range(bn):
        for y in range(OH):
            row = dst[b * image_step + y * pitch :]
            src = g[n0 + b, o, y]
            for z in range(OW):
                row[z] = src[z]


@njit
def _tap_offsets(cg, kh, kw, cstride, wp, dh, dw):
    """Flat offsets ``c*cstride + i*dh*wp + j*dw`` of the taps, in the weight's (c, i, j)
    order."""
    offs = np.empty(cg * kh * kw, dtype=np.int64)
    for c in range(cg):
        for i in range(kh):
            for j in range(kw):
                offs[(c * kh + i) * kw + j] = c * cstride + i * dh * wp + j * dw
    return offs


def conv2d_forward(x, w, bias, sh, sw, ph, pw, dh, dw, groups, out):
    """Direct convolution: ``out[n, o] = bias[o] + sum_{c in group(o), i, j}
    w[o, c, i, j] * xpad[n, c, y*sh + i*dh, z*sw + j*dw]``."""
    _forward(x, w, bias, sh, sw, ph, pw, dh, dw, groups, _threads(), out)


@njit(parallel=True)
def _forward(x, w, bias, sh, sw, ph, pw, dh, dw, groups, nthreads, out):
    # a task is a block of images of one group; a thread runs a range of tasks with its own
    # scratch (allocated once, not per task)
    N = x.shape[0]
    Cout, cg, kh, kw = w.shape
    OH, OW = out.shape[2], out.shape[3]
    og = Cout // groups
    hp, wp = padded_extent(OH, OW, kh, kw, sh, sw, dh, dw)
    plane = hp * wp
    unit = sh == 1 and sw == 1
    B = _block(N, groups, plane, unit)
    # the block's images side by side: a row of the wide grid crosses all of them, so only
    # the Wp - OW columns after each image are wasted, not also the rows below its output
    pitch = B * wp
    cstride = hp * pitch
    step = pitch if unit else OW  # row pitch of the accumulator
    offs = _tap_offsets(cg, kh, kw, cstride, pitch, dh, dw)
    span = (OH - 1) * pitch + (B - 1) * wp + OW  # the wide grid of a whole block
    ntasks = (N + B - 1) // B * groups
    nchunks = max(1, min(ntasks, nthreads))
    for chunk in prange(nchunks):
        xp = np.empty(cg * cstride + ROUND, dtype=x.dtype)
        acc = np.empty((2, _round(span) if unit else OH * OW), dtype=x.dtype)
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            n0 = (task // groups) * B
            g = task % groups
            bn = min(B, N - n0)
            xp[:] = 0.0
            _load_block(x, n0, bn, g * cg, cg, 0, hp, ph, pw, wp, cstride, xp, pitch, wp)
            count = _round((OH - 1) * pitch + (bn - 1) * wp + OW) if unit else OH * OW
            for o in range(g * og, (g + 1) * og, 2):
                pair = o + 1 < (g + 1) * og
                acc[0, :count] = bias[o]
                if pair:
                    acc[1, :count] = bias[o + 1]
                if unit and pair:  # every tap is one contiguous run over the wide grid
                    _taps_axpy2(
                        acc[0], acc[1], w[o].reshape(-1), w[o + 1].reshape(-1), xp, offs, count
                    )
                elif unit:
                    _taps_axpy(acc[0], w[o].reshape(-1), xp, offs, count)
                else:
                    for q in range(2 if pair else 1):
                        for c in range(cg):
                            for i in range(kh):
                                for j in range(kw):
                                    for y in range(OH):
                                        r = (y * sh + i * dh) * pitch + j * dw  # B = 1
                                        row = xp[c * cstride + r :]
                                        _axpy(acc[q, y * OW :], w[o + q, c, i, j], row, OW, sw)
                for q in range(2 if pair else 1):
                    for b in range(bn):
                        for y in range(OH):
                            _copy(out[n0 + b, o + q, y], acc[q, y * step + b * wp :], OW)


def conv2d_backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, dx):
    """``dx`` (N, C, H, W) of a direct convolution.

    Stride 1 is a gather (a correlation of the upstream gradient with the flipped kernel):
    each output channel's gradient sits on the wide grid after a zero margin of ``maxoff``, so
    ``dxpad[c, u] = sum_{o, tap} w[o, c, tap] * gz[o, maxoff - off(tap) + u]`` reads contiguous
    runs and writes each ``dxpad`` element once per four taps.  The runs cross the zero
    margin, where an Inf or NaN weight would make NaN of ``0 * Inf``: such a call is handed to
    im2col's, which multiplies only the real terms."""
    if sh == 1 and sw == 1 and not _finite(w):
        im2col_backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, dx)
        return
    _backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, _threads(), dx)


FINITE_PARALLEL_MIN = 1 << 16


def _finite(*arrays) -> bool:
    """Whether every value of ``arrays`` is finite (one pass each; on every thread from
    FINITE_PARALLEL_MIN values: a 32->32 layer's input and gradient at batch 128, 8 million
    values, took 1.2 ms on one thread, 9 % of its weight gradient)."""
    from ._winograd import finite

    return all(finite(a, parallel=a.size >= FINITE_PARALLEL_MIN) for a in arrays)


@njit(parallel=True)
def _backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, nthreads, dx):
    N, C, H, W = dx.shape
    Cout, cg, kh, kw = w.shape
    OH, OW = g.shape[2], g.shape[3]
    og = Cout // groups
    hp, wp = padded_extent(OH, OW, kh, kw, sh, sw, dh, dw)
    plane = hp * wp
    unit = sh == 1 and sw == 1
    B = _block(N, groups, plane, unit)
    maxoff = (kh - 1) * dh * wp + (kw - 1) * dw
    span = maxoff + B * plane + ROUND  # one output channel's zero-margined gradient block
    ntap = kh * kw
    offs = np.empty(og * ntap, dtype=np.int64)  # (o, i, j) -> where its run starts in gz
    for o in range(og):
        for i in range(kh):
            for j in range(kw):
                offs[o * ntap + i * kw + j] = o * span + maxoff - i * dh * wp - j * dw
    rows, cols = min(H, hp - ph), min(W, wp - pw)
    ntasks = (N + B - 1) // B * groups
    nchunks = max(1, min(ntasks, nthreads))
    for chunk in prange(nchunks):
        dxp = np.empty((2, B * plane + ROUND), dtype=dx.dtype)
        wv = np.empty((2, og * ntap), dtype=dx.dtype)
        gz = np.zeros(og * span if unit else 0, dtype=dx.dtype)
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            n0 = (task // groups) * B
            gi = task % groups
            bn = min(B, N - n0)
            if unit:
                for o in range(og):
                    dst = gz[o * span + maxoff : o * span + maxoff + B * plane]
                    _load_grad_block(g, n0, bn, gi * og + o, wp, plane, dst)
            for c in range(0, cg, 2):
                pair = c + 1 < cg
                dxp[:] = 0.0
                for q in range(2 if pair else 1):
                    for o in range(og):
                        wv[q, o * ntap : (o + 1) * ntap] = w[gi * og + o, c + q].reshape(-1)
                if unit and pair:
                    _taps_axpy2(dxp[0], dxp[1], wv[0], wv[1], gz, offs, _round(bn * plane))
                elif unit:
                    _taps_axpy(dxp[0], wv[0], gz, offs, _round(bn * plane))
                else:
                    for q in range(2 if pair else 1):
                        for o in range(gi * og, (gi + 1) * og):
                            for i in range(kh):
                                for j in range(kw):
                                    for y in range(OH):
                                        row = dxp[q, (y * sh + i * dh) * wp + j * dw :]
                                        _axpy_scatter(row, w[o, c + q, i, j], g[n0, o, y], OW, sw)
                for q in range(2 if pair else 1):
                    for b in range(bn):
                        dst = dx[n0 + b, gi * cg + c + q]
                        if rows < H or cols < W:
                            dst[:] = 0.0  # pixels past the padded extent: never read
                        for iy in range(rows):
                            _copy(dst[iy], dxp[q, b * plane + (iy + ph) * wp + pw :], cols)


def conv2d_backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, dw_out):
    """``dw_out[o, c, i, j] = sum_{n, y, z} g[n, o, y, z] * xpad[n, c, y*sh + i*dh, z*sw + j*dw]``.

    The batch is split into WEIGHT_CHUNKS chunks, each summing into its own partial gradient
    (no races, every thread busy even with few output channels); the partials are added at
    the end, in order.  The chunks follow the batch alone, never the thread count, so the
    result is the same at any thread count.  With stride 1 the sums run over whole padded
    rows, the columns past the output with a zero gradient: an Inf or NaN in ``x`` would make
    NaN of that ``0 * Inf``, so such a call is handed to im2col's, which sums only the real
    products."""
    if sh == 1 and sw == 1 and not _finite(x):
        im2col_backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, dw_out)
        return
    nchunks = max(1, min(x.shape[0], WEIGHT_CHUNKS))
    _backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, nchunks, dw_out)


@njit(parallel=True)
def _backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, nchunks, dw_out):
    N = x.shape[0]
    Cout, cg, kh, kw = dw_out.shape
    OH, OW = g.shape[2], g.shape[3]
    og = Cout // groups
    hp, wp = padded_extent(OH, OW, kh, kw, sh, sw, dh, dw)
    plane = hp * wp
    unit = sh == 1 and sw == 1
    B = max(1, min(_block(N, 1, plane, unit), N // nchunks))
    pitch = B * wp  # the block's images side by side, as in the forward
    cstride = hp * pitch
    offs = _tap_offsets(cg, kh, kw, cstride, pitch, dh, dw)
    part = np.zeros((nchunks, Cout, cg * kh * kw), dtype=dw_out.dtype)
    for chunk in prange(nchunks):
        zero = np.zeros(1, dtype=dw_out.dtype)[0]
        xp = np.empty(cg * cstride + ROUND, dtype=x.dtype)
        gw = np.empty((4, cstride + ROUND), dtype=x.dtype)
        first, last = chunk * N // nchunks, (chunk + 1) * N // nchunks
        for n0 in range(first, last, B):
            bn = min(B, last - n0)
            count = _round((OH - 1) * pitch + (bn - 1) * wp + OW)
            for gi in range(groups):
                xp[:] = 0.0
                _load_block(x, n0, bn, gi * cg, cg, 0, hp, ph, pw, wp, cstride, xp, pitch, wp)
                if unit:  # output channels by four: each loaded input feeds four sums
                    o, end = gi * og, (gi + 1) * og
                    while o < end:
                        q = min(4, end - o)
                        for r in range(q):
                            _load_grad_block(g, n0, bn, o + r, pitch, wp, gw[r])
                        dst = part[chunk]
                        if q == 4:
                            _taps_dot4(
                                dst[o], dst[o + 1], dst[o + 2], dst[o + 3],
                                zero, gw[0], gw[1], gw[2], gw[3], xp, offs, count,
                            )  # fmt: skip
                        elif q >= 2:
                            _taps_dot2(dst[o], dst[o + 1], zero, gw[0], gw[1], xp, offs, count)
                            if q == 3:
                                _taps_dot(dst[o + 2], zero, gw[2], xp, offs, count)
                        else:
                            _taps_dot(dst[o], zero, gw[0], xp, offs, count)
                        o += q
                    continue
                for o in range(gi * og, (gi + 1) * og):
                    for c in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                s = zero
                                for y in range(OH):
                                    row = xp[c * cstride + (y * sh + i * dh) * wp + j * dw :]
                                    s = _dot(s, g[n0, o, y], row, OW, sw)
                                part[chunk, o, (c * kh + i) * kw + j] += s
    flat = dw_out.reshape(Cout, cg * kh * kw)
    flat[:] = 0.0
    for chunk in range(nchunks):
        flat += part[chunk]
