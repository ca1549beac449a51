"""The benchmark scripts keep working (their numbers are measured by hand, not here)."""

from __future__ import annotations

from tests.helpers import needs_torch


@needs_torch
def test_gpu_benchmark_runs_on_the_cpu_at_smoke_sizes(capsys):
    from benchmarks import gpu

    assert gpu.main(["--device", "cpu", "--smoke", "--repeat", "1", "--cases", "c,f,lenet"]) == 0
    out = capsys.readouterr().out
    assert "conv (c)" in out and "conv (f)" in out and "LeNet-5 epoch (300 images)" in out


@needs_torch
def test_ops_benchmark_prints_a_row_per_case(capsys):
    from benchmarks import ops

    ops.main(["--cases", "a,g", "--repeat", "1", "--warmup", "0"])
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "a" in rows and "g" in rows
