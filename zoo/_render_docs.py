"""Render ``docs/zoo/<name>.svg`` for the ten models and print the README's zoo table.

Usage::

    python -m zoo._render_docs                 # all ten, into docs/zoo/
    python -m zoo._render_docs --out DIR resnet50 vgg16

Each diagram is drawn at depth 0 (the DSL's "collapse every top-level block"): a named block
(``inception_3a``, ``conv2_block1``, ...) is one box, which keeps a 500-layer network readable.
``--depth 1`` opens one level (the branches of each Inception module).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from . import MODELS, PAPERS


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _fmt_macs(n: int) -> str:
    return f"{n / 1e9:.2f} G" if n >= 1e8 else f"{n / 1e6:.2f} M"


def describe(name: str) -> dict:
    """Build ``name`` at its defaults and return what the README table shows."""
    model = MODELS[name]()
    paper = PAPERS[name]
    shape = model.input_shape[1:]
    return {
        "model": model,
        "name": name,
        "paper": paper,
        "input": "×".join(str(d) for d in (*shape[1:], shape[0])),
        "total": model.count_params(),
        "trainable": sum(int(p.size) for p in model.parameters()),
        "macs": sum(d["macs"] for _, d in model.graph.nodes(data=True)),
    }


def table(rows: Sequence[dict], diagrams: str = "docs/zoo") -> str:
    """The Markdown table: model, paper, year, input, params, MACs, diagram."""
    lines = [
        "| model | paper | year | input | params (trainable) | MACs | diagram |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["paper"]
        authors = p.authors.split(", ")
        surnames = [a.split()[-1] for a in authors]
        who = " & ".join(surnames) if len(surnames) <= 2 else f"{surnames[0]} et al."
        lines.append(
            f"| `{r['name']}` | {p.title} ({who}, {p.venue}) "
            f"| {p.year} | {r['input']} | {_fmt_int(r['total'])} ({_fmt_int(r['trainable'])}) "
            f"| {_fmt_macs(r['macs'])} | [svg]({diagrams}/{r['name']}.svg) |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"models to draw (default: all of {list(MODELS)})")
    parser.add_argument("--out", default=os.path.join("docs", "zoo"))
    parser.add_argument("--depth", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name in args.names or list(MODELS):
        row = describe(name)
        row["model"].draw(os.path.join(args.out, f"{name}.svg"), depth=args.depth)
        row.pop("model")  # free the weights before the next build
        rows.append(row)
        print(f"wrote {os.path.join(args.out, name + '.svg')}", flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
