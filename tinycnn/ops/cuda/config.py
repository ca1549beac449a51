"""Launch configuration of every CUDA kernel, in one place.

Block sizes are chosen for any GPU from sm_60 on: 256 threads fill a warp scheduler without
limiting occupancy through registers; the GEMM tile (64 x 64 outputs, 16-deep K slices,
16 x 16 threads computing 4 x 4 outputs each) needs 8.3 KiB (float32) / 16.5 KiB (float64) of
shared memory per block, so several blocks fit on every SM.

On a GPU the kernels are compiled once and kept in numba's on-disk cache (``cache=True``).  A
value below is frozen into each kernel that reads it (the shared-memory tree of
``REDUCE_THREADS`` doubles, the GEMM tile) while the launches take the new value at import, so
the cache key holds a hash of this back end's sources (``_cuda.SOURCES``): after a change here
every kernel compiles afresh instead of a stale one running with blocks its shared arrays do
not match.
"""

from __future__ import annotations

from numba import config as _numba_config

# The CUDA simulator runs every thread of a block as a Python thread, so 256-thread blocks make
# the simulated tests minutes long.  Every kernel is written for any block size (grid-stride
# loops, a reduction tree over any power of two), so under the simulator the 1-d kernels run
# with 32 threads; the GEMM keeps its real tile (its index arithmetic depends on it).
_SIMULATOR = bool(_numba_config.ENABLE_CUDASIM)

# elementwise, gather/scatter and per-output-loop kernels: threads per 1-d block
THREADS = 32 if _SIMULATOR else 256
# most blocks of a grid-stride launch (more gives no extra parallelism).  Under the simulator
# two blocks: each simulated thread is costly, and the grid-stride loops get exercised.
MAX_BLOCKS = 2 if _SIMULATOR else 65535

# reductions: threads per block (a power of two: the shared-memory tree halves it)
REDUCE_THREADS = 32 if _SIMULATOR else 256
# a row longer than this is split over several blocks, then reduced again
REDUCE_CHUNK = 8192

# tiled GEMM: the block computes a GEMM_BM x GEMM_BN tile of C, walking K in GEMM_BK slices,
# with GEMM_TM x GEMM_TN outputs per thread ((BM / TM) * (BN / TN) threads per block)
GEMM_BM = 64
GEMM_BN = 64
GEMM_BK = 16
GEMM_TM = 4
GEMM_TN = 4
# padding of the shared tiles' rows.  A warp that loads along K (a row-major A, a transposed B)
# stores 16 values down one column of the (BK, BM + pad) tile for each of two neighbouring
# columns.  Rows 64 words apart put all 16 in one of the 32 banks (a 16-way conflict); one
# word of padding leaves the two columns overlapping in 15 banks (2-way); with two words, bank
# (2 * kk + col) mod 32 differs for all 32 stores (float32, the training type).
GEMM_TILE_PAD = 2

# strided gather/scatter kernels take shapes and strides padded to this many dimensions
MAX_DIMS = 6

# the compute capability the PTX tests compile for (Ampere, the oldest GPU the project targets)
PTX_CC = (8, 0)
