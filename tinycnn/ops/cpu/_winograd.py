"""Winograd F(2x2, 3x3): 3x3, stride-1 convolutions in 16 small GEMMs instead of one of 9x.

A 2x2 block of outputs depends on a 4x4 block of the padded input ``d``.  With
``U = G g G^T`` (the 3x3 kernel ``g`` taken to 4x4) and ``V = B^T d B``, the outputs are
``Y = A^T (U * V) A`` (``*`` elementwise), where

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

(Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).  Summed over the
input channels, each of the 16 positions ``k`` of the 4x4 block is a GEMM
``M[k] = U[k] @ V[k]``, ``(C_out, C_in) @ (C_in, tiles)``: 16 * C_out * C_in
multiply-adds per 2x2 outputs instead of 4 * 9 * C_out * C_in, 2.25x fewer.  The
transforms only add and subtract (G halves), so float32 results stay as close to the exact
sum as the im2col GEMM's (``tests/test_conv.py`` compares both with a float64 loop).

Layout, chosen so that every transform is a loop over long contiguous runs (vectorised): the
padded input of a block of tiles is split into its four *phases* -- even or odd row, even or
odd column -- so that element ``(i, j)`` of every tile's 4x4 input is one shifted run of
phase ``(i % 2, j % 2)``.  Tiles are indexed on a grid one tile wider and (per image) one tile
taller than the output needs; the extra tiles are computed and dropped, which keeps the runs
unbroken (27 % more GEMM columns at 16x16 outputs, 13 % at 32x32).

The input gradient of a stride-1 3x3 convolution is the same correlation of the upstream
gradient with the flipped, transposed kernel, padded by ``2 - p``: it runs through the same
code.  Every output element is written by the one thread that owns its tile, and the blocks are
cut from the shapes alone, so the result does not depend on the thread count.

The weight gradient, which reuses this file's blocks, phase planes and input transform, is in
``_winograd_weight.py``.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _blas as blas
from ._numba import njit, prange

# tiles (GEMM columns) per block: V and M of a block, 16 * (C_in + C_out) * TILES floats, then
# stay in the L2/L3 cache between the transforms and the GEMM (measured best from 128 to 512)
TILES = 256
# an image larger than a block is cut into bands of at least this many tile rows, so that the
# extra row of each band is at most a fifth of its work
MIN_BAND = 4
# elements per transform pass (a few channels' tiles): long loops, temporaries in L1/L2
PASS = 4096
# at least this many blocks when there are images enough (two threads).  A constant, not the
# thread count: the blocks set the GEMMs' shapes, and BLAS' float32 sums depend on them
PARTS = 2
UINT = np.uint64  # unsigned loop offsets: no negative-index wrap-around, so the loops vectorise


def blocks(n, oh, ow, parts=PARTS, tiles=None) -> tuple[int, list[tuple[int, int, int, int]]]:
    """``(ncx, blocks)``: the tile grid's width and its blocks ``(n0, nb, ty0, nty)`` -- tile
    rows ``ty0 .. ty0+nty`` of images ``n0 .. n0+nb`` (``nb == 1`` when an image is cut into
    bands), at least ``parts`` of them when there are images enough."""
    tiles = tiles or TILES
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    ncx = tw + 1
    per_image = (th + 1) * ncx
    if per_image <= tiles:
        nb = max(1, min(n, tiles // per_image, -(-n // parts)))
        return ncx, [(n0, min(nb, n - n0), 0, th) for n0 in range(0, n, nb)]
    # a band computes one tile row more than it keeps: at least MIN_BAND rows kept
    nty = min(th, max(MIN_BAND, tiles // ncx - 1))
    return ncx, [(i, 1, ty, min(nty, th - ty)) for i in range(n) for ty in range(0, th, nty)]


@njit
def weight_transform(w, flip, half, U):
    """``U[k, o, c] = (G w[o, c] G^T)[k // 4, k % 4]``; with ``flip``, of the kernel turned by
    180 degrees, ``w[o, c, ::-1, ::-1]`` (the input gradient's, which multiplies ``U[k]^T``).

    Over blocks of (o, c) pairs: the block's nine taps as rows (``g``), ``G g`` along the
    kernel's rows (``t``, 4 x 3 rows), then ``(G g) G^T`` along its columns, each step a loop
    over the block's pairs.  ``half`` is 1/2 in the weights' dtype."""
    O, C = w.shape[0], w.shape[1]
    n = O * C
    flat, out = w.reshape(n, 9), U.reshape(16, n)
    step = 512
    g = np.empty((9, step), dtype=U.dtype)
    t = np.empty((12, step), dtype=U.dtype)
    for p0 in range(0, n, step):
        m = min(step, n - p0)
        for q in range(9):
            src = 8 - q if flip else q
            for e in range(m):
                g[q, e] = flat[p0 + e, src]
        for j in range(3):
            g0, g1, g2 = g[j], g[3 + j], g[6 + j]
            for e in range(m):
                a, b, c = g0[e], g1[e], g2[e]
                t[j, e] = a
                t[3 + j, e] = (a + b + c) * half
                t[6 + j, e] = (a - b + c) * half
                t[9 + j, e] = c
        for i in range(4):
            t0, t1, t2 = t[3 * i], t[3 * i + 1], t[3 * i + 2]
            u0, u1 = out[4 * i, p0:], out[4 * i + 1, p0:]
            u2, u3 = out[4 * i + 2, p0:], out[4 * i + 3, p0:]
            for e in range(m):
                a, b, c = t0[e], t1[e], t2[e]
                u0[e] = a
                u1[e] = (a + b + c) * half
                u2[e] = (a - b + c) * half
                u3[e] = c


@njit
def _load_phases(x, n0, nb, r0, ph, pw, P):
    """``P[2*rp + cp, c, b, ry, cx] = xpad[n0 + b, c, r0 + 2*ry + rp, 2*cx + cp]``, zero where
    that is padding or past the input."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    nry, ncx = P.shape[3], P.shape[4]
    P[:] = 0.0
    # input columns 2*cx + cp - pw for cx in lo .. hi: both phases of a row in one loop, the
    # odd phase one column later; a column past the input (odd W + pw) stays zero
    lo = (pw + 1) // 2
    shift = 2 * lo - pw  # 0 or 1: which input column the even phase takes at cx = lo
    hi = min(ncx, (W + pw) // 2)  # cx where both phases are inside the input
    for c in range(C):
        for b in range(nb):
            for rp in range(2):
                for ry in range(nry):
                    r = r0 + 2 * ry + rp - ph
                    if r < 0 or r >= H:
                        continue
                    src = x[n0 + b, c, r]
                    even, odd = P[2 * rp, c, b, ry], P[2 * rp + 1, c, b, ry]
                    if pw % 2 == 1:  # cx = lo - 1: only its odd phase is inside the input
                        odd[lo - 1] = src[0]
                    s, de, do = src[shift:], even[lo:], odd[lo:]
                    for k in range(UINT(max(hi - lo, 0))):
                        de[k] = s[2 * k]
                        do[k] = s[2 * k + 1]
                    for cx in range(max(hi, lo), ncx):  # the last column of an odd W + pw
                        col = 2 * cx - pw
                        if col < W:
                            even[cx] = src[col]


@njit
def _finite(a, limit):
    """Whether every value of the 1-d ``a`` is finite: ``|v| <= limit`` (the dtype's largest
    value) is false for NaN and +-Inf, and no fastmath flag of ours folds a comparison away."""
    bad = 0
    for t in range(a.shape[0]):
        bad += not (abs(a[t]) <= limit)
    return bad == 0


@njit(parallel=True)
def _finite_parallel(a, limit):
    bad = 0
    for t in prange(a.shape[0]):
        bad += not (abs(a[t]) <= limit)
    return bad == 0


def finite(a, parallel: bool = False) -> bool:
    """Whether every value of the array ``a`` (contiguous) is finite; ``parallel``: on every
    thread (for a call from the main thread, not from the blocks' worker threads)."""
    check = _finite_parallel if parallel else _finite
    return check(a.reshape(-1), np.finfo(a.dtype).max.astype(a.dtype))


@njit
def _diff(out, a, b, n):
    for t in range(n):
        out[t] = a[t] - b[t]


@njit
def _plus(out, a, b, n):
    for t in range(n):
        out[t] = a[t] + b[t]


@njit
def _input_transform(P, C, ncx, chunk, R, V):
    """``V[k, c*T + t] = (B^T d B)[k // 4, k % 4]`` of tile ``t`` of channel ``c`` (its top-left
    corner at ``t`` of the phase planes ``P[q, c*T :]``), ``chunk`` channels per pass: the
    rows' combinations ``B^T d`` into ``R`` (combination ``i`` of the even and the odd
    columns: ``R[2*i + cp]``), then the columns'.  A pass may read past its channels' planes
    into the next ones: that only reaches the dropped tiles."""
    total = P.shape[1]
    for c0 in range(0, C, chunk):
        f0, m = c0 * (total // C), min(chunk, C - c0) * (total // C)
        last = c0 + chunk >= C
        m_rows = UINT(m - ncx if last else m + 1)
        m_cols = UINT(m - ncx - 1 if last else m)
        for cp in range(2):
            even, odd = P[cp, f0:], P[2 + cp, f0:]
            below = even[ncx:]
            _diff(R[cp], even, below, m_rows)  # d0 - d2
            _plus(R[2 + cp], odd, below, m_rows)  # d1 + d2
            _diff(R[4 + cp], below, odd, m_rows)  # d2 - d1
            _diff(R[6 + cp], odd, odd[ncx:], m_rows)  # d1 - d3
        for i in range(4):
            re, ro = R[2 * i], R[2 * i + 1]
            right = re[1:]
            _diff(V[4 * i, f0:], re, right, m_cols)
            _plus(V[4 * i + 1, f0:], ro, right, m_cols)
            _diff(V[4 * i + 2, f0:], right, ro, m_cols)
            _diff(V[4 * i + 3, f0:], ro, ro[1:], m_cols)
        if last:
            for k in range(16):
                V[k, f0 + m - ncx - 1 :] = 0.0  # past the last tile: zeros into the GEMM


@njit
def _sum3(out, a, b, c, n, sign):
    """``out = a + b + c`` (``sign > 0``) or ``a - b - c``."""
    if sign > 0:
        for t in range(n):
            out[t] = a[t] + b[t] + c[t]
    else:
        for t in range(n):
            out[t] = a[t] - b[t] - c[t]


@njit
def _store_rows(s0, s1, s2, s3, src, bo, dst, row, full, odd):
    """One output row of ``full`` tiles (and a last odd column): ``A^T`` along the row, from
    the row combinations ``s0 .. s3`` of the tiles at ``src``, plus the bias."""
    for tx in range(full):
        t = src + tx
        a, b = s1[t], s2[t]
        dst[row + 2 * tx] = s0[t] + a + b + bo
        dst[row + 2 * tx + 1] = a - b - s3[t] + bo
    if odd:
        t = src + full
        dst[row + 2 * full] = s0[t] + s1[t] + s2[t] + bo


@njit
def _output_transform(M, bias, n0, nb, ty0, nty, ncx, chunk, S, out):
    """``out[n0 + b, o, 2*(ty0 + ty) + i, 2*tx + j] = (A^T M A)[i, j] + bias[o]`` of every kept
    tile, from ``M[k, o*T + t]``, ``chunk`` output channels per pass: the rows' combinations
    ``A^T M`` into ``S`` (``S[4*i + j]``), then the columns' while writing each output row."""
    O, T = out.shape[1], M.shape[1] // out.shape[1]
    OH, OW = out.shape[2], out.shape[3]
    full, odd = UINT(OW // 2), OW % 2 == 1
    u_ow, nry = UINT(OW), T // (nb * ncx)
    for o0 in range(0, O, chunk):
        f0, oc = o0 * T, min(chunk, O - o0)
        m = UINT(oc * T)
        for j in range(4):
            _sum3(S[j], M[j, f0:], M[4 + j, f0:], M[8 + j, f0:], m, 1)
            _sum3(S[4 + j], M[4 + j, f0:], M[8 + j, f0:], M[12 + j, f0:], m, -1)
        for q in range(oc):
            bo = bias[o0 + q]
            for b in range(nb):
                dst = out[n0 + b, o0 + q].reshape(-1)
                for ty in range(nty):
                    src = UINT(q * T + (b * nry + ty) * ncx)
                    y = 2 * (ty0 + ty)
                    row = UINT(y) * u_ow
                    _store_rows(S[0], S[1], S[2], S[3], src, bo, dst, row, full, odd)
                    if y + 1 < OH:
                        _store_rows(S[4], S[5], S[6], S[7], src, bo, dst, row + u_ow, full, odd)


def input_buffers(C, T, dtype) -> dict:
    """This thread's workspace for :func:`input_tiles` of blocks of at most ``T`` grid tiles
    of ``C`` channels (``"r"``: rows of one transform pass, also for other transforms)."""
    from . import workspace

    span = (max(1, PASS // T) + 1) * T
    return {
        "p": workspace.get("conv.wino_p", (4 * C * T,), dtype),
        "v": workspace.get("conv.wino_v", (16 * C * T,), dtype),
        "r": workspace.get("conv.wino_r", (8, span), dtype),
    }


def input_tiles(x, block, ncx, ph, pw, buf):
    """The block's input transform ``V``, ``(16, C * T)`` (``T`` grid tiles of each channel),
    in ``buf`` (:func:`input_buffers`); None when the block reads a value that is not finite."""
    n0, nb, ty0, nty = block
    C, T = x.shape[1], nb * (nty + 1) * ncx
    P = buf["p"][: 4 * C * T].reshape(4, C, nb, nty + 1, ncx)
    _load_phases(x, n0, nb, 2 * ty0, ph, pw, P)
    if not finite(P):
        return None
    V = buf["v"][: 16 * C * T].reshape(16, C * T)
    _input_transform(P.reshape(4, C * T), C, ncx, max(1, PASS // T), buf["r"], V)
    return V


def _correlate(x, w, flip, bias, ph, pw, out) -> bool:
    """``out = bias + sum_c x[:, c] (*) kernel[:, c]``, 3x3, stride 1, top/left padding
    ``ph``/``pw`` (the bottom/right padding follows from ``out``'s shape); the kernel is ``w``,
    or with ``flip`` the input gradient's (``w`` turned by 180 degrees, its channels swapped).
    Returns False, with ``out`` unfinished, when ``x`` or the transformed kernel holds a value
    that is not finite."""
    from . import workspace

    N, C = x.shape[:2]
    O, (OH, OW) = out.shape[1], out.shape[2:]
    ncx, work = blocks(N, OH, OW)
    if not work:
        return True
    U = workspace.get("conv.wino_u", (16, w.shape[0], w.shape[1]), w.dtype)
    weight_transform(w, flip, w.dtype.type(0.5), U)
    if not finite(U):
        return False
    U = U.transpose(0, 2, 1) if flip else U  # a view
    infinite = []  # a block that read a value that is not finite: the call is handed over

    def run(part):
        T = max(nb * (nty + 1) for _, nb, _, nty in part) * ncx
        buf = input_buffers(C, T, x.dtype)
        M = workspace.get("conv.wino_m", (16 * O * T,), x.dtype)
        for block in part:
            V = None if infinite else input_tiles(x, block, ncx, ph, pw, buf)
            if V is None:
                infinite.append(block)
                return
            n0, nb, ty0, nty = block
            T = nb * (nty + 1) * ncx
            Mb = M[: 16 * O * T].reshape(16, O * T)
            np.matmul(U, V.reshape(16, C, T), out=Mb.reshape(16, O, T))
            _output_transform(Mb, bias, n0, nb, ty0, nty, ncx, max(1, PASS // T), buf["r"], out)

    blas.parallel(run, blas.split(work, numba.get_num_threads()))
    return not infinite


# Where an input holds a value that is not finite, the three kernels hand the call to im2col's:
# the transforms mix the 16 values of a tile (and the dropped tiles read neighbouring data), so
# an Inf would turn into NaN in outputs whose receptive field does not hold it.  The check is a
# pass over the phase planes while they are in cache (and over the transformed kernel).


def winograd_forward(x, w, bias, sh, sw, ph, pw, dh, dw, groups, out) -> None:
    """``out = conv2d(x, w) + bias`` for a 3x3 kernel, stride 1, no dilation, one group (the
    other kernels' arguments; ``ops/conv.py`` calls it only there)."""
    if not _correlate(x, w, False, bias, ph, pw, out):
        from .conv import im2col_forward

        im2col_forward(x, w, bias, sh, sw, ph, pw, dh, dw, groups, out)


def winograd_backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, dx) -> None:
    """``dx`` of :func:`winograd_forward`: ``g`` correlated with the flipped kernel, its
    channels swapped (``U^T``), padded by ``2 - p`` (needs padding <= 2 on every side)."""
    if not _correlate(g, w, True, np.zeros(dx.shape[1], dtype=g.dtype), 2 - ph, 2 - pw, dx):
        from .conv import im2col_backward_input

        im2col_backward_input(g, w, sh, sw, ph, pw, dh, dw, groups, dx)
