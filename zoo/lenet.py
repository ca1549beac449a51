"""LeNet-5, as the seed's Keras model writes it."""

from __future__ import annotations

from collections.abc import Sequence

from tinycnn import Input, Model
from tinycnn import layers as L

from ._common import Paper, check_args, classifier

PAPER = Paper(
    title="Gradient-Based Learning Applied to Document Recognition",
    authors="Y. LeCun, L. Bottou, Y. Bengio, P. Haffner",
    venue="Proceedings of the IEEE",
    year=1998,
)


def lenet5(
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 32, 32),
    dropout: float = 0.2,
    classifier_activation: str | None = "softmax",
) -> Model:
    """LeNet-5 (61,706 parameters at the defaults).

    Paper: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to
    Document Recognition", Proceedings of the IEEE, 1998.

    Reproduces the seed's Keras model, the common modern reading of the paper: 32x32 input,
    ``Conv2D(6, 5, tanh)`` -> ``AveragePooling2D(2)`` -> ``Conv2D(16, 5, tanh)`` ->
    ``AveragePooling2D(2)`` -> ``Flatten`` -> ``Dense(120, tanh)`` -> ``Dense(84, tanh)`` ->
    ``Dropout(0.2)`` -> ``Dense(num_classes, softmax)``. The paper's partial C3 connection table,
    trainable subsampling coefficients and RBF output layer are not reproduced (nor are they by the
    seed): C3 here sees all six S2 maps.

    Parameters
    ----------
    num_classes : int
        Width of the output layer.
    input_shape : (C, H, W)
        Without the batch dimension. H and W must be at least 16 (two 5x5 valid convs and two
        2x2 pools); 32 is the paper's padded MNIST, and 28 (raw MNIST) works too.
    dropout : float
        Rate of the dropout before the classifier (the seed's 0.2).
    classifier_activation : str or None
        ``"softmax"`` (the seed) or ``None`` for logits.
    """
    input_shape = check_args("lenet5", num_classes, input_shape)
    x = inp = Input(shape=input_shape, name="input")
    x = L.Conv2D(6, 5, activation="tanh", name="conv1")(x)
    x = L.AveragePooling2D(2, name="pool1")(x)
    x = L.Conv2D(16, 5, activation="tanh", name="conv2")(x)
    x = L.AveragePooling2D(2, name="pool2")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(120, activation="tanh", name="fc1")(x)
    x = L.Dense(84, activation="tanh", name="fc2")(x)
    x = L.Dropout(dropout, name="dropout")(x)
    out = classifier(x, num_classes, classifier_activation)
    return Model(inp, out, name="lenet5")
