"""Inception-v1 (GoogLeNet): torchvision's batch-normalized form and the paper's."""

from __future__ import annotations

from collections.abc import Sequence

import tinycnn as tc
from tinycnn import Input, Model
from tinycnn import layers as L

from ._common import TORCH_MOMENTUM, Paper, check_args, classifier, conv_bn

PAPER = Paper(
    title="Going Deeper with Convolutions",
    authors=(
        "C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, "
        "V. Vanhoucke, A. Rabinovich"
    ),
    venue="CVPR",
    year=2015,
)

# Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# GoogLeNet's LRN is Caffe's (alpha divided by the window size), which is also the DSL's.
_LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}


def _conv(x, filters, kernel_size, *, name, bn, strides=1, padding="same"):
    """torchvision's BasicConv2d (conv without bias, BN eps 1e-3, ReLU) or the paper's conv+ReLU."""
    if bn:
        return conv_bn(
            x, filters, kernel_size, name=name, strides=strides, padding=padding,
            momentum=TORCH_MOMENTUM, epsilon=1e-3,
        )  # fmt: skip
    return L.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, activation="relu", name=name
    )(x)


def _inception(x, name, widths, bn):
    c1, c3r, c3, c5r, c5, cp = widths
    # torchvision's branch3 uses a 3x3 kernel where the paper has 5x5 (a bug it keeps for its
    # pretrained weights); its parameter count, the reference, depends on it.
    k5 = 3 if bn else 5
    with tc.block(name):
        b1 = _conv(x, c1, 1, name="branch1x1", bn=bn)
        b2 = _conv(x, c3r, 1, name="branch3x3_reduce", bn=bn)
        b2 = _conv(b2, c3, 3, name="branch3x3", bn=bn)
        b3 = _conv(x, c5r, 1, name="branch5x5_reduce", bn=bn)
        b3 = _conv(b3, c5, k5, name="branch5x5", bn=bn)
        b4 = L.MaxPool2D(3, strides=1, padding=1, name="branch_pool")(x)
        b4 = _conv(b4, cp, 1, name="branch_pool_proj", bn=bn)
        return L.Concatenate(name="concat")([b1, b2, b3, b4])


def _aux(x, name, num_classes, bn, activation):
    # Paper, section 5: 5x5/3 average pool (4x4 at 224), 1x1 conv 128, fc 1024, dropout 0.7.
    # torchvision pools adaptively to 4x4 instead: same shapes at 224.
    with tc.block(name):
        x = L.AveragePooling2D(5, strides=3, name="pool")(x)
        x = _conv(x, 128, 1, name="conv", bn=bn)
        x = L.Flatten(name="flatten")(x)
        x = L.Dense(1024, activation="relu", name="fc1")(x)
        x = L.Dropout(0.7, name="dropout")(x)
        return classifier(x, num_classes, activation, name="fc2")


def inception_v1(
    num_classes: int = 1000,
    input_shape: Sequence[int] = (3, 224, 224),
    aux_logits: bool = False,
    variant: str = "torchvision",
    classifier_activation: str | None = "softmax",
) -> Model:
    """Inception-v1 / GoogLeNet (6,639,464 parameters, 6,624,904 trainable, at the defaults).

    Paper: C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan,
    V. Vanhoucke, A. Rabinovich, "Going Deeper with Convolutions", CVPR, 2015.

    ``variant="torchvision"`` (default) reproduces ``torchvision.models.googlenet``: every conv is
    conv (no bias) + BatchNorm (eps 1e-3) + ReLU, no LRN, 3x3 kernels in the "5x5" branch (as
    torchvision has them), max-pools with ceil rounding, global average pool
    (torchvision's adaptive 1x1 pool), dropout 0.2, fc.

    ``variant="paper"`` is Table 1 of the paper (as the BVLC Caffe model): convs with bias and
    ReLU, no BN, real 5x5 kernels, LRN after the first pool and after conv2, dropout 0.4
    (6,998,552 parameters).

    ``aux_logits=True`` adds the two auxiliary classifiers (on 4a and 4d); the model then has
    three outputs, ``[main, aux1, aux2]``.

    Parameters
    ----------
    num_classes : int
        Width of the output layer(s).
    input_shape : (C, H, W)
        Without the batch dimension; at least 31x31 (47x47 for the paper's 3x3 pool4), and
        79x79 with the aux heads, whose 5x5 pool must fit in 4a's map.
    aux_logits : bool
        Add the auxiliary heads (training only, in the paper).
    variant : {"torchvision", "paper"}
    classifier_activation : str or None
        ``"softmax"`` or ``None`` for logits.
    """
    if variant not in ("torchvision", "paper"):
        raise ValueError(f"inception_v1: variant must be 'torchvision' or 'paper', got {variant!r}")
    bn = variant == "torchvision"
    input_shape = check_args("inception_v1", num_classes, input_shape)

    x = inp = Input(shape=input_shape, name="input")
    x = _conv(x, 64, 7, strides=2, padding=3, name="conv1", bn=bn)
    # Caffe and torchvision round pooled sizes up (ceil_mode), 112 -> 56, 56 -> 28, 28 -> 14.
    x = L.MaxPool2D(3, strides=2, ceil_mode=True, name="pool1")(x)
    if not bn:
        x = L.LocalResponseNormalization(**_LRN, name="lrn1")(x)
    x = _conv(x, 64, 1, name="conv2", bn=bn)
    x = _conv(x, 192, 3, name="conv3", bn=bn)
    if not bn:
        x = L.LocalResponseNormalization(**_LRN, name="lrn2")(x)
    x = L.MaxPool2D(3, strides=2, ceil_mode=True, name="pool2")(x)
    aux = []
    for key, widths in _MODULES.items():
        if key == "4a":
            x = L.MaxPool2D(3, strides=2, ceil_mode=True, name="pool3")(x)
        if key == "5a":
            # torchvision: 2x2/2 ceil; the paper: 3x3/2. Both give 7x7 at 224.
            x = L.MaxPool2D(2 if bn else 3, strides=2, ceil_mode=True, name="pool4")(x)
        x = _inception(x, f"inception_{key}", widths, bn)
        if aux_logits and key in ("4a", "4d"):
            name = "aux1" if key == "4a" else "aux2"
            aux.append(_aux(x, name, num_classes, bn, classifier_activation))
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    x = L.Dropout(0.2 if bn else 0.4, name="dropout")(x)
    out = classifier(x, num_classes, classifier_activation)
    name = "inception_v1" if bn else "inception_v1_paper"
    return Model(inp, [out, *aux] if aux_logits else out, name=name)
