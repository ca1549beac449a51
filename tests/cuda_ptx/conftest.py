"""``compile_ptx`` checks run only in a process *without* the CUDA simulator (whose kernels are
plain Python, so nothing would be compiled); ``tests/cuda`` is the simulator's half."""

import os

collect_ignore_glob = ["test_*.py"] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else []
