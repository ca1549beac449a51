"""The pointwise activation kernels against PyTorch CPU, in one process.

    python -m benchmarks.activations                 # 470,400 float32 values (LeNet-5's conv1)
    python -m benchmarks.activations --size 4704000 --threads 2

Each row times tinycnn's CPU kernel (writing into a preallocated output, as the ops do) and
the torch op with the same meaning, on the same data, alternating in blocks as
``benchmarks/ops.py`` does (its thread settings and its ``_interleaved``); times are median
microseconds per call; ratio = tinycnn / torch (lower is better).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from benchmarks.ops import (
    _interleaved,
    timed,
)  # first: sets the thread variables before NumPy loads


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=470_400, help="values per array")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=200, help="timed calls of each")
    args = parser.parse_args(argv)
    import numba
    import numpy as np

    try:
        import torch
    except ImportError:
        print("benchmarks/activations.py needs torch (pip install torch)")
        return 2
    from tinycnn.ops.cpu import activation as A

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.size).astype(np.float32)
    g = rng.standard_normal(args.size).astype(np.float32)
    out = np.empty_like(x)
    y = np.tanh(x)
    s = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    tx, tg, ty, ts = (torch.from_numpy(a) for a in (x, g, y, s))
    aten = torch.ops.aten
    rows = [
        ("relu forward", lambda: A.relu_forward(x, out), lambda: torch.relu(tx)),
        (
            "relu backward",
            lambda: A.relu_backward(y, g, out),
            lambda: aten.threshold_backward(tg, ty, 0),
        ),
        (
            "leaky_relu forward",
            lambda: A.leaky_relu_forward(x, 0.1, out),
            lambda: torch.nn.functional.leaky_relu(tx, 0.1),
        ),
        (
            "leaky_relu backward",
            lambda: A.leaky_relu_backward(x, g, 0.1, out),
            lambda: aten.leaky_relu_backward(tg, tx, 0.1, False),
        ),
        ("tanh forward", lambda: A.tanh_forward(x, out), lambda: torch.tanh(tx)),
        ("tanh backward", lambda: A.tanh_backward(y, g, out), lambda: aten.tanh_backward(tg, ty)),
        ("sigmoid forward", lambda: A.sigmoid_forward(x, out), lambda: torch.sigmoid(tx)),
        (
            "sigmoid backward",
            lambda: A.sigmoid_backward(s, g, out),
            lambda: aten.sigmoid_backward(tg, ts),
        ),
    ]
    print(
        f"{args.size:,} float32 values, {args.threads} threads; numba {numba.__version__}, "
        f"torch {torch.__version__}"
    )
    print(f"{'kernel':<22} {'tinycnn (us)':>12} {'torch (us)':>11} {'ratio':>6}")
    for name, mine, theirs in rows:
        times = _interleaved([timed(mine), timed(theirs)], args.repeat, warmup=3, block=20)
        a, b = (statistics.median(t) * 1e6 for t in times)
        print(f"{name:<22} {a:12.1f} {b:11.1f} {a / b:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
