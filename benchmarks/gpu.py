"""tinycnn on the GPU against PyTorch CUDA on the same GPU, in one run.

    python -m benchmarks.gpu                        # every case
    python -m benchmarks.gpu --cases c,lenet        # some of them
    python -m benchmarks.gpu --device cpu --smoke   # the same code on the CPU, tiny sizes

Cases:

* ``overhead``: the host time of one tiny op (``a + b`` on 1-element tensors, 1000 times),
  which bounds small-batch training;
* ``gemm``: ``matmul`` of two 2048 x 2048 float32 matrices in the four layouts (NN, TN, NT,
  TT: transposed operands are views read in place, as in every backward);
* the conv layers (c) N16 256->256 3x3 p1 14^2, (d) N16 1024->256 1x1 14^2 and (f) depthwise
  N16 728 3x3 p1 19^2 of ``benchmarks/ops.py`` (forward, forward + backward);
* one LeNet-5 MNIST epoch (batch 100, Adam) by tinycnn on the GPU, tinycnn on the CPU and
  torch on the GPU;
* ``profile``: the launches of a LeNet-5 training step, per kernel (count, host time, then
  launch + run), from ``tc.cuda.launch_profile`` (GPU only);
* one ResNet-50 training step (SGD, batch 32, 224x224) by tinycnn and by torch.

torch runs in strict fp32 (``allow_tf32 = False`` for cuDNN and matmul), and its default TF32
figure is printed beside it.  Times are medians of ``--repeat`` runs after warm-up runs, each
ended by a device synchronisation; ratio = tinycnn / torch strict fp32 (lower is better).  On
the GPU the LeNet and ResNet lines end with the caching allocator's counters.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import tinycnn as tc
import tinycnn.functional as F

CONVS = {  # key: (N, C_in, C_out, k, hw, padding, groups)
    "c": (16, 256, 256, 3, 14, 1, 1),
    "d": (16, 1024, 256, 1, 14, 0, 1),
    "f": (16, 728, 728, 3, 19, 1, 728),
}
SMOKE_CONVS = {"c": (2, 8, 8, 3, 6, 1, 1), "d": (2, 16, 8, 1, 6, 0, 1), "f": (2, 8, 8, 3, 7, 1, 8)}


def _sync(device: str) -> None:
    if device == "cuda":
        tc.cuda.synchronize()
        import torch

        torch.cuda.synchronize()


def _median_ms(fn, device: str, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _tf32(torch, on: bool) -> None:
    if hasattr(torch.backends, "cudnn"):
        torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def conv_case(key: str, device: str, repeat: int, smoke: bool) -> list[str]:
    import torch
    import torch.nn.functional as TF

    n, cin, cout, k, hw, pad, groups = (SMOKE_CONVS if smoke else CONVS)[key]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((cout, cin // groups, k, k)) * 0.1).astype(np.float32)
    g = rng.standard_normal((n, cout, hw, hw)).astype(np.float32)
    tx = tc.tensor(x, requires_grad=True, device=device)
    tw = tc.tensor(w, requires_grad=True, device=device)
    tg = tc.tensor(g, device=device)
    px = torch.tensor(x, device=device, requires_grad=True)
    pw = torch.tensor(w, device=device, requires_grad=True)
    pg = torch.tensor(g, device=device)

    def tc_fwd():
        return F.conv2d(tx, tw, padding=pad, groups=groups)

    def tc_fb():
        tx.grad = tw.grad = None
        tc_fwd().backward(tg)

    def pt_fwd():
        return TF.conv2d(px, pw, padding=pad, groups=groups)

    def pt_fb():
        px.grad = pw.grad = None
        pt_fwd().backward(pg)

    cells = []
    for tc_fn, pt_fn in ((tc_fwd, pt_fwd), (tc_fb, pt_fb)):
        mine = _median_ms(tc_fn, device, repeat)
        _tf32(torch, False)
        strict = _median_ms(pt_fn, device, repeat)
        _tf32(torch, True)
        tf32 = _median_ms(pt_fn, device, repeat)
        cells.append(f"{mine:8.3f} {strict:8.3f} {mine / strict:6.2f} {tf32:8.3f}")
    label = f"conv ({key}) N{n} {cin}->{cout} {k}x{k} g{groups} {hw}^2"
    return [f"{label:<40} fwd  {cells[0]}", f"{'':<40} f+b  {cells[1]}"]


def gemm_case(device: str, repeat: int, smoke: bool) -> list[str]:
    """``matmul`` of square float32 matrices in the four layouts (``T``: the operand is a
    transposed view, read in place, as in every backward), with tinycnn's GFLOP/s."""
    import torch

    size = 64 if smoke else 2048
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    ta, tb = tc.tensor(a, device=device), tc.tensor(b, device=device)
    pa, pb = torch.tensor(a, device=device), torch.tensor(b, device=device)
    lines = []
    with tc.no_grad():
        for layout in ("NN", "TN", "NT", "TT"):
            ma = ta.T if layout[0] == "T" else ta
            mb = tb.T if layout[1] == "T" else tb
            qa = pa.T if layout[0] == "T" else pa
            qb = pb.T if layout[1] == "T" else pb
            mine = _median_ms(lambda ma=ma, mb=mb: ma @ mb, device, repeat)
            _tf32(torch, False)
            strict = _median_ms(lambda qa=qa, qb=qb: qa @ qb, device, repeat)
            _tf32(torch, True)
            tf32 = _median_ms(lambda qa=qa, qb=qb: qa @ qb, device, repeat)
            gflops = 2 * size**3 / (mine * 1e-3) / 1e9
            label = f"gemm {layout} {size}^3 ({gflops:.0f} GFLOP/s)"
            lines.append(
                f"{label:<40}      {mine:8.3f} {strict:8.3f} {mine / strict:6.2f} {tf32:8.3f}"
            )
    return lines


def overhead_case(device: str, repeat: int) -> list[str]:
    import torch

    a, b = tc.ones(1, device=device), tc.ones(1, device=device)
    pa, pb = torch.ones(1, device=device), torch.ones(1, device=device)

    def mine():
        for _ in range(1000):
            a + b

    def theirs():
        for _ in range(1000):
            pa + pb

    # milliseconds per 1000 ops = microseconds per op
    us, ref = _median_ms(mine, device, repeat), _median_ms(theirs, device, repeat)
    return [
        f"one tiny op (a + b, 1 element): tinycnn {us:.1f} us, torch {ref:.1f} us "
        f"(ratio {us / ref:.2f})"
    ]


def _allocator(device: str) -> str:
    if device != "cuda":
        return ""
    s = tc.cuda.memory_stats()
    if not s["active"]:
        return "; caching allocator off"
    return (
        f"; allocator: {s['driver_allocs']} driver allocations, {s['reuses']} reuses, "
        f"peak {s['peak_bytes'] / 2**20:.0f} MiB"
    )


def lenet_case(device: str, smoke: bool) -> list[str]:
    import torch

    from benchmarks import torch_models
    from benchmarks.train_lenet import _mnist
    from zoo import lenet5

    x, y, _, _ = _mnist(0.0)
    if smoke:
        x, y = x[:300], y[:300]

    def tinycnn_epoch(dev: str) -> float:
        tc.manual_seed(0)
        model = lenet5().to(dev)
        model.compile(optimizer=tc.optim.Adam(1e-3), loss="categorical_crossentropy")
        model.fit(x[:300], y[:300], batch_size=100, verbose=0)  # compile/load the kernels
        _sync(dev)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=100, verbose=0, seed=0)
        _sync(dev)
        return time.perf_counter() - t0

    def torch_epoch() -> float:
        torch.manual_seed(0)
        model = torch_models.lenet5().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        xs, ys = torch.from_numpy(x), torch.from_numpy(y.argmax(1))
        order = np.random.default_rng(0).permutation(len(x))
        _sync(device)
        t0 = time.perf_counter()
        for i in range(0, len(x), 100):
            idx = order[i : i + 100]
            xb, yb = xs[idx].to(device), ys[idx].to(device)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            loss.item()  # the logged scalar, as tinycnn's fit reads it every step
        _sync(device)
        return time.perf_counter() - t0

    mine, on_cpu = tinycnn_epoch(device), tinycnn_epoch("cpu")
    _tf32(torch, False)
    strict = torch_epoch()
    return [
        f"LeNet-5 epoch ({len(x)} images): tinycnn {device} {mine:.2f} s, tinycnn cpu "
        f"{on_cpu:.2f} s ({on_cpu / mine:.1f}x faster on {device}), torch {device} "
        f"{strict:.2f} s (ratio {mine / strict:.2f}){_allocator(device)}"
    ]


def profile_case(device: str, smoke: bool, steps: int = 20) -> list[str]:
    """Where a LeNet-5 training step (batch 100, Adam) spends its launches: per kernel, the
    launches per step and their host time, then launch + run with a wait after each."""
    if device != "cuda":
        return ["profile: launches are counted on the GPU only (tc.cuda.launch_profile)"]
    from benchmarks.train_lenet import _mnist
    from zoo import lenet5

    x, y, _, _ = _mnist(0.0)
    steps = 2 if smoke else steps
    x, y = x[: 100 * steps], y[: 100 * steps]
    tc.manual_seed(0)
    model = lenet5().to(device)
    model.compile(optimizer=tc.optim.Adam(1e-3), loss="categorical_crossentropy")
    model.fit(x[:200], y[:200], batch_size=100, verbose=0)  # compile/load the kernels
    lines = []
    for sync in (False, True):
        _sync(device)
        t0 = time.perf_counter()
        with tc.cuda.launch_profile(sync=sync) as profile:
            model.fit(x, y, batch_size=100, verbose=0, seed=0)
        _sync(device)
        ms = 1e3 * (time.perf_counter() - t0) / steps
        what = "launch + run (a wait after each)" if sync else "host time of each launch"
        lines.append(f"LeNet-5 training step, {what}: {ms:.2f} ms per step")
        lines.append(tc.cuda.profile_report(profile, steps))
    return lines


def resnet_case(device: str, repeat: int, smoke: bool, batch: int = 32) -> list[str]:
    import torch

    from benchmarks import torch_models
    from zoo import resnet50

    batch, size = (2, 64) if smoke else (batch, 224)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 1000, batch)
    model = resnet50(input_shape=(3, size, size), classifier_activation=None).to(device)
    opt = tc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    tx, ty = tc.tensor(x, device=device), tc.tensor(y, device=device)

    def tc_step():
        opt.zero_grad()
        loss = F.cross_entropy(model(tx, training=True), ty)
        loss.backward()
        opt.step()

    ref = torch_models.resnet50().to(device).train()
    popt = torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9)
    px, py = torch.tensor(x, device=device), torch.tensor(y, device=device)

    def pt_step():
        popt.zero_grad()
        torch.nn.functional.cross_entropy(ref(px), py).backward()
        popt.step()

    mine = _median_ms(tc_step, device, repeat)
    _tf32(torch, False)
    strict = _median_ms(pt_step, device, repeat)
    _tf32(torch, True)
    tf32 = _median_ms(pt_step, device, repeat)
    return [
        f"ResNet-50 train step, batch {batch}, {size}x{size}: tinycnn {mine:.1f} ms, torch fp32 "
        f"{strict:.1f} ms (ratio {mine / strict:.2f}), torch TF32 {tf32:.1f} ms"
        f"{_allocator(device)}"
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="overhead,gemm,c,d,f,lenet,profile,resnet50")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script")
    parser.add_argument(
        "--resnet-batch", type=int, default=32, metavar="N", help="ResNet-50 batch (default 32)"
    )
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("benchmarks.gpu needs torch (pip install torch)")
        return 2
    if args.device == "cuda" and not (tc.cuda.is_available() and torch.cuda.is_available()):
        print("no CUDA GPU for tinycnn and torch here: nothing measured")
        return 2
    if args.device == "cpu":
        torch.set_num_threads(2)
    from importlib import metadata

    import numba

    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    try:
        numba_cuda = metadata.version("numba-cuda")
    except metadata.PackageNotFoundError:
        numba_cuda = "absent"
    print(
        f"{name}; tinycnn {tc.__version__}, numba {numba.__version__}, numba-cuda {numba_cuda}, "
        f"torch {torch.__version__}"
    )
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    header = True
    for key in keys:
        if key in CONVS or key == "gemm":
            if header:
                print(
                    f"{'case':<40}      {'tinycnn':>8} {'fp32':>8} {'ratio':>6} {'TF32':>8}   (ms)"
                )
                header = False
            if key == "gemm":
                lines = gemm_case(args.device, args.repeat, args.smoke)
            else:
                lines = conv_case(key, args.device, args.repeat, args.smoke)
        elif key == "overhead":
            lines = overhead_case(args.device, args.repeat)
        elif key == "lenet":
            lines = lenet_case(args.device, args.smoke)
        elif key == "profile":
            lines = profile_case(args.device, args.smoke)
        elif key == "resnet50":
            lines = resnet_case(
                args.device, max(3, args.repeat // 2), args.smoke, args.resnet_batch
            )
        else:
            parser.error(f"unknown case {key!r}")
        print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
