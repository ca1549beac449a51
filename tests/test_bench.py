"""``tinycnn bench``: times a training step and a forward pass on random data, and prints the
arithmetic with its numbers."""

from __future__ import annotations

import re

import pytest

import tinycnn as tc
from tinycnn import cli
from tinycnn import layers as L
from tinycnn.bench import bench
from tinycnn.graph import clear_session


def feature_map():
    """A model with a 4-d output (no classifier): bench trains it on an MSE loss."""
    clear_session()
    inp = tc.Input((2, 6, 6))
    return tc.Model(inp, L.Conv2D(3, 3, padding="same", name="conv")(inp), name="fmap")


def two_heads():
    clear_session()
    inp = tc.Input((4,))
    return tc.Model(inp, [L.Dense(2, name="a")(inp), L.Dense(3, name="b")(inp)], name="heads")


def test_bench_times_every_step_and_counts_the_arithmetic():
    from zoo import lenet5

    model = lenet5()
    weights = [w.numpy().copy() for w in model.parameters()]
    r = bench(model, batch_size=8, steps=3)
    assert len(r.train) == 3 and len(r.infer) == 3
    assert r.first > 0 and all(t > 0 for t in r.train + r.infer)
    assert r.params == 61_706 == model.count_params()
    assert r.macs_per_image == sum(model.graph.nodes[n]["macs"] for n in model.graph)
    assert r.train_flop == 6 * r.macs_per_image * 8 and r.infer_flop == 2 * r.macs_per_image * 8
    # it really trained: four SGD steps moved the weights
    assert any((w.numpy() != w0).any() for w, w0 in zip(model.parameters(), weights))


def test_the_command_prints_the_formula_with_the_numbers(capsys):
    assert cli.main(["bench", "lenet5", "--batch-size", "4", "--steps", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "tinycnn bench lenet5: batch 4, float32, cpu (1 thread), random data" in out
    assert "61,706 parameters, 416.52 K MACs per image" in out
    assert re.search(r"training step .* ms median of 2 \(min [\d.]+\), [\d,]+ images/s", out)
    assert re.search(r"inference .* ms median of 2", out)
    # 3 x 2 x 416,520 x 4 = 9,996,480
    assert "= 3 passes x 2 FLOP/MAC x 416.52 K MACs x 4 images = 10.00 MFLOP" in out


def test_a_model_without_a_classifier_is_timed_on_mse(capsys):
    assert cli.main(["bench", "tests.test_bench:feature_map", "--steps", "1"]) == 0
    assert "tinycnn bench fmap: batch 32" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--threads", "0"], "--threads must be between 1 and"),
        (["--steps", "0"], "bench: steps must be a positive int, got 0"),
        (["--batch-size", "0"], "bench: batch size must be a positive int, got 0"),
    ],
)
def test_bad_arguments_are_named(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "lenet5", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_model_with_several_outputs_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "tests.test_bench:two_heads"])
    assert "has 2 outputs; bench times one-output models" in capsys.readouterr().err


def test_the_thread_count_is_restored_afterwards():
    import numba

    before = numba.get_num_threads()
    assert cli.main(["bench", "lenet5", "--batch-size", "2", "--steps", "1", "--threads", "1"]) == 0
    assert numba.get_num_threads() == before


def test_a_classifier_without_softmax_trains_from_logits():
    import numpy as np

    from tests.test_cli import tiny
    from tinycnn.bench import _targets
    from zoo import lenet5

    rng = np.random.default_rng(0)
    y, loss = _targets(tiny(), 4, rng)  # Dense(3), no activation: logits
    assert loss.from_logits and y.shape == (4,) and y.max() < 3
    _, loss = _targets(lenet5(), 4, rng)  # softmax output: fused with the loss
    assert not loss.from_logits
    y, loss = _targets(feature_map(), 4, rng)
    assert type(loss).__name__ == "MeanSquaredError" and y.shape == (4, 3, 6, 6)
