"""CPU kernels: NumPy arrays, Numba ``njit`` loops (``parallel=True`` where it pays), NumPy BLAS.

Each module mirrors ``tinycnn/ops/cuda/`` file for file and function for function.
"""
