"""``model.summary()``: Keras' table, plus MACs and the activation memory of one sample."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .shapes import fmt_shape, num_elements
from .views import build_view


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"  # pragma: no cover


def human_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:g}"


def _is_chain(model) -> bool:
    g = model.graph
    return all(g.in_degree(n) <= 1 and g.out_degree(n) <= 1 for n in g)


def summary(
    model,
    depth: int | None = None,
    print_fn: Callable[[str], None] | None = None,
    return_string: bool = False,
    line_length: int | None = None,
) -> str | None:
    """Keras-style table of ``model``: layer (name and type), output shape, parameters, MACs and,
    for graphs that are not a chain, what each layer is connected to; then the totals.

    Parameters
    ----------
    depth : int, optional
        Collapse blocks nested deeper than ``depth`` into one row each (``0``: one row per
        top-level block).  ``None`` shows every layer.
    print_fn : callable, optional
        Called with the text (default ``print``).
    return_string : bool
        Return the text instead of printing it.
    line_length : int, optional
        Truncate lines to this width.

    Notes
    -----
    MACs are the multiply-accumulates of Conv/Dense layers for one sample (the figure papers
    quote; element-wise ops, pooling and normalization are not counted).  Activation memory is
    the size of every layer output for one sample, the input included: what a training step
    keeps alive for the backward pass, per sample.
    """
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise ValueError(f"summary: depth must be an int >= 0 or None, got {depth!r}")
    view = build_view(model, depth=depth)
    keys = view.by_key()
    chain = _is_chain(model)
    preds: dict[str, list[str]] = {}
    for a, b, _ in view.edges:
        preds.setdefault(b, []).append(keys[a].name)

    # each weight counted on one row only (a layer called again, or also inside a nested
    # model: the graph's "params"), so that the rows add up to the total
    rows = []
    for it in view.items:
        new = it.params
        if it.kind == "node":
            reused = sum(k for _, k in model.graph.nodes[it.nodes[0]]["reused"])
            params = f"{new:,}" + (f" (+{reused:,} shared)" if reused else "")
            params = "shared" if reused and not new else params
            label = f"{it.name} ({it.type})"
        else:
            params = f"{new:,}"
            label = f"{it.name} (Block: {it.describe})"
        shapes = it.out_shapes or [()]
        rows.append(
            [
                label,
                fmt_shape(shapes[0]) if shapes[0] else "-",
                params,
                f"{it.macs:,}",
                preds.get(it.key, ["-"]),
                [fmt_shape(s) for s in shapes[1:]],
            ]
        )

    head = ["Layer (type)", "Output Shape", "Param #", "MACs"]
    widths = [max(len(head[c]), *(len(r[c]) for r in rows)) for c in range(4)]
    if not chain:
        head.append("Connected to")

    def fmt(cells) -> str:
        text = (
            f" {cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}"
            f"  {cells[3]:>{widths[3]}}"
        )
        if len(cells) > 4:
            text += f"  {cells[4]}"
        return text.rstrip()

    body = []
    for label, shape, params, macs, conn, more_shapes in rows:
        conn = conn if not chain else []
        body.append(fmt([label, shape, params, macs] + ([conn[0]] if conn else [])))
        for k in range(1, max(len(conn), len(more_shapes) + 1)):
            extra = more_shapes[k - 1] if k - 1 < len(more_shapes) else ""
            body.append(fmt(["", extra, "", ""] + ([conn[k]] if k < len(conn) else [])))
    header = fmt(head)
    width = max(len(line) for line in [header, *body]) + 1
    if line_length:
        width = line_length

    itemsize = np.dtype(model.dtype or np.float32).itemsize
    total = model.count_params()
    trainable = sum(t.size for t in model.parameters())
    frozen = total - trainable
    activations = sum(
        num_elements(s) for n in model.graph for s in model.graph.nodes[n]["output_shapes"]
    )
    macs = sum(model.graph.nodes[n]["macs"] for n in model.graph)
    dtype = np.dtype(model.dtype or np.float32).name
    lines = [
        f'Model: "{model.name}"',
        "_" * width,
        header,
        "=" * width,
        *body,
        "=" * width,
        f"Total params: {total:,} ({human_bytes(total * itemsize)})",
        f"Trainable params: {trainable:,} ({human_bytes(trainable * itemsize)})",
        f"Non-trainable params: {frozen:,} ({human_bytes(frozen * itemsize)})",
        f"Total MACs (one sample): {macs:,} ({human_count(macs)})",
        f"Activation memory (one sample, {dtype}): {activations:,} values "
        f"({human_bytes(activations * itemsize)})",
    ]
    if depth is not None:
        lines.append(
            f"(blocks deeper than {depth} collapsed; summary(depth=None) shows all layers)"
        )
    if line_length:
        lines = [line[:line_length] for line in lines]
    text = "\n".join(lines)
    if return_string:
        return text
    (print_fn or print)(text)
    return None
