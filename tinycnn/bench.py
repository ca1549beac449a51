"""``tinycnn bench MODEL``: how fast MODEL trains and infers on this machine.

It runs on random data of MODEL's input shape, so it needs no dataset. First it runs one
training step and reports it apart: that step compiles the kernels, or loads them from Numba's
cache. After three untimed steps it times ``--steps`` training steps, the way ``fit`` runs
them: the batch copied to the device, forward, loss, backward, an SGD update, and the loss
read back. Last it times ``--steps`` forward passes with no tape (after three untimed ones).
It prints the median and the minimum of each, the images per second, and the arithmetic rate
from the model's multiply-accumulates, with the formula and its numbers::

    training FLOP per step = 3 passes x 2 FLOP per MAC x MACs per image x batch

The backward pass does about twice the forward's multiply-accumulates: one GEMM for the input
gradient and one for the weight gradient, per GEMM of the forward.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field

__all__ = ["BenchResult", "bench", "cmd_bench", "configure_bench"]

# untimed steps after the first: buffers and caches settle (a LeNet-5 step's median over 20
# timed steps was 5.75 ms without them, 4.5 ms with)
WARMUP = 3


@dataclass
class BenchResult:
    """Seconds per step: ``first`` (compiles or loads kernels), ``train``, ``infer`` (lists)."""

    model: str
    device: str
    batch_size: int
    params: int
    macs_per_image: int
    first: float
    train: list[float] = field(default_factory=list)
    infer: list[float] = field(default_factory=list)

    @property
    def train_flop(self) -> float:
        return 3 * 2 * self.macs_per_image * self.batch_size

    @property
    def infer_flop(self) -> float:
        return 2 * self.macs_per_image * self.batch_size


def _sync(device: str) -> None:
    if device == "cuda":
        from . import cuda

        cuda.synchronize()


def _targets(model, batch_size: int, rng):
    """Labels and cross-entropy for a classifier ((N, classes) output: from its softmax, or
    from logits when the output has none), else zeros of the output's shape and MSE."""
    import numpy as np

    from .train.loop import _fusable_layer
    from .train.losses import MeanSquaredError, SparseCategoricalCrossentropy

    shape = model.output_shape
    if isinstance(shape, list):
        raise ValueError(
            f"bench: model {model.name!r} has {len(shape)} outputs; bench times one-output models"
        )
    if len(shape) == 2:
        logits = _fusable_layer(model, "softmax") is None
        loss = SparseCategoricalCrossentropy(from_logits=logits)
        return rng.integers(0, shape[1], batch_size), loss
    return np.zeros((batch_size, *shape[1:]), dtype=np.float32), MeanSquaredError()


def bench(model, batch_size: int = 32, steps: int = 10, device: str = "cpu", seed: int = 0):
    """Time ``model``'s training step and forward pass on random data; a :class:`BenchResult`."""
    import numpy as np

    from .autograd import no_grad
    from .optim import SGD
    from .tensor import Tensor
    from .train.callbacks import Callback

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"bench: batch size must be a positive int, got {batch_size!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"bench: steps must be a positive int, got {steps!r}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, *model.input_shape[1:])).astype(np.float32)
    y, loss = _targets(model, batch_size, rng)
    macs = model.macs(model.input_shape, model.output_shape)
    model.to(device)
    model.compile(optimizer=SGD(lr=1e-3, momentum=0.9), loss=loss)

    class StepTimer(Callback):
        def __init__(self):
            self.times: list[float] = []

        def on_train_batch_begin(self, batch, logs=None):
            _sync(device)
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self._t0)  # fit read the loss: synced

    timer = StepTimer()
    # one epoch of batches back to back: the first, WARMUP untimed, then the timed steps
    reps = (1 + WARMUP + steps,) + (1,) * (x.ndim - 1)
    model.fit(
        np.tile(x, reps),
        np.tile(y, reps[: y.ndim]),
        batch_size=batch_size,
        shuffle=False,
        verbose=0,
        callbacks=[timer],
    )
    result = BenchResult(
        model=model.name,
        device=device,
        batch_size=batch_size,
        params=model.count_params(),
        macs_per_image=macs,
        first=timer.times[0],
        train=timer.times[1 + WARMUP :],
    )
    with no_grad():
        for step in range(WARMUP + steps):
            _sync(device)
            t0 = time.perf_counter()
            model(Tensor(x, device=device), training=False)
            _sync(device)
            if step >= WARMUP:
                result.infer.append(time.perf_counter() - t0)
    return result


def _line(what: str, times: list[float], batch: int, flop: float) -> str:
    med, low = statistics.median(times), min(times)
    rate = batch / med
    images = f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}"
    return (
        f"  {what:<50} {med * 1e3:9.2f} ms median of {len(times)} (min {low * 1e3:.2f}), "
        f"{images} images/s, {flop / med / 1e9:.1f} GFLOP/s"
    )


def report(r: BenchResult, threads: str) -> str:
    from .graph.summary import human_count

    lines = [
        f"tinycnn bench {r.model}: batch {r.batch_size}, float32, {r.device}{threads}, random data",
        f"  {r.params:,} parameters, {human_count(r.macs_per_image)} MACs per image",
        f"  first training step: {r.first:.2f} s (compiles the kernels, or loads them from "
        "Numba's cache)",
        _line(
            "training step (copy, forward, loss, backward, SGD)",
            r.train,
            r.batch_size,
            r.train_flop,
        ),
        _line("inference (forward, no tape)", r.infer, r.batch_size, r.infer_flop),
        f"  training FLOP per step = 3 passes x 2 FLOP/MAC x {human_count(r.macs_per_image)} "
        f"MACs x {r.batch_size} images = {human_count(r.train_flop)}FLOP",
    ]
    return "\n".join(lines)


def configure_bench(parser: argparse.ArgumentParser) -> None:
    from .cli import _model_args

    _model_args(parser)
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="default 32")
    parser.add_argument(
        "--steps", type=int, default=10, metavar="N", help="timed steps of each kind (default 10)"
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")


def cmd_bench(args: argparse.Namespace) -> int:
    from .cli import _build

    if args.device != "cpu":
        print(report(bench(_build(args), args.batch_size, args.steps, args.device), ""))
        return 0
    from .ops.cpu._numba import numba  # tinycnn's threading layer, before the pool starts

    before = numba.get_num_threads()
    if args.threads is not None and not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS} "
            f"(this machine's cores), got {args.threads}"
        )
    try:
        numba.set_num_threads(args.threads or before)
        n = numba.get_num_threads()
        result = bench(_build(args), args.batch_size, args.steps, args.device)
    finally:
        numba.set_num_threads(before)  # cli.main may be called from a program
    print(report(result, f" ({n} thread{'s' if n > 1 else ''})"))
    return 0
