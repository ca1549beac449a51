"""tinycnn's CPU kernels with 512-bit and with 256-bit vector loops, in alternating processes.

    python -m benchmarks.vector_width                 # 3 rounds of each, 2 threads
    python -m benchmarks.vector_width --rounds 5 --cases conv2,b

On a CPU with AVX-512, ``tinycnn/ops/cpu/_numba.py`` lets LLVM vectorise for 512-bit registers
(``TINYCNN_AVX512=0`` keeps LLVM's 256-bit preference).  Numba's CPU target reads that once per
process, so each setting runs in its own child process, the two alternating round by round
(each child first compiles or loads its kernels, then times).  Each case is a forward and a
backward (``out.sum().backward()``) of one op; a child reports the fastest of ``--repeat``
calls, and the table gives the median over the rounds in ms; ratio = 512-bit / 256-bit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = {  # name: (what, op, arguments)
    "conv2": ("conv N128 32->32 3x3 p1 32^2 (direct)", "conv", (128, 32, 32, 32, 3, 1, 1)),
    "b": ("conv N100 6->16 5x5 14^2 (direct)", "conv", (100, 6, 16, 14, 5, 0, 1)),
    "a": ("conv N100 1->6 5x5 32^2 (direct)", "conv", (100, 1, 6, 32, 5, 0, 1)),
    "i": ("conv N128 64->64 3x3 p1 16^2 (Winograd)", "conv", (128, 64, 64, 16, 3, 1, 1)),
    "h": ("conv N128 32->64 3x3 26^2 (im2col)", "conv", (128, 32, 64, 26, 3, 0, 1)),
    "f": ("conv N16 728 3x3 p1 g728 19^2 (depthwise)", "conv", (16, 728, 728, 19, 3, 1, 728)),
    "maxpool": ("max_pool2d 3x3 s2 p1 (16,256,56,56)", "max_pool2d", (16, 256, 56)),
    "avgpool": ("avg_pool2d 3x3 s2 p1 (16,256,56,56)", "avg_pool2d", (16, 256, 56)),
    "relu": ("relu (128,32,32,32)", "relu", (128, 32, 32)),
    "bn": ("batch_norm train (16,256,56,56)", "batch_norm", (16, 256, 56)),
}


def _child(names: list[str], repeat: int, threads: int) -> dict[str, float]:
    """Time the cases in this process; {name: fastest call in ms}."""
    import time

    import numba
    import numpy as np

    import tinycnn as tc
    import tinycnn.functional as F

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(0)

    def t(*shape):
        return tc.tensor(rng.random(shape, dtype=np.float32) - 0.5, requires_grad=True)

    def case(op, args):
        if op == "conv":
            n, cin, cout, h, k, p, groups = args
            x, w = t(n, cin, h, h), t(cout, cin // groups, k, k)
            return lambda: F.conv2d(x, w, padding=p, groups=groups)
        n, c, h = args
        x = t(n, c, h, h)
        if op == "batch_norm":
            gamma, beta = t(c), t(c)
            return lambda: F.batch_norm(x, None, None, gamma, beta, training=True)
        if op == "relu":
            return lambda: F.relu(x)
        pool = getattr(F, op)
        return lambda: pool(x, 3, 2, 1)

    best = {}
    for name in names:
        forward = case(*CASES[name][1:])

        def step(forward=forward):
            forward().sum().backward()

        step()
        step()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        best[name] = min(times) * 1e3
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma list, e.g. conv2,b")
    parser.add_argument("--rounds", type=int, default=3, help="processes of each setting")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per case")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    if args.child:
        print(json.dumps(_child(names, args.repeat, args.threads)))
        return 0
    from numba.core.codegen import get_host_cpu_features

    if "+avx512f" not in get_host_cpu_features().split(","):
        print("this CPU has no AVX-512: tinycnn's kernels use LLVM's own vector width here")
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")}
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    env.setdefault("GOMP_SPINCOUNT", "10000")
    child = [sys.executable, "-m", "benchmarks.vector_width", "--child", "--cases", args.cases]
    child += ["--repeat", str(args.repeat), "--threads", str(args.threads)]
    runs: dict[str, list[dict]] = {"1": [], "0": []}
    for _ in range(args.rounds):
        for flag in ("0", "1"):
            out = subprocess.run(
                child,
                env={**env, "TINYCNN_AVX512": flag},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            runs[flag].append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"fastest of {args.repeat} forward + backward calls per process, median over "
        f"{args.rounds} processes of each setting, alternating; ms, {args.threads} threads"
    )
    print(f"{'case':8} {'what':44} {'256-bit':>9} {'512-bit':>9} {'ratio':>6}")
    for name in names:
        narrow = statistics.median(r[name] for r in runs["0"])
        wide = statistics.median(r[name] for r in runs["1"])
        print(f"{name:8} {CASES[name][0]:44} {narrow:9.2f} {wide:9.2f} {wide / narrow:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
