"""tinycnn's CPU kernels with 512-bit and with 256-bit vector loops, in alternating processes.

    python -m benchmarks.vector_width                 # 3 rounds of each, 2 threads
    python -m benchmarks.vector_width --rounds 5 --cases conv2,b

On a CPU with AVX-512, ``tinycnn/ops/cpu/_numba.py`` lets LLVM vectorise for 512-bit registers
(``TINYCNN_AVX512=0`` keeps LLVM's 256-bit preference).  Numba's CPU target reads that once per
process, so each setting runs in its own child process, the two alternating round by round
(each child first compiles or loads its kernels, then times).  The cases are those of
``benchmarks/ops.py`` (its builders and its forward + backward runner, tinycnn only), plus
``cifar_cnn``'s second conv; a child reports the fastest of ``--repeat`` calls, and the table
gives the median over the rounds in ms; ratio = 512-bit / 256-bit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from benchmarks.ops import CASES as OPS_CASES  # first: sets the thread variables
from benchmarks.ops import _conv_case, _runner

CASES = {  # name: (what, build) as in benchmarks/ops.py
    "conv2": _conv_case(128, 32, 32, 3, 32, padding=1),  # cifar_cnn's second conv (direct)
    **{k: OPS_CASES[k] for k in ("a", "b", "f", "g", "h", "i", "pool", "avgpool", "bn")},
}


def _child(names: list[str], repeat: int, threads: int) -> dict[str, float]:
    """Time the cases in this process; {name: fastest forward + backward in ms}."""
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    best = {}
    for name in names:
        step = _runner(*CASES[name][1]("tc"), True, "tc")
        step()
        step()
        best[name] = min(step() for _ in range(repeat)) * 1e3
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
    # the children inherit the thread variables benchmarks.ops set
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")}
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
