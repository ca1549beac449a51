"""``model.explain()``: the seed's dimension walk-through, one line per layer, e.g.

``conv1  Conv2D 6@5×5 S=1 P=0: W2 = (32 − 5 + 2·0)/1 + 1 = 28 → 28×28×6``

Shapes are written the seed's way, height × width × channels of one sample.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from .model import image_output
from .shapes import axis_formula, hwc, num_elements, sliding_shape


def _window_formulas(
    layer, in_shape, out_shape, kernel, strides, dilation, ceil_mode, show_zero_pad, last
) -> str:
    what = "pool" if layer.family == "pool" else "kernel"
    _, pads = sliding_shape(
        layer.where,
        in_shape,
        kernel,
        strides,
        layer.padding,
        dilation,
        ceil_mode,
        channels_last=last,
        what=what,
    )
    sizes = (in_shape[1], in_shape[2]) if last else (in_shape[2], in_shape[3])
    outs = (out_shape[1], out_shape[2]) if last else (out_shape[2], out_shape[3])
    parts = []
    for axis, size, k, s, d, (lo, hi), out in zip(
        "HW", sizes, kernel, strides, dilation, pads, outs
    ):
        parts.append(
            axis_formula(axis, size, d * (k - 1) + 1, s, lo, hi, out, ceil_mode, show_zero_pad)
        )
    same = parts[0][1:] == parts[1][1:]
    return parts[1] if same else ", ".join(parts)


def _conv_params(layer) -> str:
    kh, kw = layer.kernel_size
    cin = layer._in_channels
    n = layer.count_params()
    name = type(layer).__name__
    if name == "Conv2D":
        per = f"{kh}·{kw}·{cin // layer.groups}"
        return (
            f"({per} + 1)·{layer.filters} = {n:,}"
            if layer.use_bias
            else (f"{per}·{layer.filters} = {n:,}")
        )
    m = layer.depth_multiplier
    dw = f"{kh}·{kw}·{cin}" + (f"·{m}" if m > 1 else "")
    if name == "DepthwiseConv2D":
        return f"{dw} + {cin * m} = {n:,}" if layer.use_bias else f"{dw} = {n:,}"
    pw = f"{cin * m}·{layer.filters}"
    bias = f" + {layer.filters}" if layer.use_bias else ""
    return f"{dw} + {pw}{bias} = {n:,}"


def explain_node(
    layer,
    in_shapes,
    out_shapes,
    last_in: bool,
    last_out: bool,
    shared_with: str | None = None,
    reused: list[tuple[str, int]] | None = None,
) -> str:
    """One layer's walk-through line (without the name column).  ``shared_with``: the line
    that already counts all of the layer's weights (its first call when this is a later one);
    ``reused``: (line, count) for the part of them that earlier lines count (a nested model
    holding a layer also called on its own).  Weights are counted on one line only, so the
    lines add up to the model's total."""

    def params(count: str) -> str:
        if shared_with:
            return f"params shared with {shared_with}"
        if reused:
            minus = "".join(f" − {k:,} shared with {name}" for name, k in reused)
            new = layer.count_params() - sum(k for _, k in reused)
            return f"params {layer.count_params():,}{minus} = {new:,}"
        return f"params {count}"

    kind = type(layer).__name__
    out = out_shapes[0]
    ins = in_shapes
    desc = layer.describe()
    shape_out = hwc(out, last_out)
    if kind == "InputLayer":
        return f"Input: {shape_out}"
    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
        f = _window_formulas(
            layer,
            ins[0],
            out,
            layer.kernel_size,
            layer.strides,
            layer.dilation_rate,
            False,
            True,
            last_in,
        )
        act = f", then {layer.activation_name}" if layer.activation_name else ""
        desc = desc.rsplit(" " + layer.activation_name, 1)[0] if layer.activation_name else desc
        return f"{kind} {desc}: {f} → {shape_out}{act}; {params(_conv_params(layer))}"
    if kind in ("MaxPool2D", "AveragePooling2D"):
        f = _window_formulas(
            layer,
            ins[0],
            out,
            layer.pool_size,
            layer.strides,
            (1, 1),
            layer.ceil_mode,
            False,
            last_in,
        )
        return f"{kind} {desc}: {f} → {shape_out}"
    if kind == "GlobalAveragePooling2D":
        s = ins[0]
        hw = f"{s[1]}×{s[2]}" if last_in else f"{s[2]}×{s[3]}"
        return f"{kind}: {hwc(s, last_in)} → {shape_out} (mean over {hw})"
    if kind == "Flatten":
        return f"Flatten: {hwc(ins[0], last_in)} = {num_elements(out)}"
    if kind == "Dense":
        n_in = ins[0][-1]
        bias = f" + {layer.units}" if layer.use_bias else ""
        act = f", then {layer.activation_name}" if layer.activation_name else ""
        count = f"{n_in}·{layer.units}{bias} = {layer.count_params():,}"
        return f"Dense {layer.units}: {hwc(ins[0], last_in)} → {shape_out}{act}; {params(count)}"
    if kind == "Concatenate":
        axis = layer.axis % len(out)
        if len(out) == 4 and axis == (3 if last_out else 1):
            parts = " + ".join(str(s[axis]) for s in ins)
            return f"Concatenate channels: {parts} = {out[axis]} → {shape_out}"
        parts = " + ".join(str(s[axis]) for s in ins)
        return f"Concatenate axis {axis}: {parts} = {out[axis]} → {shape_out}"
    if kind in ("Add", "Multiply"):
        op = " + " if kind == "Add" else " ⊙ "
        rule = (
            "shapes agree" if all(tuple(s) == tuple(out) for s in ins) else "size-1 axes broadcast"
        )
        return f"{kind}: {op.join(hwc(s, last_in) for s in ins)} ({rule}) → {shape_out}"
    if kind == "ZeroPadding2D":
        (t, b), (l, r) = layer.padding
        s = ins[0]
        h, w = (s[1], s[2]) if last_in else (s[2], s[3])
        return (
            f"ZeroPadding2D: H2 = {h} + {t} + {b} = {h + t + b}, W2 = {w} + {l} + {r} = "
            f"{w + l + r} → {shape_out}"
        )
    if kind == "BatchNormalization":
        c = layer._channels
        n = layer.count_params()
        per = 2 + int(layer.scale) + int(layer.center)
        count = f"{per}·{c} = {n:,} ({(per - 2) * c:,} trainable)"
        return f"BatchNormalization: shape unchanged → {shape_out}; {params(count)}"
    if kind == "Reshape":
        return f"Reshape: {hwc(ins[0], last_in)} → {shape_out}"
    if layer.family == "model":
        return (
            f"{kind} ({desc}): {', '.join(hwc(s) for s in ins)} → "
            f"{', '.join(hwc(s) for s in out_shapes)}; {params(f'{layer.count_params():,}')}"
        )
    label = f"{kind} {desc}".rstrip()
    if all(tuple(s) == tuple(out) for s in ins):
        return f"{label}: shape unchanged → {shape_out}"
    return f"{label}: {', '.join(hwc(s, last_in) for s in ins)} → {shape_out}"


def _declared_format(g, n) -> str | None:
    """The data format of the first layers downstream of node ``n`` that declare one."""
    seen, todo = set(), list(g.successors(n))
    found = set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        fmt = getattr(g.nodes[m]["layer"], "data_format", None)
        if fmt:
            found.add(fmt)
        else:
            todo.extend(g.successors(m))
    return found.pop() if len(found) == 1 else None


def layouts(model) -> dict[int, bool]:
    """Graph node -> whether its output is channels-last ``(N, H, W, C)``: a layer's own
    ``data_format``, else its input's; an ``Input`` takes the format of the layers that read
    it, and flat outputs are never channels-last."""
    g = model.graph
    out: dict[int, bool] = {}
    for n in g:
        d = g.nodes[n]
        preds = list(g.predecessors(n))
        fmt = getattr(d["layer"], "data_format", None)
        if fmt:
            last = fmt == "channels_last"
        elif preds:
            last = out[preds[0]]
        else:
            last = _declared_format(g, n) == "channels_last"
        out[n] = last and image_output(d)
    return out


def _field_text(field, previous) -> str:
    """The receptive-field column of one line: the field, and how this layer changed it."""
    if (
        field.size is None
        and previous is not None
        and previous.size is None
        and field.known == previous.known
    ):
        return ""  # already global (or unknown): nothing more to say
    text = field.text()
    return f" | {text}: {field.formula}" if field.formula else f" | {text}"


def explain(
    model,
    print_fn: Callable[[str], None] | None = None,
    return_string: bool = False,
    receptive_field: bool = False,
) -> str | None:
    """The seed's dimension walk-through of every layer of ``model`` (printed or returned);
    with ``receptive_field``, each line also gives the receptive field of the layer's output
    pixels and how it grew (see :mod:`tinycnn.graph.receptive`)."""
    g = model.graph
    if receptive_field:
        from .receptive import receptive_fields

        fields = receptive_fields(model)
    layout = layouts(model)
    rows = []
    first_call: dict[int, str] = {}  # layer -> the name of its first call in this model
    for n in g:
        d = g.nodes[n]
        layer = d["layer"]
        preds = list(g.predecessors(n))
        last_in = layout[preds[0]] if preds else layout[n]
        last_out = layout[n]
        first = first_call.setdefault(id(layer), d["name"])
        new, reused = d["params"], d["reused"]
        shared_with = None
        if first != d["name"]:  # a later call: its first one counts the weights
            shared_with = first
        elif reused and not new:  # every weight counted already (a nested model held it)
            shared_with = " and ".join(name for name, _ in reused)
        text = explain_node(
            layer,
            d["input_shapes"],
            d["output_shapes"],
            last_in,
            last_out,
            shared_with,
            None if shared_with else reused,
        )
        if receptive_field:
            text += _field_text(fields[n], fields[preds[0]] if preds else None)
        rows.append((d["name"], text))
    width = min(max(len(name) for name, _ in rows), 40)
    head = (
        f'Model "{model.name}": dimension walk-through (one sample, height×width×channels; '
        "W2 = (W1 − F + 2P)/S + 1"
    )
    if receptive_field:
        head += "; receptive field r = r + d·(F − 1)·j, jump j = j·S, from r = j = 1"
    lines = [head + ")"]
    lines += [f"{name:<{width}}  {text}" for name, text in rows]
    total = model.count_params()
    lines.append(f"Total: {total:,} parameters")
    if receptive_field:
        lines.append(_largest_field(model, fields, layout))
    text = "\n".join(lines)
    if return_string:
        return text
    (print_fn or print)(text)
    return None


def _largest_field(model, fields, layout) -> str:
    """The closing line: the field of the last layer whose outputs are still pixels
    (``layout``: :func:`layouts` of the model)."""
    g = model.graph
    lost = [n for n in g if not fields[n].known]
    if lost:
        first = lost[0]
        return (
            f"Receptive field: unknown from {g.nodes[first]['name']} on ({fields[first].formula})"
        )
    spatial = [n for n in g if fields[n].size is not None and image_output(g.nodes[n])]
    if not spatial:
        return "Receptive field: no layer keeps a spatial layout"
    n = spatial[-1]
    d = g.nodes[n]
    (rh, rw) = fields[n].size
    sources = [m for m in g if g.in_degree(m) == 0 and image_output(g.nodes[m])]
    reads = [m for m in sources if m == n or nx.has_path(g, m, n)]  # the input(s) it reads
    first = (reads or sources or [next(iter(g))])[0]
    ins = g.nodes[first]["output_shapes"][0]
    h, w = (ins[1], ins[2]) if layout[first] else (ins[-2], ins[-1])
    note = ""
    if rh > h or rw > w:
        note = " (larger than the input: part of every field lies in the padding)"
    return (
        f"Receptive field of {d['name']}, the last layer with spatial outputs: {rh}×{rw} "
        f"pixels of the {h}×{w} input{note}"
    )
