"""Xception, as ``keras.applications.Xception``."""

from __future__ import annotations

from collections.abc import Sequence

import tinycnn as tc
from tinycnn import Input, Model
from tinycnn import layers as L

from ._common import Paper, check_args, classifier

PAPER = Paper(
    title="Xception: Deep Learning with Depthwise Separable Convolutions",
    authors="F. Chollet",
    venue="CVPR",
    year=2017,
)


def _sep_bn(x, filters, name, relu_first):
    """(ReLU ->) SeparableConv2D 3x3 without bias -> BN, as Keras orders them in Xception."""
    if relu_first:
        x = L.Activation("relu", name=f"{name}_act")(x)
    x = L.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return L.BatchNormalization(name=f"{name}_bn")(x)


def _downsampling_block(x, name, filters, relu_first=True):
    """Two separable convs + 3x3/2 max-pool, added to a strided 1x1 conv shortcut."""
    f1, f2 = filters
    with tc.block(name):
        residual = L.Conv2D(f2, 1, strides=2, padding="same", use_bias=False, name="shortcut")(x)
        residual = L.BatchNormalization(name="shortcut_bn")(residual)
        x = _sep_bn(x, f1, "sepconv1", relu_first)
        x = _sep_bn(x, f2, "sepconv2", True)
        x = L.MaxPool2D(3, strides=2, padding="same", name="pool")(x)
        return L.Add(name="add")([x, residual])


def xception(
    num_classes: int = 1000,
    input_shape: Sequence[int] = (3, 299, 299),
    classifier_activation: str | None = "softmax",
) -> Model:
    """Xception (22,910,480 parameters, 22,855,952 trainable, at the defaults).

    Paper: F. Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR,
    2017.

    Reproduces ``keras.applications.Xception`` (Figure 5 of the paper): the entry flow
    (``entry_flow_block1`` = two 3x3 convs, ``entry_flow_block2``-``4`` = residual downsampling
    blocks of 128, 256, 728 maps), the middle flow (``middle_flow_block5``-``12``, eight residual
    blocks of three ReLU-SeparableConv-BN), the exit flow (``exit_flow_block13``: 728 -> 1024
    downsampling; ``exit_flow_block14``: separable 1536 and 2048 with ReLU), global average pool,
    dense. Keras' block numbers are kept. Separable convs have no bias and BN follows each (Keras
    BN defaults, momentum 0.99, eps 1e-3). No dropout, as in Keras (the paper's optional
    fully-connected layers are not included).

    Parameters
    ----------
    num_classes : int
        Width of the output layer.
    input_shape : (C, H, W)
        Without the batch dimension. Keras insists on at least 71x71; the network itself needs
        only 7x7 (two valid 3x3 convs; every later pool is "same").
    classifier_activation : str or None
        ``"softmax"`` (Keras) or ``None`` for logits.
    """
    input_shape = check_args("xception", num_classes, input_shape)
    x = inp = Input(shape=input_shape, name="input")
    with tc.block("entry_flow_block1"):
        x = L.Conv2D(32, 3, strides=2, use_bias=False, name="conv1")(x)
        x = L.BatchNormalization(name="conv1_bn")(x)
        x = L.Activation("relu", name="conv1_act")(x)
        x = L.Conv2D(64, 3, use_bias=False, name="conv2")(x)
        x = L.BatchNormalization(name="conv2_bn")(x)
        x = L.Activation("relu", name="conv2_act")(x)
    # Block 2 starts straight from conv2's ReLU, so its first separable conv has no ReLU of its own.
    x = _downsampling_block(x, "entry_flow_block2", (128, 128), relu_first=False)
    x = _downsampling_block(x, "entry_flow_block3", (256, 256))
    x = _downsampling_block(x, "entry_flow_block4", (728, 728))
    for b in range(5, 13):
        with tc.block(f"middle_flow_block{b}"):
            residual = x
            for i in (1, 2, 3):
                x = _sep_bn(x, 728, f"sepconv{i}", True)
            x = L.Add(name="add")([x, residual])
    x = _downsampling_block(x, "exit_flow_block13", (728, 1024))
    with tc.block("exit_flow_block14"):
        x = _sep_bn(x, 1536, "sepconv1", False)
        x = L.Activation("relu", name="sepconv1_act")(x)
        x = _sep_bn(x, 2048, "sepconv2", False)
        x = L.Activation("relu", name="sepconv2_act")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    out = classifier(x, num_classes, classifier_activation)
    return Model(inp, out, name="xception")
