"""Merge layers: Concatenate, Add, Multiply.  Each takes a list of at least two inputs and names
every input that does not fit when the shapes disagree; Add and Multiply broadcast size-1 axes,
as Keras' merge layers do."""

from __future__ import annotations

import math
import numbers

from ..graph.layer import Layer
from ..graph.shapes import fmt_shape
from ..ops.shape import cat


class _Merge(Layer):
    family = "merge"
    multi_input = True

    def _names(self, n: int) -> list[str]:
        names = [t.name for t in getattr(self, "_call_inputs", None) or ()]
        if names and len(names) == n:
            return [f'input {i} "{name}"' for i, name in enumerate(names)]
        return [f"input {i}" for i in range(n)]

    def _check_count(self, input_shapes) -> None:
        if len(input_shapes) < 2:
            raise ValueError(
                f"{self.where}: needs a list of at least 2 inputs, got {len(input_shapes)}"
            )
        sizes = {s[0] for s in input_shapes if s and s[0] is not None}
        if len(sizes) > 1:
            names = self._names(len(input_shapes))
            listed = ", ".join(f"{n} has {fmt_shape(s)}" for n, s in zip(names, input_shapes))
            raise ValueError(f"{self.where}: inputs must have the same batch size: {listed}")


class _Elementwise(_Merge):
    """Inputs combined value by value.  Shapes broadcast as in Keras' merge layers (NumPy's
    rule on the non-batch axes, one rank for all): on each axis every input has the same size
    or 1, and the output takes the larger, so a ``(None, C, 1, 1)`` gate scales every pixel of a
    ``(None, C, H, W)`` map."""

    def compute_output_shape(self, input_shapes):
        self._check_count(input_shapes)
        names = self._names(len(input_shapes))
        ref = input_shapes[0]
        rank = len(ref)
        bad = [i for i, s in enumerate(input_shapes) if len(s) != rank]
        if bad:
            listed = "; ".join(
                f"{names[i]} is {len(input_shapes[i])}-d {fmt_shape(input_shapes[i])}" for i in bad
            )
            raise ValueError(
                f"{self.where}: inputs must have the same rank to broadcast, {names[0]} is "
                f"{rank}-d {fmt_shape(ref)} but {listed}. {_rank_hint(input_shapes, names)}"
            )
        # per axis, the first size other than 1 is the one the other inputs must have (or 1)
        target = [next((s[a] for s in input_shapes if s[a] != 1), 1) for a in range(rank)]

        def clashes(s):
            return [a for a in range(1, rank) if s[a] not in (1, target[a])]

        bad = [i for i, s in enumerate(input_shapes) if clashes(s)]
        if bad:
            fits = [i for i in range(len(input_shapes)) if i not in bad]
            shapes = {tuple(input_shapes[i][1:]) for i in fits}
            if len(shapes) == 1:
                verb = "has" if len(fits) == 1 else "have"
                agreed = f"{_and(names[i] for i in fits)} {verb} {fmt_shape(input_shapes[fits[0]])}"
            else:
                common = [ref[0]]
                for a in range(1, rank):
                    common.append(max(input_shapes[i][a] for i in fits))
                agreed = f"{_and(names[i] for i in fits)} broadcast to {fmt_shape(common)}"
            listed = "; ".join(
                f"{names[i]} has {fmt_shape(input_shapes[i])} ("
                + ", ".join(
                    f"axis {a}: {input_shapes[i][a]} is not {target[a]} or 1"
                    for a in clashes(input_shapes[i])
                )
                + ")"
                for i in bad
            )
            raise ValueError(
                f"{self.where}: inputs must have the same shape, or 1 on an axis to broadcast "
                f"along it; {agreed} but {listed}. {self._hint(input_shapes)}"
            )
        return (ref[0], *target[1:])

    def _hint(self, input_shapes) -> str:
        """How to make the inputs fit, for this kind of merge."""
        return "Give each input the same size on every axis, or size 1 where it should repeat."

    def describe(self) -> str:
        return ""


def _and(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _rank_hint(input_shapes, names) -> str:
    """The Reshape that lines a ``(None, C)`` input up with a 4-d map of ``C`` channels."""
    maps = [s for s in input_shapes if len(s) == 4]
    for i, s in enumerate(input_shapes):
        if len(s) != 2 or not maps:
            continue
        c = s[1]
        for m in maps:
            if m[1] == c:
                return (
                    f"Reshape(({c}, 1, 1)) makes {names[i]} (None, {c}, 1, 1), which broadcasts "
                    f"over the height and width of {fmt_shape(m)}."
                )
            if m[3] == c:
                return (
                    f"If {fmt_shape(m)} is channels-last, Reshape((1, 1, {c})) makes {names[i]} "
                    f"(None, 1, 1, {c}), which broadcasts over its height and width."
                )
    return "Reshape the inputs to one rank, each with size 1 on the axes where it should repeat."


class Add(_Elementwise):
    """The sum of the inputs (a residual connection); size-1 axes broadcast.

    Shape
    -----
    Inputs of one rank whose every non-batch axis has one size or 1 → on each axis the larger.
    """

    def call(self, inputs, training: bool = False):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out

    def _hint(self, input_shapes) -> str:
        return (
            "For a residual connection, project the shortcut (a 1×1 Conv2D with the right "
            "filters and strides) to match."
        )


class Multiply(_Elementwise):
    """The element-wise product of the inputs; size-1 axes broadcast, so a ``(None, C, 1, 1)``
    gate scales each channel of a ``(None, C, H, W)`` map (squeeze-and-excitation).

    Shape
    -----
    Inputs of one rank whose every non-batch axis has one size or 1 → on each axis the larger.
    """

    def call(self, inputs, training: bool = False):
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out

    def _hint(self, input_shapes) -> str:
        maps = [s for s in input_shapes if len(s) == 4]
        if not maps:
            return super()._hint(input_shapes)
        m = max(maps, key=lambda s: math.prod(s[1:]))
        c = m[1]
        return (
            "To gate a map per channel (squeeze-and-excitation), give the gate size 1 on "
            f"height and width: Reshape(({c}, 1, 1)) of a Dense({c}) output for the "
            f"{fmt_shape(m)} map (Reshape((1, 1, C)) when channels are last); to gate per "
            f"pixel, give it 1 channel: ({m[0]}, 1, {m[2]}, {m[3]})."
        )


def _format_maker(t):
    """The nearest layer with a ``data_format`` that ``t`` comes from (through layers without
    one, along their first input), or None."""
    node = t.node
    while node is not None:
        if getattr(node.layer, "data_format", None):
            return node.layer
        inputs = node.flat_inputs
        node = inputs[0].node if inputs else None
    return None


class Concatenate(_Merge):
    """Join the inputs along ``axis`` (default 1: the channels of NCHW tensors; Keras' default
    is -1, its channels-last axis)."""

    def __init__(self, axis: int | None = None, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self._default_axis = axis is None  # 1; said when it is the height of channels-last maps
        axis = 1 if axis is None else axis
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool) or axis == 0:
            raise ValueError(
                f"{self.where}: axis must be a non-batch axis (an int != 0), got {axis!r}"
            )
        self.axis = int(axis)

    def _warn_if_height_of_channels_last(self, rank: int) -> None:
        """The default axis 1 is the channels of NCHW maps; on maps that channels-last layers
        made it is their height (Keras' default, -1, joins channels): say so."""
        inputs = getattr(self, "_call_inputs", None)
        if not (self._default_axis and rank == 4 and inputs):
            return
        makers = [_format_maker(t) for t in inputs]
        if all(m is not None and m.data_format == "channels_last" for m in makers):
            import warnings

            warnings.warn(
                f"{self.where}: joins along axis 1, the height of these channels-last maps (from "
                f'"{makers[0].name}", data_format="channels_last"); give axis=-1 to join their '
                "channels (Keras' default), or axis=1 to join along height without this note",
                stacklevel=6,  # the line that calls the layer
            )

    def compute_output_shape(self, input_shapes):
        self._check_count(input_shapes)
        names = self._names(len(input_shapes))
        rank = len(input_shapes[0])
        bad = [i for i, s in enumerate(input_shapes) if len(s) != rank]
        if bad:
            listed = "; ".join(f"{names[i]} is {len(input_shapes[i])}-d" for i in bad)
            raise ValueError(
                f"{self.where}: inputs must have the same rank, {names[0]} is {rank}-d but {listed}"
            )
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(
                f"{self.where}: axis {self.axis} is not a non-batch axis of {rank}-d inputs"
            )
        axis = self.axis % rank
        self._warn_if_height_of_channels_last(rank)
        ref = input_shapes[0]

        def others(s):
            return [d for j, d in enumerate(s[1:], 1) if j != axis]

        bad = [i for i, s in enumerate(input_shapes) if others(s) != others(ref)]
        if bad:
            listed = "; ".join(f"{names[i]} has {fmt_shape(input_shapes[i])}" for i in bad)
            raise ValueError(
                f"{self.where}: inputs must agree on every axis but axis {axis}; {names[0]} has "
                f"{fmt_shape(ref)} but {listed}. Branches of an Inception module need the same "
                'height and width: use padding="same" (and equal strides) in every branch.'
            )
        total = sum(int(s[axis]) for s in input_shapes)
        return (*ref[:axis], total, *ref[axis + 1 :])

    def call(self, inputs, training: bool = False):
        return cat(inputs, dim=self.axis % inputs[0].ndim)

    def describe(self) -> str:
        return "" if self.axis == 1 else f"axis={self.axis}"
