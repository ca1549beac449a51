"""Receptive fields: how much of the input one output pixel of each layer sees.

Per axis, a feature map whose pixels each see ``r`` input pixels, ``j`` input pixels apart (the
*jump*: the product of the strides so far), passed through a window of ``k`` taps with
dilation ``d`` and stride ``s``, gives::

    r' = r + d·(k − 1)·j        j' = j·s

A pixel of the next map sees ``d·(k − 1) + 1`` pixels of this one; neighbouring ones add ``j``
input pixels each.  Pointwise layers (activations, batch norm, dropout, padding) change neither.
A merge (``Add``, ``Concatenate`` along channels) sees the union of its inputs' fields: each
field also keeps where it starts (``start' = start − p·j`` for a top/left padding ``p``), so two
branches that look at offset regions (a padded 2×2 conv beside a "same" one) add up.  An
``Add``/``Multiply`` that broadcasts an input of height or width 1 over the map (a gate) sees
the whole input when that input does, else the field is unknown (it would depend on the pixel's
position); so is the field past a ``Concatenate`` along height or width, which puts one input's
pixels after another's.  After ``Dense`` on flat features or global pooling every output sees
the whole input.  ``Flatten`` only moves values, each keeping its pixel's field (a ``Reshape``
to several axes: unknown from there).  A ``Dense`` on an (H, W, C) map mixes each pixel's
channels (a 1×1 window), and one on a (C, H, W) map its rows only (no longer one field per
pixel: unknown from there).  Past a layer of another kind that resizes images (a user's own
layer) the field is unknown, and said so, rather than guessed.  A field may be larger than the
input: the part outside it is padding.
"""

from __future__ import annotations

from dataclasses import dataclass

from .shapes import sliding_shape

_WINDOWS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPool2D", "AveragePooling2D")
_GLOBAL = ("Flatten", "Dense", "Reshape", "GlobalAveragePooling2D")


@dataclass(frozen=True)
class Field:
    """The receptive field of one layer's output pixels: ``size`` and ``jump`` as (H, W)
    pairs, both ``None`` once every output sees the whole input; ``formula``: how this
    layer changed them, with the numbers (empty when it did not)."""

    size: tuple[int, int] | None
    jump: tuple[int, int] | None
    formula: str = ""
    known: bool = True  # False past a layer that resizes images by a rule not known here
    start: tuple[int, int] = (0, 0)  # the input pixel where output pixel 0's field begins

    def text(self) -> str:
        if not self.known:
            return "RF: unknown"
        if self.size is None:
            return "RF: the whole input"
        (rh, rw), (jh, jw) = self.size, self.jump
        jump = f"{jh}" if jh == jw else f"{jh}×{jw}"
        return f"RF {rh}×{rw}, jump {jump}"


_INPUT = Field((1, 1), (1, 1))
_WHOLE = Field(None, None)
_BECOMES_WHOLE = Field(None, None, "every output reads every input pixel")


def _window(layer) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, dilation) of a conv or pooling layer."""
    kernel = getattr(layer, "kernel_size", None) or layer.pool_size
    return kernel, layer.strides, getattr(layer, "dilation_rate", (1, 1))


_UNKNOWN = Field(None, None, known=False)


def _top_left(layer, input_shape) -> tuple[int, int]:
    """The top and left padding of a conv, pooling or zero-padding layer at ``input_shape``."""
    if type(layer).__name__ == "ZeroPadding2D":
        (t, _), (l, _) = layer.padding
        return t, l
    kernel, stride, dilation = _window(layer)
    _, ((t, _), (l, _)) = sliding_shape(
        layer.where,
        input_shape,
        kernel,
        stride,
        layer.padding,
        dilation,
        ceil_mode=getattr(layer, "ceil_mode", False),
        channels_last=getattr(layer, "channels_last", False),
    )
    return t, l


def _shifted(field: Field, pads) -> tuple[int, int]:
    return tuple(s - p * j for s, p, j in zip(field.start, pads, field.jump))


def _through_window(field: Field, kernel, stride, dilation, pads=(0, 0)) -> Field:
    if field.size is None:
        return _UNKNOWN if not field.known else _WHOLE
    size, jump, parts = [], [], []
    for r, j, k, s, d in zip(field.size, field.jump, kernel, stride, dilation):
        size.append(r + d * (k - 1) * j)
        jump.append(j * s)
        grow = f"{d}·({k} − 1)·{j}" if d > 1 else f"({k} − 1)·{j}"
        parts.append(f"r = {r} + {grow} = {size[-1]}, j = {j}·{s} = {jump[-1]}")
    formula = parts[0] if parts[0] == parts[1] else f"H: {parts[0]}; W: {parts[1]}"
    return Field(tuple(size), tuple(jump), formula, start=_shifted(field, pads))


def _span(field: Field) -> str:
    """Input pixels ``a..b`` that output pixel 0 of ``field`` sees (per axis when they differ)."""
    per = [f"{s}..{s + r - 1}" for s, r in zip(field.start, field.size)]
    return per[0] if per[0] == per[1] else f"({per[0]}, {per[1]})"


def _merge(fields: list[Field]) -> Field:
    if not fields:
        return _INPUT
    if not all(f.known for f in fields):
        return _UNKNOWN
    if any(f.size is None for f in fields):
        return _WHOLE
    if len(fields) == 1:
        return Field(fields[0].size, fields[0].jump, start=fields[0].start)
    jump = tuple(max(f.jump[a] for f in fields) for a in range(2))
    if any(f.jump != jump for f in fields):  # maps of one size, unequal jumps: an upper bound
        size = tuple(max(f.size[a] for f in fields) for a in range(2))
        return Field(size, jump, start=tuple(min(f.start[a] for f in fields) for a in range(2)))
    lo = tuple(min(f.start[a] for f in fields) for a in range(2))
    hi = tuple(max(f.start[a] + f.size[a] for f in fields) for a in range(2))
    size = tuple(h - l for h, l in zip(hi, lo))
    formula = ""
    if size != tuple(max(f.size[a] for f in fields) for a in range(2)):
        spans = ", ".join(_span(f) for f in fields)
        r = f"{size[0]}" if size[0] == size[1] else f"{size[0]}×{size[1]}"
        formula = f"the union of its inputs' fields, which are offset ({spans}): r = {r}"
    return Field(size, jump, formula, start=lo)


def _through_model(field: Field, inner: Field) -> Field:
    """A nested model whose own field (from its input, r = j = 1) is ``inner``."""
    if not (field.known and inner.known):
        return _UNKNOWN
    if field.size is None or inner.size is None:
        return _WHOLE
    size = tuple(r + (R - 1) * j for r, j, R in zip(field.size, field.jump, inner.size))
    jump = tuple(j * J for j, J in zip(field.jump, inner.jump))
    start = tuple(s + S * j for s, S, j in zip(field.start, inner.start, field.jump))
    parts = [
        f"r = {r} + ({R} − 1)·{j} = {r2}, j = {j}·{J} = {j2}"
        for r, j, R, J, r2, j2 in zip(field.size, field.jump, inner.size, inner.jump, size, jump)
    ]
    formula = parts[0] if parts[0] == parts[1] else f"H: {parts[0]}; W: {parts[1]}"
    own = Field(inner.size, inner.jump).text().removeprefix("RF ")
    return Field(size, jump, f"its own field {own}: {formula}", start=start)


def _broadcast_pixels(d: dict, channels_last: bool) -> Field | None:
    """An unknown field where an ``Add``/``Multiply`` repeats an input of height or width 1
    over a larger map: every output row (or column) then reads that input's one row, whose
    field stays in place, so how much of the input a pixel sees depends on where it is."""
    out = (d["output_shapes"] or [()])[0]
    if len(out) != 4:
        return None
    h, w = (1, 2) if channels_last else (2, 3)
    for i, (s, t) in enumerate(zip(d["input_shapes"], d["node"].flat_inputs)):
        if len(s) != 4:
            continue
        tall, wide = s[h] == 1 < out[h], s[w] == 1 < out[w]
        if tall and wide:
            how = "height and width 1: every output pixel reads its one pixel"
        elif tall:
            how = "height 1: every output row reads its one row"
        elif wide:
            how = "width 1: every output column reads its one column"
        else:
            continue
        formula = (
            f'input {i} "{t.name}" is broadcast from {how}, so the field depends on where a '
            "pixel is"
        )
        return Field(None, None, formula, known=False)
    return None


def _spatial_concat(layer, d: dict, channels_last: bool) -> Field | None:
    """An unknown field where a ``Concatenate`` joins images along height or width: the maps
    are set one after the other, so an output pixel's field depends on which input it comes
    from and where it lands (near the seam, pixels of two inputs share a window)."""
    out = (d["output_shapes"] or [()])[0]
    if len(out) != 4:
        return None
    axis = layer.axis % 4
    spatial = {1: "height", 2: "width"} if channels_last else {2: "height", 3: "width"}
    if axis not in spatial:
        return None
    formula = (
        f"Concatenate along {spatial[axis]} sets one input's pixels after another's, so the "
        "field depends on which input a pixel comes from and where it lands"
    )
    return Field(None, None, formula, known=False)


def _image_input(d: dict) -> bool:
    return len((d["input_shapes"] or [()])[0]) == 4


def _dense_on_images(field: Field, channels_last: bool) -> Field:
    """``Dense`` reads the last axis only: an (H, W, C) map's channels, pixel by pixel, or a
    (C, H, W) map's rows."""
    if channels_last:
        formula = "Dense mixes each pixel's channels: r and j unchanged (a 1×1 window)"
        return Field(field.size, field.jump, formula, start=field.start)
    formula = "Dense mixes the last axis (W) of a C×H×W map: each output sees whole rows"
    return Field(None, None, formula, known=False)


def _rearranged(field: Field, kind: str, d: dict) -> Field:
    """``Flatten`` (or a ``Reshape`` to flat features) moves values without mixing them: each
    is one pixel of one map, with that pixel's field.  A ``Reshape`` to several axes puts
    pixels next to ones they were not next to: no field per pixel from there."""
    if len((d["output_shapes"] or [()])[0]) <= 2:
        formula = "each value is one pixel of one map: r and j unchanged"
        return Field(field.size, field.jump, formula, start=field.start)
    formula = f"{kind} to several axes puts pixels next to others they were not next to"
    return Field(None, None, formula, known=False)


def _resizes(d: dict) -> bool:
    """Whether a layer of no known kind changes the height or width of its input."""
    ins, outs = d["input_shapes"], d["output_shapes"]
    if not ins or not outs:
        return False
    i, o = tuple(ins[0]), tuple(outs[0])
    if len(i) != 4 or len(o) != 4:
        return len(i) != len(o)
    return i[2:] != o[2:] and i[1:3] != o[1:3]  # neither layout keeps H and W


def receptive_fields(model) -> dict[int, Field]:
    """The :class:`Field` of every node of ``model.graph`` (graph node -> field), measured
    from the model's inputs."""
    from .explain import layouts

    g = model.graph
    channels_last = layouts(model)
    fields: dict[int, Field] = {}
    for n in g:
        layer = g.nodes[n]["layer"]
        kind = type(layer).__name__
        here = _merge([fields[p] for p in g.predecessors(n)])
        if kind == "InputLayer":
            here = _INPUT
        elif kind in _WINDOWS:
            pads = _top_left(layer, g.nodes[n]["input_shapes"][0])
            here = _through_window(here, *_window(layer), pads)
        elif kind == "ZeroPadding2D" and here.size is not None:
            pads = _top_left(layer, None)
            here = Field(here.size, here.jump, start=_shifted(here, pads))
        elif kind == "Dense" and here.size is not None and _image_input(g.nodes[n]):
            here = _dense_on_images(here, channels_last[next(iter(g.predecessors(n)))])
        elif kind in ("Flatten", "Reshape"):  # a whole or unknown field stays so
            here = here if here.size is None else _rearranged(here, kind, g.nodes[n])
        elif kind in _GLOBAL:
            here = _WHOLE if here.size is None and here.known else _BECOMES_WHOLE
        elif kind == "Concatenate" and here.size is not None:
            here = _spatial_concat(layer, g.nodes[n], channels_last[n]) or here
        elif kind in ("Add", "Multiply") and here.size is not None:
            here = _broadcast_pixels(g.nodes[n], channels_last[n]) or here
        elif layer.family == "model":
            inner = receptive_fields(layer)
            outs = [inner[m] for m in layer.graph if layer.graph.out_degree(m) == 0]
            here = _through_model(here, _merge(outs))
        elif here.size is not None and kind != "ZeroPadding2D" and _resizes(g.nodes[n]):
            here = Field(None, None, f"{kind} resizes the image by a rule not known here", False)
        fields[n] = here
    return fields
