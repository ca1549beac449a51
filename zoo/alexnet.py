"""AlexNet: the paper's two-tower network, and torchvision's single-tower form."""

from __future__ import annotations

from collections.abc import Sequence

import tinycnn as tc
from tinycnn import Input, Model
from tinycnn import layers as L

from ._common import Paper, check_args, classifier

PAPER = Paper(
    title="ImageNet Classification with Deep Convolutional Neural Networks",
    authors="A. Krizhevsky, I. Sutskever, G. E. Hinton",
    venue="NIPS",
    year=2012,
)

# The paper's response normalization: b = a / (k + alpha * sum(a^2 over n maps))^beta with
# k=2, n=5, alpha=1e-4, beta=0.75. The DSL's LocalResponseNormalization follows PyTorch, which
# divides alpha by n, so the paper's alpha is passed as alpha * n.
_LRN = {"size": 5, "alpha": 1e-4 * 5, "beta": 0.75, "k": 2.0}

#            (filters, kernel, stride, padding, groups, lrn, pool) per conv stage
_PAPER_CONVS = [
    (96, 11, 4, "valid", 1, True, True),
    (256, 5, 1, 2, 2, True, True),
    (384, 3, 1, 1, 1, False, False),
    (384, 3, 1, 1, 2, False, False),
    (256, 3, 1, 1, 2, False, True),
]
_TORCHVISION_CONVS = [
    (64, 11, 4, 2, 1, False, True),
    (192, 5, 1, 2, 1, False, True),
    (384, 3, 1, 1, 1, False, False),
    (256, 3, 1, 1, 1, False, False),
    (256, 3, 1, 1, 1, False, True),
]


def alexnet(
    num_classes: int = 1000,
    input_shape: Sequence[int] | None = None,
    variant: str = "paper",
    dropout: float = 0.5,
    classifier_activation: str | None = "softmax",
) -> Model:
    """AlexNet (60,965,224 parameters in the paper's form, 61,100,840 in torchvision's).

    Paper: A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep
    Convolutional Neural Networks", NIPS, 2012.

    ``variant="paper"`` (default) is the network of the paper's Figure 2 on a 227x227 input (the
    size that makes its arithmetic work): conv1 96 11x11/4, conv2 256 5x5, conv3 384, conv4 384,
    conv5 256 3x3, all ReLU; response normalization (k=2, n=5, alpha=1e-4, beta=0.75) after conv1
    and conv2; overlapping 3x3/2 max-pooling after conv1, conv2 and conv5; fc6/fc7 4096 with
    dropout 0.5. The paper's two GPUs ("towers") are ``groups=2`` on conv2, conv4 and conv5, whose
    kernels see only the maps of their own GPU; conv3 and the dense layers cross over.

    ``variant="torchvision"`` reproduces ``torchvision.models.alexnet`` (the single-tower "One
    weird trick" form, 224x224): 64/192/384/256/256 maps, no LRN, dropout before fc6 and fc7. Its
    ``AdaptiveAvgPool2d((6, 6))`` is omitted: at 224 it is the identity, and on other sizes the
    flattened width follows the input instead.

    Parameters
    ----------
    num_classes : int
        Width of the output layer.
    input_shape : (C, H, W) or None
        Without the batch dimension; ``None`` means (3, 227, 227) for the paper, (3, 224, 224) for
        torchvision. At least 67x67 (paper) or 63x63 (torchvision): three 3x3/2
        pools follow a stride-4 conv.
    variant : {"paper", "torchvision"}
    dropout : float
        Rate of the dropout around fc6 and fc7.
    classifier_activation : str or None
        ``"softmax"`` or ``None`` for logits.
    """
    if variant not in ("paper", "torchvision"):
        raise ValueError(f"alexnet: variant must be 'paper' or 'torchvision', got {variant!r}")
    paper = variant == "paper"
    if input_shape is None:
        input_shape = (3, 227, 227) if paper else (3, 224, 224)
    input_shape = check_args("alexnet", num_classes, input_shape)

    x = inp = Input(shape=input_shape, name="input")
    for i, (filters, k, s, p, g, lrn, pool) in enumerate(
        _PAPER_CONVS if paper else _TORCHVISION_CONVS, start=1
    ):
        with tc.block(f"conv{i}"):
            x = L.Conv2D(
                filters, k, strides=s, padding=p, groups=g, activation="relu", name="conv"
            )(x)
            if lrn:
                x = L.LocalResponseNormalization(**_LRN, name="lrn")(x)
            if pool:
                x = L.MaxPool2D(3, strides=2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    for i in (6, 7):
        with tc.block(f"fc{i}"):
            if not paper:
                x = L.Dropout(dropout, name="dropout")(x)
            x = L.Dense(4096, activation="relu", name="dense")(x)
            if paper:
                x = L.Dropout(dropout, name="dropout")(x)
    out = classifier(x, num_classes, classifier_activation, name="fc8")
    return Model(inp, out, name="alexnet" if paper else "alexnet_torchvision")
