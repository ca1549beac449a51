"""Merge layers: Concatenate, Add, Multiply.  Each takes a list of at least two inputs and names
every input that does not fit when the shapes disagree."""

from __future__ import annotations

import numbers

from ..graph.layer import Layer
from ..graph.shapes import fmt_shape
from ..ops.shape import cat


class _Merge(Layer):
    family = "merge"
    multi_input = True

    def _names(self, n: int) -> list[str]:
        names = getattr(self, "_input_names", None)
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
    """Inputs of one shape, combined value by value."""

    def compute_output_shape(self, input_shapes):
        self._check_count(input_shapes)
        ref = input_shapes[0]
        names = self._names(len(input_shapes))
        bad = [i for i, s in enumerate(input_shapes) if tuple(s[1:]) != tuple(ref[1:])]
        if bad:
            listed = "; ".join(f"{names[i]} has {fmt_shape(input_shapes[i])}" for i in bad)
            raise ValueError(
                f"{self.where}: all inputs must have the same shape, {names[0]} has "
                f"{fmt_shape(ref)} but {listed}. For a residual connection, project the shortcut "
                "(a 1×1 Conv2D with the right filters and strides) to match."
            )
        return ref

    def describe(self) -> str:
        return ""


class Add(_Elementwise):
    """The sum of the inputs (a residual connection)."""

    def call(self, inputs, training: bool = False):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Multiply(_Elementwise):
    """The element-wise product of the inputs."""

    def call(self, inputs, training: bool = False):
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out


class Concatenate(_Merge):
    """Join the inputs along ``axis`` (default 1: the channels of NCHW tensors; Keras' default
    is -1, its channels-last axis)."""

    def __init__(self, axis: int = 1, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool) or axis == 0:
            raise ValueError(
                f"{self.where}: axis must be a non-batch axis (an int != 0), got {axis!r}"
            )
        self.axis = int(axis)

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
