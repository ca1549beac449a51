"""Winograd F(2x2, 3x3)'s weight gradient (the forward and the input gradient, and the
layout both share, are in ``_winograd.py``).

It runs the forward backwards: with ``Z = A gY A^T`` (the 4x4 expansion of a tile's 2x2
upstream gradient ``gY``, ``A = [[1, 0], [1, 1], [1, -1], [0, -1]]``),
``dU[k] = sum over tiles of Z[k] V[k]^T`` is 16 GEMMs ``(C_out, tiles) @ (tiles, C_in)`` per
block, and ``dw = G^T dU G``.  ``V`` is the forward's input transform of the same tile grid;
dropped tiles and the outputs past an odd edge get ``gY = 0``, so they add nothing.
(``ops/conv.py`` runs im2col's weight gradient instead where this one measured slower: few
channels, many dropped tiles.)  The Numba functions here call none of ``_winograd.py``'s
(Numba's cache sees only a kernel's own file): the Python driver below calls both.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _blas as blas
from ._numba import njit
from ._winograd import blocks, finite, input_buffers, input_tiles

# tiles per block of the weight gradient: its GEMMs reduce over the tiles, and fewer, larger
# blocks add fewer partials (measured 10-20 % faster than TILES from 64 to 256 channels)
WEIGHT_TILES = 1024
# elements per pass of the gradient's transform (this file's own copy: Numba freezes a global
# into the kernel that reads it, and caches the kernel by this file alone)
GRAD_PASS = 4096
UINT = np.uint64  # unsigned loop offsets: no negative-index wrap-around, so the loops vectorise


@njit
def _load_grad_phases(g, n0, nb, ty0, nty, ncx, Q):
    """``Q[2*i + j, (o*nb + b)*(nty + 1)*ncx + ty*ncx + tx] = g[n0 + b, o, 2*(ty0 + ty) + i,
    2*tx + j]``: tile ``t`` of the block's gradient at ``t`` of the four phase planes, zero on
    the dropped tiles and past the output (the odd last row or column of a tile).

    Flat offsets, not a slice per row: the rows are short (8 tiles at 16x16 outputs), and
    making two views per row cost more than copying it (2.7x slower)."""
    O, OH, OW = g.shape[1], g.shape[2], g.shape[3]
    gf = g.reshape(-1)
    nry, half, u_ncx = nty + 1, UINT(OW // 2), UINT(ncx)
    kept = UINT(OW // 2 + OW % 2)  # tiles of a row with an output in them
    for o in range(O):
        for b in range(nb):
            plane = UINT(((n0 + b) * O + o) * OH * OW)
            base = (o * nb + b) * nry * ncx
            for i in range(2):
                even, odd = Q[2 * i], Q[2 * i + 1]
                for ty in range(nry):
                    d = UINT(base + ty * ncx)
                    y = 2 * (ty0 + ty) + i
                    if ty == nty or y >= OH:
                        for k in range(u_ncx):
                            even[d + k] = 0.0
                            odd[d + k] = 0.0
                        continue
                    s = plane + UINT(y * OW)
                    for k in range(half):
                        even[d + k] = gf[s + 2 * k]
                        odd[d + k] = gf[s + 2 * k + 1]
                    if OW % 2 == 1:
                        even[d + half] = gf[s + UINT(OW - 1)]
                        odd[d + half] = 0.0
                    for k in range(kept, u_ncx):
                        even[d + k] = 0.0
                        odd[d + k] = 0.0


@njit
def _grad_row(z0, z1, z2, z3, q0, q1, q2, q3, c0, c2, n):
    """Row ``p`` of ``Z = A gY A^T``: ``a = c0*gY[0, 0] + c2*gY[1, 0]`` (likewise ``b`` of the
    second column), then ``(a, a + b, a - b, -b)``.  The coefficients are 0 or +-1: exact."""
    for t in range(n):
        a = c0 * q0[t] + c2 * q2[t]
        b = c0 * q1[t] + c2 * q3[t]
        z0[t] = a
        z1[t] = a + b
        z2[t] = a - b
        z3[t] = -b


@njit
def _grad_transform(Q, Z, one):
    """``Z[4*p + q, f] = (A gY A^T)[p, q]`` of the tile at ``f`` of the phase planes ``Q``, in
    passes of GRAD_PASS elements (the planes' pass stays in L1 for the four rows)."""
    n = Q.shape[1]
    zero = one - one
    for f0 in range(0, n, GRAD_PASS):
        m = UINT(min(GRAD_PASS, n - f0))
        q0, q1, q2, q3 = Q[0, f0:], Q[1, f0:], Q[2, f0:], Q[3, f0:]
        _grad_row(Z[0, f0:], Z[1, f0:], Z[2, f0:], Z[3, f0:], q0, q1, q2, q3, one, zero, m)
        _grad_row(Z[4, f0:], Z[5, f0:], Z[6, f0:], Z[7, f0:], q0, q1, q2, q3, one, one, m)
        _grad_row(Z[8, f0:], Z[9, f0:], Z[10, f0:], Z[11, f0:], q0, q1, q2, q3, one, -one, m)
        _grad_row(Z[12, f0:], Z[13, f0:], Z[14, f0:], Z[15, f0:], q0, q1, q2, q3, zero, -one, m)


@njit
def _weight_untransform(lanes, half, dw):
    """``dw[o, c] = G^T dU[o, c] G`` with ``dU`` the sum of ``lanes[l, k, o, c]`` in lane order
    (into ``lanes[0]``), over blocks of (o, c) pairs as :func:`weight_transform`."""
    nl = lanes.shape[0]
    n = lanes.shape[2] * lanes.shape[3]
    du = lanes[0].reshape(16, n)
    for lane in range(1, nl):
        src = lanes[lane].reshape(16, n)
        for k in range(16):
            dst, s = du[k], src[k]
            for e in range(n):
                dst[e] += s[e]
    flat = dw.reshape(n, 9)
    step = 512
    t = np.empty((12, step), dtype=dw.dtype)
    r = np.empty((9, step), dtype=dw.dtype)
    for p0 in range(0, n, step):
        m = min(step, n - p0)
        for i in range(4):  # along the columns: 4 x 4 -> 4 x 3
            u0, u1 = du[4 * i, p0:], du[4 * i + 1, p0:]
            u2, u3 = du[4 * i + 2, p0:], du[4 * i + 3, p0:]
            for e in range(m):
                a, b, c, d = u0[e], u1[e], u2[e], u3[e]
                t[3 * i, e] = a + (b + c) * half
                t[3 * i + 1, e] = (b - c) * half
                t[3 * i + 2, e] = (b + c) * half + d
        for j in range(3):  # along the rows: 4 x 3 -> 3 x 3
            t0, t1, t2, t3 = t[j], t[3 + j], t[6 + j], t[9 + j]
            for e in range(m):
                a, b, c, d = t0[e], t1[e], t2[e], t3[e]
                r[j, e] = a + (b + c) * half
                r[3 + j, e] = (b - c) * half
                r[6 + j, e] = (b + c) * half + d
        for e in range(m):
            for q in range(9):
                flat[p0 + e, q] = r[q, e]


def winograd_backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, dw_out) -> None:
    """``dw_out`` of :func:`winograd_forward`: per block ``dU[k] += Z[k] @ V[k]^T``, summed
    into the partials of :func:`_blas.lanes` (as im2col's), the partials in order, then
    ``G^T dU G``."""
    from . import workspace

    N, C = x.shape[:2]
    O, (OH, OW) = g.shape[1], g.shape[2:]
    # blocks and lanes follow the shapes only, never the thread count: the sums must not change
    ncx, work = blocks(N, OH, OW, tiles=WEIGHT_TILES)
    if not work:
        dw_out[...] = 0.0
        return
    runs = blas.lanes(work, 16 * O * C * x.itemsize)  # partials of dU
    lanes = workspace.get("conv.wino_lanes", (len(runs), 16, O, C), x.dtype)
    Tmax = max(nb * (nty + 1) for _, nb, _, nty in work) * ncx

    def run(lane_ids):
        buf = input_buffers(C, Tmax, x.dtype)
        buf["q"] = workspace.get("conv.wino_q", (4 * O * Tmax,), x.dtype)
        buf["z"] = workspace.get("conv.wino_m", (16 * O * Tmax,), x.dtype)
        buf["du"] = workspace.get("conv.wino_du", (16, O, C), x.dtype)
        one = x.dtype.type(1)
        for lane in lane_ids:
            for step, block in enumerate(runs[lane]):
                n0, nb, ty0, nty = block
                T = nb * (nty + 1) * ncx
                Q = buf["q"][: 4 * O * T].reshape(4, O * T)
                _load_grad_phases(g, n0, nb, ty0, nty, ncx, Q)
                V = None if infinite or not finite(Q) else input_tiles(x, block, ncx, ph, pw, buf)
                if V is None:
                    infinite.append(block)
                    return
                Z = buf["z"][: 16 * O * T].reshape(16, O * T)
                _grad_transform(Q, Z, one)
                dst = lanes[lane] if step == 0 else buf["du"]
                VT = V.reshape(16, C, T).transpose(0, 2, 1)  # a transposed view, no copy
                np.matmul(Z.reshape(16, O, T), VT, out=dst)
                if step:
                    lanes[lane] += dst

    infinite = []  # a block that read a value that is not finite: the call is handed over
    blas.parallel(run, blas.split(list(range(len(runs))), numba.get_num_threads()))
    if infinite:
        from .conv import im2col_backward_weight

        im2col_backward_weight(x, g, sh, sw, ph, pw, dh, dw, groups, dw_out)
        return
    _weight_untransform(lanes, x.dtype.type(0.5), dw_out)
