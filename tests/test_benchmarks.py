"""The benchmark scripts keep working (their numbers are measured by hand, not here)."""

from __future__ import annotations

from tests.helpers import needs_torch


@needs_torch
def test_gpu_benchmark_runs_on_the_cpu_at_smoke_sizes(capsys):
    from benchmarks import gpu

    argv = ["--device", "cpu", "--smoke", "--repeat", "1", "--cases", "gemm,c,f,lenet,profile"]
    assert gpu.main(argv) == 0
    out = capsys.readouterr().out
    assert all(f"gemm {layout} 64^3" in out for layout in ("NN", "TN", "NT", "TT"))
    assert "conv (c)" in out and "conv (f)" in out and "LeNet-5 epoch (300 images)" in out
    assert "profile: launches are counted on the GPU only" in out


@needs_torch
def test_ops_benchmark_prints_a_row_per_case(capsys):
    from benchmarks import ops

    ops.main(["--cases", "a,g", "--repeat", "1", "--warmup", "0"])
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "a" in rows and "g" in rows


def test_the_gpu_check_script_is_valid_bash_and_runs_the_gpu_suite():
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "TINYCNN_TEST_GPU=1" in text and "tests/cuda" in text and "benchmarks.gpu" in text


@needs_torch
def test_activations_benchmark_prints_a_row_per_kernel(capsys):
    from benchmarks import activations

    assert activations.main(["--size", "1000", "--repeat", "2", "--threads", "1"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [r.rsplit(None, 3)[0] for r in rows][:2] == ["relu forward", "relu backward"]
    assert len(rows) == 8 and all(float(r.split()[-1]) > 0 for r in rows)


@needs_torch
def test_small_nets_benchmark_builds_the_same_nets_and_times_them(capsys):
    from benchmarks import small_nets

    for name in small_nets.NETS:  # same weights: the inference outputs agree
        assert small_nets.steps(name, batch=2)[2] < 1e-4
    assert small_nets.main(["--nets", "cifar_bn", "--batch", "4", "--repeat", "2"]) == 0
    row = capsys.readouterr().out.splitlines()[-1].split()
    assert row[0] == "cifar_bn" and float(row[3]) > 0


def test_small_nets_winograd_ab_keeps_the_choice_off_winograd_for_its_runs(capsys, monkeypatch):
    import tinycnn.ops.conv as conv
    from benchmarks import small_nets

    chosen = []
    choose = conv.choose_algorithm
    monkeypatch.setattr(
        conv, "choose_algorithm", lambda *a: chosen.append(choose(*a)) or chosen[-1]
    )
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 1)  # the tiny test nets' layers qualify
    monkeypatch.setattr(conv, "WINOGRAD_WASTE", 10.0)
    assert (
        small_nets.main(["--nets", "cifar_bn", "--batch", "2", "--repeat", "2", "--winograd-ab"])
        == 0
    )
    row = capsys.readouterr().out.splitlines()[-1].split()
    assert row[0] == "cifar_bn" and float(row[-1]) > 0 and len(row) == 9
    assert "winograd" in chosen and chosen.count("im2col") > 0
    assert conv.WINOGRAD_WASTE == 10.0  # restored


def test_vector_width_benchmark_prints_a_row_per_case(capsys):
    from benchmarks import vector_width

    assert vector_width.main(["--cases", "bn", "--rounds", "1", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "no AVX-512" in out or out.splitlines()[-1].split()[0] == "bn"
