"""One LeNet-5 epoch on MNIST in tinycnn and in PyTorch CPU, in the same run.

    python -m benchmarks.train_lenet                 # 1 epoch each, 2 threads
    python -m benchmarks.train_lenet --epochs 3 --only tinycnn
    python -m benchmarks.train_lenet --epochs 10 --val-split 0.33 --seeds 0,1,2  # seed's recipe

The seed's LeNet-5 (32x32x1 input, Conv2D(6,5,tanh) -> AvgPool2 -> Conv2D(16,5,tanh) -> AvgPool2
-> Flatten -> Dense(120,tanh) -> Dense(84,tanh) -> Dropout(0.2) -> Dense(10,softmax); Glorot
uniform weights, zero biases), all 60 000 training images, batch 100 (600 steps), Adam 1e-3,
shuffled, no validation (``--val-split F`` holds out the last fraction, as Keras does, and
trains on the rest: the seed's recipe is ``--epochs 10 --val-split 0.33``).  Each framework runs
in its own subprocess (so each one's peak RSS is its own, ``import`` included) with 2 threads;
each first trains a few untimed steps on a throwaway model (Numba compiles or loads its kernels
there; the compile time is reported apart), then a fresh model is trained and timed.
Ratio = tinycnn / torch (lower is better).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

THREADS = "2"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _mnist(val_split: float):
    import math

    from tinycnn.datasets import load_mnist

    x, y = load_mnist("train", pad_to_32=True, one_hot=True)
    xt, yt = load_mnist("test", pad_to_32=True, one_hot=True)
    n = int(math.ceil(len(x) * (1.0 - val_split)))  # Keras: the last fraction is held out
    return x[:n], y[:n], xt, yt


def run_tinycnn(epochs: int, batch: int, seed: int, val_split: float) -> dict:
    import tinycnn as tc
    import zoo

    x, y, xt, yt = _mnist(val_split)
    t0 = time.perf_counter()
    warm = zoo.lenet5()  # compile (or load from the cache) every kernel of a training step
    warm.compile(
        optimizer=tc.optim.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    warm.fit(x[: 3 * batch], y[: 3 * batch], batch_size=batch, verbose=0, shuffle=False)
    warm.evaluate(xt[:batch], yt[:batch], batch_size=batch, verbose=0)
    compile_s = time.perf_counter() - t0

    tc.manual_seed(seed)
    model = zoo.lenet5()
    model.compile(
        optimizer=tc.optim.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    t0 = time.perf_counter()
    h = model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, seed=seed)
    train_s = time.perf_counter() - t0
    _, acc = model.evaluate(xt, yt, batch_size=1000, verbose=0)
    return {
        "epoch_s": train_s / epochs,
        "epoch_s_each": h.epoch_seconds,
        "compile_s": compile_s,
        "test_acc": float(acc),
        "train_acc": h.history["accuracy"][-1],
        "peak_rss_mb": _peak_rss_mb(),
        "params": model.count_params(),
        "threads": int(os.environ.get("NUMBA_NUM_THREADS", 0)),
    }


def run_torch(epochs: int, batch: int, seed: int, val_split: float) -> dict:
    import numpy as np
    import torch
    from torch import nn

    from benchmarks import torch_models

    torch.set_num_threads(int(THREADS))
    torch.manual_seed(seed)
    x, y, xt, yt = _mnist(val_split)
    x, xt = torch.from_numpy(x), torch.from_numpy(xt)
    labels, labels_t = torch.from_numpy(y.argmax(1)), torch.from_numpy(yt.argmax(1))

    def train(model, xs, ys, n_epochs):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        gen = np.random.default_rng(seed)
        for _ in range(n_epochs):
            order = torch.from_numpy(gen.permutation(len(xs)))
            correct = 0
            for i in range(0, len(xs), batch):
                idx = order[i : i + batch]
                opt.zero_grad()
                out = model(xs[idx])
                loss = nn.functional.cross_entropy(out, ys[idx])
                loss.backward()
                opt.step()
                correct += int((out.argmax(1) == ys[idx]).sum())
        return correct / len(xs)

    t0 = time.perf_counter()
    train(torch_models.lenet5(), x[: 3 * batch], labels[: 3 * batch], 1)
    compile_s = time.perf_counter() - t0
    model = torch_models.lenet5()
    t0 = time.perf_counter()
    train_acc = train(model, x, labels, epochs)
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():  # in batches of 1000, as tinycnn's evaluate: same peak-memory terms
        hits = sum(
            int((model(xt[i : i + 1000]).argmax(1) == labels_t[i : i + 1000]).sum())
            for i in range(0, len(xt), 1000)
        )
    acc = hits / len(xt)
    return {
        "epoch_s": train_s / epochs,
        "compile_s": compile_s,
        "test_acc": acc,
        "train_acc": train_acc,
        "peak_rss_mb": _peak_rss_mb(),
        "params": sum(p.numel() for p in model.parameters()),
    }


def _child(framework: str, args, seed: int) -> dict:
    env = dict(
        os.environ,
        OMP_NUM_THREADS=THREADS,
        OPENBLAS_NUM_THREADS=THREADS,
        MKL_NUM_THREADS=THREADS,
        NUMBA_NUM_THREADS=THREADS,
    )
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.train_lenet",
        "--child",
        framework,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(seed),
        "--val-split",
        str(args.val_split),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{framework} run failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one run each")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--val-split", type=float, default=0.0)
    parser.add_argument("--only", choices=("tinycnn", "torch"))
    parser.add_argument("--child", choices=("tinycnn", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run = run_tinycnn if args.child == "tinycnn" else run_torch
        print(json.dumps(run(args.epochs, args.batch_size, args.seed, args.val_split)))
        return 0
    frameworks = [args.only] if args.only else ["tinycnn", "torch"]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"LeNet-5, MNIST, {args.epochs} epoch(s), batch {args.batch_size}, Adam 1e-3, "
        f"{THREADS} threads, val split {args.val_split:g}, seeds {seeds}",
        flush=True,
    )
    results: dict[str, list[dict]] = {fw: [] for fw in frameworks}
    for seed in seeds:
        for fw in frameworks:
            r = _child(fw, args, seed)
            results[fw].append(r)
            print(
                f"{fw:8s} seed {seed}  epoch {r['epoch_s']:6.2f} s   warm-up/compile "
                f"{r['compile_s']:5.1f} s   peak RSS {r['peak_rss_mb']:5.0f} MB   train acc "
                f"{r['train_acc']:.4f}   test acc {r['test_acc']:.4f}",
                flush=True,
            )
    for fw, rs in results.items():
        accs = [r["test_acc"] for r in rs]
        times = [r["epoch_s"] for r in rs]
        print(
            f"{fw:8s} test acc {100 * min(accs):.2f}-{100 * max(accs):.2f} %  "
            f"(mean {100 * sum(accs) / len(accs):.2f} %), epoch {min(times):.2f}-"
            f"{max(times):.2f} s, peak RSS {max(r['peak_rss_mb'] for r in rs):.0f} MB"
        )
    if len(results) == 2:
        ratios = [a["epoch_s"] / b["epoch_s"] for a, b in zip(results["tinycnn"], results["torch"])]
        mem = results["tinycnn"][0]["peak_rss_mb"] / results["torch"][0]["peak_rss_mb"]
        print(
            f"ratio tinycnn/torch: epoch time {min(ratios):.2f}-{max(ratios):.2f}x "
            f"(target <= 1.5x), peak RSS {mem:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
