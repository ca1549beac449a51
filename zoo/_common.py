"""Small building blocks shared by the zoo builders, written only with the public DSL.

Conventions (why they are here, once, instead of in every builder):

* ``momentum`` follows Keras: ``moving = momentum * moving + (1 - momentum) * batch``. A PyTorch
  reference with ``BatchNorm2d(momentum=0.1)`` therefore becomes ``momentum=0.9`` here.
* A ``conv_bn`` unit is its own named block (``<name>/conv``, ``<name>/bn``, ``<name>/relu``), so a
  diagram at depth 1 inside an Inception module shows one box per branch step.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import NamedTuple

import tinycnn as tc
from tinycnn import layers as L

#: BatchNorm2d(momentum=0.1) in PyTorch = momentum 0.9 in the Keras convention of the DSL.
TORCH_MOMENTUM = 0.9


class Paper(NamedTuple):
    """Where an architecture was published."""

    title: str
    authors: str
    venue: str
    year: int


def check_args(
    builder: str, num_classes: int, input_shape: Sequence[int], min_hw: int = 1
) -> tuple[int, int, int]:
    """Validate the arguments every builder takes; return ``input_shape`` as a tuple.

    ``min_hw`` is only a fast, friendly pre-check; the DSL's shape inference remains the authority
    (it names the first layer whose output would be empty).
    """
    if (
        not isinstance(num_classes, numbers.Integral)
        or isinstance(num_classes, bool)
        or num_classes < 1
    ):
        raise ValueError(f"{builder}: num_classes must be a positive int, got {num_classes!r}")
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in shape
    ):
        raise ValueError(
            f"{builder}: input_shape must be (channels, height, width) of positive ints "
            f"(no batch dimension), got {input_shape!r}"
        )
    return tuple(int(d) for d in shape)


def conv_bn(
    x,
    filters: int,
    kernel_size,
    *,
    name: str,
    strides=1,
    padding="same",
    groups: int = 1,
    activation: str | None = "relu",
    scale: bool = True,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
):
    """``Conv2D`` without bias -> ``BatchNormalization`` -> activation, as the block ``name``.

    ``scale=False`` drops the BN gamma (Keras applications' Inception builders do this because a
    following ReLU-then-conv makes it redundant), leaving 3 numbers per channel instead of 4.
    """
    with tc.block(name):
        x = L.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            groups=groups,
            use_bias=False,
            name="conv",
        )(x)
        x = L.BatchNormalization(momentum=momentum, epsilon=epsilon, scale=scale, name="bn")(x)
        if activation is not None:
            x = L.Activation(activation, name=activation)(x)
    return x


def classifier(x, num_classes: int, activation: str | None, name: str = "predictions"):
    """The head: one ``Dense`` to ``num_classes``; the only layer ``num_classes`` changes."""
    return L.Dense(num_classes, activation=activation, name=name)(x)
