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


def test_launch_profile_counts_every_launch_of_a_training_step():
    import numpy as np
    import pytest

    model = mlp().to("cuda")
    loss = tc.train.losses.SparseCategoricalCrossentropy(from_logits=True)  # mlp: logits
    model.compile(optimizer=tc.optim.Adam(1e-3), loss=loss)
    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    y = np.arange(8) % 3
    model.fit(x, y, batch_size=4, verbose=0)
    for sync in (False, True):
        with tc.cuda.launch_profile(sync=sync) as profile:
            model.fit(x, y, batch_size=4, verbose=0)  # two steps
        assert profile, "no launch counted"
        names = set(profile)
        assert any(n.endswith("optim._adam") or "adam" in n for n in names), names
        assert all(count >= 1 and seconds >= 0 for count, seconds in profile.values())
        adam = sum(c for n, (c, _) in profile.items() if "adam" in n)
        assert adam == 2 * 4  # four parameter tensors, two steps: one fused update each
        assert sum(c for c, _ in profile.values()) == 2 * 24  # the README's figure
    report = tc.cuda.profile_report(profile, steps=2).splitlines()
    assert report[0].split() == ["kernel", "launches/step", "us/launch", "us/step"]
    assert report[-1].startswith("total") and len(report) == len(profile) + 2
    with tc.cuda.launch_profile(), pytest.raises(RuntimeError, match="do not nest"):
        with tc.cuda.launch_profile():
            pass
    with tc.cuda.launch_profile() as after:  # nothing launched: nothing counted
        pass
    assert after == {}
