"""``tinycnn bench --device cuda`` runs its steps on the device (simulator or GPU)."""

from __future__ import annotations

import tinycnn as tc
from tinycnn import cli
from tinycnn import layers as L
from tinycnn.graph import clear_session


def mlp():
    clear_session()
    inp = tc.Input((6,))
    return tc.Model(inp, L.Dense(3, name="fc")(L.Dense(4, activation="relu")(inp)), name="mlp")


def test_bench_on_the_device(capsys):
    argv = ["bench", "tests.cuda.test_bench:mlp", "--device", "cuda", "--batch-size", "4"]
    assert cli.main([*argv, "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "tinycnn bench mlp: batch 4, float32, cuda, random data" in out
    assert "43 parameters" in out and "ms median of 1" in out
