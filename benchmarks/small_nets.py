"""Training steps of small CNNs in tinycnn and in PyTorch CPU, in one process.

    python -m benchmarks.small_nets                       # every net, batch 128, 2 threads
    python -m benchmarks.small_nets --nets mnist_cnn --batch 64 --repeat 30
    python -m benchmarks.small_nets --winograd-ab       # + tinycnn without Winograd, alternating

Each net is written once, as a list of layers, and built in both libraries with the same
initial weights (tinycnn's, copied into torch); before timing, one forward pass in inference
mode checks that the two outputs agree.  A step is what ``fit`` does per batch: forward in
training mode, cross-entropy from logits, backward, SGD with momentum 0.9.  The libraries
alternate in blocks as in ``benchmarks/ops.py`` (its thread settings and its
``_interleaved``); times are median milliseconds per step, ratio = tinycnn / torch.

``mnist_cnn``  Keras' MNIST example, 28x28x1: Conv(32, 3) relu, Conv(64, 3) relu, MaxPool 2,
               Dropout 0.25, Flatten, Dense(128) relu, Dropout 0.5, Dense(10).
``cifar_cnn``  32x32x3: Conv(32, 3, same) relu x2, MaxPool 2, Conv(64, 3, same) relu x2,
               MaxPool 2, Flatten, Dense(512) relu, Dense(10).
``cifar_bn``   32x32x3: [Conv(c, 3, same), BatchNorm, relu] for c = 32, 64 (MaxPool 2), 128
               (MaxPool 2), Flatten, Dense(10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from benchmarks.ops import (
    _interleaved,
    timed,
)  # first: sets the thread variables before NumPy loads

NETS = {
    "mnist_cnn": (
        (1, 28, 28),
        [("conv", 32, 0), ("relu",), ("conv", 64, 0), ("relu",), ("pool",), ("drop", 0.25),
         ("flat",), ("dense", 128), ("relu",), ("drop", 0.5), ("dense", 10)],
    ),
    "cifar_cnn": (
        (3, 32, 32),
        [("conv", 32, 1), ("relu",), ("conv", 32, 1), ("relu",), ("pool",), ("conv", 64, 1),
         ("relu",), ("conv", 64, 1), ("relu",), ("pool",), ("flat",), ("dense", 512), ("relu",),
         ("dense", 10)],
    ),
    "cifar_bn": (
        (3, 32, 32),
        [("conv", 32, 1), ("bn",), ("relu",), ("conv", 64, 1), ("bn",), ("relu",), ("pool",),
         ("conv", 128, 1), ("bn",), ("relu",), ("pool",), ("flat",), ("dense", 10)],
    ),
}  # fmt: skip


def build_tinycnn(name: str):
    import tinycnn as tc
    from tinycnn import layers as L

    shape, spec = NETS[name]
    layers = [tc.Input(shape)]
    for kind, *args in spec:
        if kind == "conv":
            layers.append(L.Conv2D(args[0], 3, padding="same" if args[1] else "valid"))
        elif kind == "dense":
            layers.append(L.Dense(args[0]))
        elif kind == "bn":
            layers.append(L.BatchNormalization())
        elif kind == "relu":
            layers.append(L.ReLU())
        elif kind == "pool":
            layers.append(L.MaxPool2D(2))
        elif kind == "drop":
            layers.append(L.Dropout(args[0]))
        else:
            layers.append(L.Flatten())
    return tc.Sequential(layers, name=name)


def build_torch(name: str, state: dict):
    """The same net in torch, with tinycnn's weights (``state``: its ``state_dict()``)."""
    import torch
    from torch import nn

    shape, spec = NETS[name]
    mods, channels, hw = [], shape[0], shape[1]
    weights = iter(
        v for k, v in state.items() if not k.endswith(("moving_mean", "moving_variance"))
    )
    for kind, *args in spec:
        if kind == "conv":
            mods.append(nn.Conv2d(channels, args[0], 3, padding=args[1]))
            channels, hw = args[0], hw if args[1] else hw - 2
        elif kind == "dense":
            mods.append(nn.Linear(channels * hw * hw if hw else channels, args[0]))
            channels, hw = args[0], 0
        elif kind == "bn":
            mods.append(nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01))  # Keras' defaults
        elif kind == "relu":
            mods.append(nn.ReLU())
        elif kind == "pool":
            mods.append(nn.MaxPool2d(2))
            hw //= 2
        elif kind == "drop":
            mods.append(nn.Dropout(args[0]))
        else:
            mods.append(nn.Flatten())
    model = nn.Sequential(*mods)
    with torch.no_grad():
        for mod in model:
            for p in (getattr(mod, "weight", None), getattr(mod, "bias", None)):
                if p is not None:
                    p.copy_(torch.from_numpy(next(weights)))
    return model


def steps(name: str, batch: int, seed: int = 0):
    """``(tinycnn step, torch step, max |output difference| in inference mode)``."""
    import numpy as np
    import torch

    import tinycnn as tc
    import tinycnn.functional as F

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *NETS[name][0])).astype(np.float32)
    y = rng.integers(0, 10, batch)
    tc.manual_seed(seed)
    ours = build_tinycnn(name)
    theirs = build_torch(name, ours.state_dict())
    theirs.eval()
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x)).numpy()
    diff = float(np.abs(ours(x, training=False).numpy() - ref).max())
    theirs.train()

    opt = tc.optim.SGD(ours.parameters(), lr=0.01, momentum=0.9)
    tx, ty = tc.tensor(x), tc.tensor(y)

    def ours_step():
        opt.zero_grad()
        loss = F.cross_entropy(ours(tx, training=True), ty)
        loss.backward()
        opt.step()
        return loss.item()

    topt = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)
    px, py = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(px), py)
        loss.backward()
        topt.step()
        return loss.item()

    return ours_step, torch_step, diff


def _winograd(step, on: bool):
    """``step`` with tinycnn's automatic conv choice allowed to take Winograd, or not."""
    import tinycnn.ops.conv as conv

    waste = conv.WINOGRAD_WASTE

    def run():
        conv.WINOGRAD_WASTE = waste if on else 0.0  # no tile grid wastes 0: never Winograd
        try:
            return step()
        finally:
            conv.WINOGRAD_WASTE = waste

    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default=",".join(NETS), help="comma list of " + ", ".join(NETS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15, help="timed steps of each")
    parser.add_argument(
        "--winograd-ab",
        action="store_true",
        help="also time tinycnn with its convolutions kept off Winograd (im2col), alternating",
    )
    args = parser.parse_args(argv)
    import numba
    import torch

    names = [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = [n for n in names if n not in NETS]
    if unknown:
        parser.error(f"unknown nets {unknown}; choose from {list(NETS)}")
    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(
        f"batch {args.batch}, float32, {args.threads} threads, SGD momentum 0.9; "
        f"median ms per step of {args.repeat}, alternating in blocks"
    )
    extra = f" {'no Winograd':>11} {'ratio':>6}" if args.winograd_ab else ""
    print(
        f"{'net':<10} {'tinycnn':>9} {'torch':>9} {'ratio':>6}  first step  max |out diff|{extra}"
    )
    for name in names:
        ours, theirs, diff = steps(name, args.batch)
        t0 = time.perf_counter()
        ours()  # compiles the kernels, or loads them from Numba's cache
        first = time.perf_counter() - t0
        theirs()
        runners = [timed(_winograd(ours, True)), timed(theirs)]
        if args.winograd_ab:
            _winograd(ours, False)()
            runners.append(timed(_winograd(ours, False)))
        times = _interleaved(runners, args.repeat, warmup=1)
        a, b = statistics.median(times[0]), statistics.median(times[1])
        line = f"{name:<10} {a * 1e3:9.2f} {b * 1e3:9.2f} {a / b:6.2f}  {first:8.2f} s  {diff:.1e}"
        if args.winograd_ab:
            c = statistics.median(times[2])
            line += f"       {c * 1e3:9.2f} {c / b:6.2f}"
        print(line)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
