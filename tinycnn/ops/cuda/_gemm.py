"""The tiled shared-memory GEMM behind ``matmul`` (and, later, the convolutions).

``C[z] = A[z] @ B[z]`` for a batch of ``z``.  A and B are read through element strides
(batch, row, column), so transposed operands (our ``transpose`` returns views) and a batch
broadcast (batch stride 0) cost no copy.  A block computes a ``GEMM_BM x GEMM_BN`` tile of C:
it stages ``GEMM_BK``-deep slices of A and B in shared memory, and each of its threads keeps a
``GEMM_TM x GEMM_TN`` block of C in registers.  Thread (tx, ty) owns rows ``ty + i * TY`` and
columns ``tx + j * TX``: a warp then reads consecutive shared-memory words (no bank conflicts)
and writes consecutive columns of C (coalesced stores).  The A tile is held transposed.

The tiles are loaded along each operand's unit-stride axis: for a row-major A, consecutive
threads read consecutive elements of a row; for a transposed view, of a column (and the same
for B).  Either way a warp's loads are coalesced.  Both tiles' rows are padded
(``GEMM_TILE_PAD``) so that the stores of one warp that walks a tile's K axis hit 32
different shared-memory banks.
"""

from __future__ import annotations

from numba import cuda

from ._cuda import each, kernel
from .config import GEMM_BK, GEMM_BM, GEMM_BN, GEMM_TILE_PAD, GEMM_TM, GEMM_TN

TX = GEMM_BN // GEMM_TN  # threads along columns
TY = GEMM_BM // GEMM_TM  # threads along rows
NT = TX * TY
A_COLS = GEMM_BM + GEMM_TILE_PAD  # the tiles' padded rows (see config.py)
B_COLS = GEMM_BN + GEMM_TILE_PAD
A_LOADS = GEMM_BM * GEMM_BK // NT
B_LOADS = GEMM_BK * GEMM_BN // NT
assert A_LOADS * NT == GEMM_BM * GEMM_BK and B_LOADS * NT == GEMM_BK * GEMM_BN
# a block's threads cover whole tile rows (and whole columns) per load
assert NT % GEMM_BM == 0 and NT % GEMM_BN == 0 and NT % GEMM_BK == 0

_SIG = "{T}[::1], {T}[::1], {T}[::1], int64, int64, int64, int64, int64, " + (
    "UniTuple(int64, 4), UniTuple(int64, 4)"
)


@kernel(*each(_SIG))
def gemm(a, b, c, batch, inner_batch, m, n, k, sa, sb):
    """Grid (ceil(n / BN), min(ceil(m / BM), MAX_BLOCKS), min(batch, MAX_BLOCKS)); block
    (TX, TY).  The (batch, row tile) pairs are spread over the grid's y and z blocks in a
    grid-stride loop: a GPU allows at most 65535 blocks along y and z, fewer than the row tiles
    of a matrix with more than 4.19 million rows (a ``Dense`` over every pixel of a batch).

    The batch index ``z`` splits into (z // inner_batch, z % inner_batch), with element strides
    ``sa[0], sa[1]`` (``sb[0], sb[1]``): two broadcast batch levels (e.g. a (G, M, K) weight
    against (N, G, K, L) images) cost no copy; ``sa[2], sa[3]`` are the row and column strides.
    """
    a_tile = cuda.shared.array((GEMM_BK, A_COLS), a.dtype)
    b_tile = cuda.shared.array((GEMM_BK, B_COLS), a.dtype)
    acc = cuda.local.array((GEMM_TM, GEMM_TN), a.dtype)
    a_reg = cuda.local.array(GEMM_TM, a.dtype)
    b_reg = cuda.local.array(GEMM_TN, a.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TX + tx
    col0 = cuda.blockIdx.x * GEMM_BN
    row_tiles = (m + GEMM_BM - 1) // GEMM_BM
    first = cuda.blockIdx.z * cuda.gridDim.y + cuda.blockIdx.y
    # consecutive threads load along each operand's unit-stride axis, so that a warp reads
    # neighbouring addresses (coalesced) whether the operand is row-major or a transposed view;
    # the same for every thread of the launch, so no warp diverges
    # (thread's first tile element, its step per load): row, K index for A; K index, column for B
    if sa[2] < sa[3]:
        a_r, a_k, a_dr, a_dk = tid % GEMM_BM, tid // GEMM_BM, 0, NT // GEMM_BM
    else:
        a_r, a_k, a_dr, a_dk = tid // GEMM_BK, tid % GEMM_BK, NT // GEMM_BK, 0
    if sb[2] < sb[3]:
        b_k, b_c, b_dk, b_dc = tid % GEMM_BK, tid // GEMM_BK, 0, NT // GEMM_BK
    else:
        b_k, b_c, b_dk, b_dc = tid // GEMM_BN, tid % GEMM_BN, NT // GEMM_BN, 0
    # every thread of a block walks the same pairs, so all of them reach the barriers below
    for zt in range(first, batch * row_tiles, cuda.gridDim.y * cuda.gridDim.z):
        z = zt // row_tiles
        row0 = (zt - z * row_tiles) * GEMM_BM
        z1 = z // inner_batch
        z2 = z - z1 * inner_batch
        a_base = z1 * sa[0] + z2 * sa[1]
        b_base = z1 * sb[0] + z2 * sb[1]
        for i in range(GEMM_TM):
            for j in range(GEMM_TN):
                acc[i, j] = 0
        for k0 in range(0, k, GEMM_BK):
            for load in range(A_LOADS):
                r = a_r + load * a_dr
                kk = a_k + load * a_dk
                gr = row0 + r
                gk = k0 + kk
                if gr < m and gk < k:
                    a_tile[kk, r] = a[a_base + gr * sa[2] + gk * sa[3]]
                else:
                    a_tile[kk, r] = 0
            for load in range(B_LOADS):
                kk = b_k + load * b_dk
                col = b_c + load * b_dc
                gk = k0 + kk
                gc = col0 + col
                if gk < k and gc < n:
                    b_tile[kk, col] = b[b_base + gk * sb[2] + gc * sb[3]]
                else:
                    b_tile[kk, col] = 0
            cuda.syncthreads()
            for kk in range(GEMM_BK):
                for i in range(GEMM_TM):
                    a_reg[i] = a_tile[kk, ty + i * TY]
                for j in range(GEMM_TN):
                    b_reg[j] = b_tile[kk, tx + j * TX]
                for i in range(GEMM_TM):
                    for j in range(GEMM_TN):
                        acc[i, j] += a_reg[i] * b_reg[j]
            cuda.syncthreads()
        c_base = z * m * n
        for i in range(GEMM_TM):
            r = row0 + ty + i * TY
            if r < m:
                for j in range(GEMM_TN):
                    col = col0 + tx + j * TX
                    if col < n:
                        c[c_base + r * n + col] = acc[i, j]
