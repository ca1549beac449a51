"""The CPU kernels' vector width: 512-bit on AVX-512 machines unless the user says otherwise
(``tinycnn/ops/cpu/_numba.py``).  Each case runs in a fresh process: Numba's CPU target reads
the setting once, when it first compiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tinycnn as tc

PROBE = """
import json, re
import numpy as np
import numba
from tinycnn.ops.cpu import _numba
from numba.core.codegen import get_host_cpu_features

@_numba.njit(cache=False)
def axpy(a, b):
    for i in range(a.shape[0]):
        a[i] += b[i] * b[i]

a = np.zeros(4096, np.float32)
axpy(a, a)
asm = next(iter(axpy.inspect_asm().values()))
print(json.dumps({
    "features": numba.config.CPU_FEATURES,
    "avx512": "+avx512f" in get_host_cpu_features().split(","),
    "zmm": bool(re.search(r"%zmm", asm)),
}))
"""


def _probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CPU", "TINYCNN_AVX"))}
    clean["PYTHONPATH"] = str(Path(tc.__file__).parents[1])
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_avx512_machines_get_512_bit_loops_and_others_keep_the_default():
    r = _probe()
    if r["avx512"]:
        assert r["features"].endswith(",-prefer-256-bit") and r["zmm"]
    else:
        assert r["features"] is None


@pytest.mark.parametrize("env", [{"TINYCNN_AVX512": "0"}, {"NUMBA_CPU_NAME": "generic"}])
def test_the_user_can_keep_llvms_choice(env):
    r = _probe(**env)
    assert not (r["features"] or "").endswith("-prefer-256-bit") and not r["zmm"]
