"""CUDA kernels: ``numba.cuda`` (the numba-cuda package) over device arrays.

Each module mirrors ``tinycnn/ops/cpu/`` file for file and function for function: the function
with the CPU name takes device arrays, allocates nothing it was given, and launches the
``@cuda.jit`` kernel(s) of that module with a grid computed from the shape.  Nothing here is
imported by ``import tinycnn``; ``tinycnn.cuda.is_available()`` imports ``array`` on first use.
"""
