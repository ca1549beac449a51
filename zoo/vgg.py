"""VGG-16 (configuration D)."""

from __future__ import annotations

from collections.abc import Sequence

import tinycnn as tc
from tinycnn import Input, Model
from tinycnn import layers as L

from ._common import Paper, check_args, classifier

PAPER = Paper(
    title="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    authors="K. Simonyan, A. Zisserman",
    venue="ICLR",
    year=2015,
)

_VGG16 = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg16(
    num_classes: int = 1000,
    input_shape: Sequence[int] = (3, 224, 224),
    dropout: float = 0.5,
    classifier_activation: str | None = "softmax",
) -> Model:
    """VGG-16 (138,357,544 parameters at the defaults).

    Paper: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR, 2015 (configuration D of Table 1).

    Reproduces ``keras.applications.VGG16`` layer for layer and name for name (``block1_conv1`` is
    ``block1/conv1``; ``fc1``, ``fc2``, ``predictions``): thirteen 3x3 "same" convs with ReLU in
    five blocks, each closed by a 2x2/2 max-pool, then ``Flatten`` -> 4096 -> 4096 -> classes.
    The paper's (and torchvision's) dropout 0.5 after fc1 and fc2, which Keras leaves out, is
    kept: it adds no parameters. torchvision's ``AdaptiveAvgPool2d((7, 7))`` is not used, so on
    inputs other than 224 the width of fc1 follows the input, as in Keras.

    Parameters
    ----------
    num_classes : int
        Width of the output layer.
    input_shape : (C, H, W)
        Without the batch dimension; H and W at least 32 (five 2x2 pools).
    dropout : float
        Rate of the dropout after fc1 and fc2 (0 removes its effect).
    classifier_activation : str or None
        ``"softmax"`` (Keras) or ``None`` for logits (torchvision).
    """
    input_shape = check_args("vgg16", num_classes, input_shape)
    x = inp = Input(shape=input_shape, name="input")
    for b, (filters, convs) in enumerate(_VGG16, start=1):
        with tc.block(f"block{b}"):
            for c in range(1, convs + 1):
                x = L.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{c}")(x)
            x = L.MaxPool2D(2, strides=2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = L.Dense(4096, activation="relu", name=f"fc{i}")(x)
        x = L.Dropout(dropout, name=f"dropout{i}")(x)
    out = classifier(x, num_classes, classifier_activation)
    return Model(inp, out, name="vgg16")
