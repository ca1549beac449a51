"""Op benchmarks: tinycnn vs PyTorch CPU, both on 2 threads, measured in the same run.

    python -m benchmarks.ops                     # every case
    python -m benchmarks.ops --cases c,d --repeat 20
    python -m benchmarks.ops --cases b --algo im2col   # force a conv algorithm

For each case: tinycnn's first call (forward + backward; Numba compilation, or loading the
on-disk cache), then the median of ``--repeat`` timed runs after ``--warmup`` untimed ones, of the
forward and of forward + backward, for tinycnn and torch; ratio = tinycnn / torch (lower is
better).  Inputs that are images (cases a and e) do not require grad, as in training.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

os.environ.setdefault("OMP_NUM_THREADS", "2")  # torch and OpenBLAS: 2 threads, as the machine
# OpenBLAS' idle workers spin for ~2^28 cycles (~70 ms) after each GEMM by default, and on two
# cores that spinning takes a core from whatever runs next -- torch's convolutions measured 4x
# slower right after a NumPy matmul.  A short timeout (2^4 cycles) lets them sleep at once.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
# Likewise OpenMP's idle workers (torch's and Numba's) spin ~300k times before they sleep; the
# same short spin tinycnn asks for, set before torch loads its OpenMP runtime.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numpy as np  # noqa: E402

import tinycnn as tc  # noqa: E402
import tinycnn.functional as F  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover - torch is optional
    torch = None


@dataclass
class Case:
    key: str
    label: str
    build: Callable  # (lib, rng) -> (forward closure, list of tensors to zero)
    extra: dict = field(default_factory=dict)


def _conv_case(n, cin, cout, k, hw, stride=1, padding=0, groups=1, input_grad=True):
    def build(lib, algo=None, channels_last=False):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, cin, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((cout, cin // groups, k, k)) * 0.1).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        if lib == "tc":
            tx = tc.tensor(x, requires_grad=input_grad)
            tw, tb = tc.tensor(w, requires_grad=True), tc.tensor(b, requires_grad=True)
            if algo:
                from tinycnn.ops.conv import Conv2d

                pad = (padding,) * 4
                return (
                    lambda: Conv2d.apply(
                        tx,
                        tw,
                        tb,
                        stride=(stride, stride),
                        padding=pad,
                        dilation=(1, 1),
                        groups=groups,
                        algorithm=algo,
                    ),
                    [tx, tw, tb],
                )
            return lambda: F.conv2d(tx, tw, tb, stride, padding, 1, groups), [tx, tw, tb]
        px = torch.tensor(x, requires_grad=input_grad)
        pw, pb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
        if channels_last:
            px = px.detach().to(memory_format=torch.channels_last).requires_grad_(input_grad)
        return lambda: TF.conv2d(px, pw, pb, stride, padding, 1, groups), [px, pw, pb]

    label = f"conv N{n} {cin}->{cout} {k}x{k}"
    label += f" s{stride}" if stride > 1 else ""
    label += f" p{padding}" if padding else ""
    label += f" g{groups}" if groups > 1 else ""
    label += f" {hw}^2" + ("" if input_grad else " (no dx)")
    return label, build


def _pool_case(kind: str):
    def build(lib, algo=None, channels_last=False):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((16, 256, 56, 56)).astype(np.float32)
        if lib == "tc":
            tx = tc.tensor(x, requires_grad=True)
            fn = F.max_pool2d if kind == "max" else F.avg_pool2d
            return lambda: fn(tx, 3, 2, 1), [tx]
        px = torch.tensor(x)
        if channels_last:
            px = px.to(memory_format=torch.channels_last)
        px.requires_grad_(True)
        fn = TF.max_pool2d if kind == "max" else TF.avg_pool2d
        return lambda: fn(px, 3, 2, 1), [px]

    return f"{kind}_pool2d 3x3 s2 p1 (16,256,56,56)", build


def _bn_case(hw: int):
    def build(lib, algo=None, channels_last=False):
        rng = np.random.default_rng(0)
        c = 256
        x = rng.standard_normal((16, c, hw, hw)).astype(np.float32)
        if lib == "tc":
            tx = tc.tensor(x, requires_grad=True)
            w = tc.tensor(np.ones(c, np.float32), True)
            b = tc.tensor(np.zeros(c, np.float32), True)
            rm, rv = tc.tensor(np.zeros(c, np.float32)), tc.tensor(np.ones(c, np.float32))
            return lambda: F.batch_norm(tx, rm, rv, w, b, True), [tx, w, b]
        px = torch.tensor(x, requires_grad=True)
        w = torch.ones(c, requires_grad=True)
        b = torch.zeros(c, requires_grad=True)
        rm, rv = torch.zeros(c), torch.ones(c)
        return lambda: TF.batch_norm(px, rm, rv, w, b, True), [px, w, b]

    return f"batch_norm train (16,256,{hw},{hw})", build


def _ce_build(lib, algo=None, channels_last=False):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((100, 10)).astype(np.float32)
    y = rng.integers(0, 10, 100)
    if lib == "tc":
        tz, ty = tc.tensor(z, requires_grad=True), tc.tensor(y)
        return lambda: F.cross_entropy(tz, ty), [tz]
    pz, py = torch.tensor(z, requires_grad=True), torch.tensor(y)
    return lambda: TF.cross_entropy(pz, py), [pz]


CASES = {
    "a": _conv_case(100, 1, 6, 5, 32, input_grad=False),
    "b": _conv_case(100, 6, 16, 5, 14),
    "c": _conv_case(16, 256, 256, 3, 14, padding=1),
    "d": _conv_case(16, 1024, 256, 1, 14),
    "e": _conv_case(8, 3, 64, 7, 224, stride=2, padding=3, input_grad=False),
    "f": _conv_case(16, 728, 728, 3, 19, padding=1, groups=728),
    "g": _conv_case(16, 256, 256, 3, 14, padding=1, groups=32),
    "h": _conv_case(128, 32, 64, 3, 26),  # benchmarks.small_nets: mnist_cnn's second conv
    "i": _conv_case(128, 64, 64, 3, 16, padding=1),  # cifar_cnn's fourth conv
    "pool": _pool_case("max"),
    "avgpool": _pool_case("avg"),
    "bn": _bn_case(56),
    "bn28": _bn_case(28),
    "ce": ("cross_entropy (100, 10), integer targets", _ce_build),
}
CHANNELS_LAST = {"pool", "avgpool", "f", "c"}  # also time torch's NHWC path for these


def _runner(fn: Callable, zero: list, backward: bool, lib: str) -> Callable[[], float]:
    """A closure timing one forward (and backward) of ``fn``; returns seconds."""
    grad = {}

    def once() -> float:
        for t in zero:
            t.grad = None
        t0 = time.perf_counter()
        out = fn()
        if backward:
            if "g" not in grad:
                g = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
                grad["g"] = tc.tensor(g) if lib == "tc" else torch.tensor(g)
            out.backward(grad["g"])
        return time.perf_counter() - t0

    return once


def timed(fn: Callable) -> Callable[[], float]:
    """A runner for :func:`_interleaved`: one call of ``fn``, in seconds."""

    def once() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return once


def _interleaved(runners: list, repeat: int, warmup: int, block: int = 5) -> list[list[float]]:
    """Time the runners in blocks (A A A B B B C C C A A A ...), so that a load spike from other
    processes hits all of them alike while each library runs back to back, as in a training
    loop.  Each block starts with ``warmup`` untimed runs: waking up a thread pool that went to
    sleep (torch's OpenMP workers, OpenBLAS') costs up to milliseconds and is not the op."""
    times: list[list[float]] = [[] for _ in runners]
    while len(times[0]) < repeat:
        for k, run_once in enumerate(runners):
            for i in range(warmup + min(block, repeat - len(times[k]))):
                t = run_once()
                if i >= warmup:
                    times[k].append(t)
    return times


def _first_call(fn, zero) -> float:
    t0 = time.perf_counter()
    out = fn()
    out.backward(tc.tensor(np.ones(out.shape, np.float32)))
    for t in zero:
        t.grad = None
    return time.perf_counter() - t0


def _ms(times) -> str:
    ms = statistics.median(times) * 1e3
    return f"{ms:8.3f}" if ms < 1 else f"{ms:8.2f}"


def _ratio(a, b) -> str:
    """Ratio of medians, and in brackets of minima (the least disturbed runs)."""
    return f"{statistics.median(a) / statistics.median(b):5.2f} ({min(a) / min(b):4.2f})"


def run(keys, repeat: int, warmup: int, algo: str | None) -> None:
    head = (
        f"{'case':<7} {'what':<42} {'first':>7} | {'tc fwd':>8} {'torch':>8} {'ratio (min)':>12} | "
        f"{'tc f+b':>8} {'torch':>8} {'ratio (min)':>12}"
    )
    print(head)
    print("-" * len(head))
    for key in keys:
        label, build = CASES[key]
        fn, zero = build("tc", algo=algo)
        first = _first_call(fn, zero)
        runners = [_runner(fn, zero, False, "tc"), _runner(fn, zero, True, "tc")]
        builds = [build("torch")] if torch is not None else []
        if torch is not None and key in CHANNELS_LAST:
            builds.append(build("torch", channels_last=True))
        for pfn, pzero in builds:
            runners += [_runner(pfn, pzero, False, "torch"), _runner(pfn, pzero, True, "torch")]
        times = _interleaved(runners, repeat, warmup)
        tf, tb = times[0], times[1]
        line = f"{key:<7} {label:<42} {first:6.2f}s | {_ms(tf)} "
        if torch is None:
            print(line + f"(torch not installed) | {_ms(tb)}")
            continue
        pf, pb = times[2], times[3]
        print(f"{line}{_ms(pf)} {_ratio(tf, pf)} | {_ms(tb)} {_ms(pb)} {_ratio(tb, pb)}")
        if len(times) > 4:
            cf, cb = times[4], times[5]
            print(
                f"{'':<7} {'  vs torch channels_last':<42} {'':>7} | {'':>8} {_ms(cf)} "
                f"{_ratio(tf, cf)} | {'':>8} {_ms(cb)} {_ratio(tb, cb)}"
            )
        sys.stdout.flush()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma list, e.g. a,b,pool")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per block")
    parser.add_argument(
        "--algo",
        choices=("gemm1x1", "direct", "winograd", "im2col"),
        default=None,
        help="force tinycnn's conv algorithm (default: its own choice)",
    )
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    import numba

    import tinycnn.ops.cpu._numba  # noqa: F401 - sets the threading layer

    print(
        f"tinycnn {tc.__version__}, numpy {np.__version__}, numba {numba.__version__} "
        f"(threading layer {numba.config.THREADING_LAYER}, {numba.get_num_threads()} threads)"
        + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "")
    )
    print(
        f"times in ms: median of {args.repeat} runs, in blocks of 5 after {args.warmup} warm-up "
        "run(s), tinycnn and torch alternating; ratio = tinycnn / torch of the medians (of the "
        "minima); "
        "first = tinycnn's first forward+backward (compilation, or loading Numba's cache)"
    )
    run(keys, args.repeat, args.warmup, args.algo)


if __name__ == "__main__":
    main()
