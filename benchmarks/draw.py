"""How long the graph DSL and its views take on a 500-layer model (issue: draw < 5 s).

Run: ``python benchmarks/draw.py`` (needs Graphviz' ``dot`` for the render rows).
Times are medians of ``--repeat`` runs, in seconds; ``dot`` itself dominates the render rows.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinycnn as tc  # noqa: E402
from tinycnn import layers as L  # noqa: E402
from tinycnn.graph import clear_session  # noqa: E402


def build(blocks: int = 50):
    """``blocks`` Inception-ResNet-style blocks of 10 layers: two branches, a concat, a
    projection and a residual add (500 layers for 50 blocks)."""
    clear_session()
    x = inp = tc.Input((16, 8, 8))
    for i in range(blocks):
        with tc.block(f"block{i + 1}"):
            with tc.block("branch_a"):
                a = L.Conv2D(8, 1, use_bias=False, name="conv")(x)
                a = L.BatchNormalization(name="bn")(a)
                a = L.Activation("relu", name="relu")(a)
            with tc.block("branch_b"):
                b = L.Conv2D(8, 1, name="reduce")(x)
                b = L.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(b)
                b = L.BatchNormalization(name="bn")(b)
                b = L.Activation("relu", name="relu")(b)
            y = L.Concatenate(name="concat")([a, b])
            y = L.Conv2D(16, 1, name="project")(y)
            x = L.Add(name="add")([x, y])
    return tc.Model(inp, x, name=f"bench{blocks * 10}")


def timed(fn, repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=50, help="10 layers each (default 50)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    model = build(args.blocks)
    n_layers = len(model.graph) - 1
    out = Path(tempfile.mkdtemp()) / "bench.svg"
    rows = [
        ("build the model (DSL, shapes, weights)", lambda: build(args.blocks)),
        ("summary()", lambda: model.summary(return_string=True)),
        ("to_dot(), all nodes", lambda: model.to_dot(max_nodes=None)),
        (
            "to_dot(collapse_repeated, fold)",
            lambda: model.to_dot(max_nodes=None, collapse_repeated=True, fold=True),
        ),
    ]
    if shutil.which("dot"):
        rows += [
            (f"draw .svg, all {n_layers} nodes", lambda: model.draw(out, max_nodes=None)),
            ("draw .svg, default (auto-collapsed)", lambda: model.draw(out)),
            ("draw .svg, depth=1", lambda: model.draw(out, depth=1)),
        ]
    else:
        print("graphviz `dot` not found: render rows skipped")
    print(f"{n_layers}-layer model ({args.blocks} blocks), median of {args.repeat} [min-max], s")
    for label, fn in rows:
        med, lo, hi = timed(fn, args.repeat)
        print(f"  {label:<42} {med:7.3f}  [{lo:.3f}-{hi:.3f}]")


if __name__ == "__main__":
    main()
