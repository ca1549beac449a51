"""The CUDA tests: the same computation on "cpu" and "cuda", compared.

Without a GPU they run under numba's CUDA simulator, whose switch must be set before numba is
imported, so they need their own process::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda

On a machine with a GPU the same tests run on the real device with
``TINYCNN_TEST_GPU=1 python -m pytest tests/cuda``.  Otherwise (the main test run) nothing here
is collected, so the main process never imports ``numba.cuda``.
"""

import os

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
REAL_GPU = os.environ.get("TINYCNN_TEST_GPU") == "1"
collect_ignore_glob = [] if (SIMULATOR or REAL_GPU) else ["test_*.py", "helpers.py"]
