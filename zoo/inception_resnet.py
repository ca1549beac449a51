"""Inception-ResNet-v2, as ``keras.applications.InceptionResNetV2``."""

from __future__ import annotations

from collections.abc import Sequence

import tinycnn as tc
from tinycnn import Input, Model
from tinycnn import layers as L

from ._common import Paper, check_args, classifier, conv_bn
from .inception_v4 import PAPER as _V4_PAPER

PAPER: Paper = _V4_PAPER


def _cbn(x, filters, kernel_size, name, strides=1, padding="same", activation="relu"):
    # Keras' conv2d_bn here: conv without bias, BatchNormalization(scale=False), activation.
    return conv_bn(
        x, filters, kernel_size, name=name, strides=strides, padding=padding, scale=False,
        activation=activation,
    )  # fmt: skip


def _residual_block(x, name, kind, scale, activation="relu"):
    """``inception_resnet_block``: branches -> concat -> 1x1 conv (bias, no BN) -> x + scale*up.

    The paper (section 3.3) scales the residual by 0.1-0.3 before the addition because wide
    residual Inception networks otherwise "died" early in training.
    """
    channels = x.shape[-3]  # (C, H, W), with or without a leading batch entry
    with tc.block(name):
        if kind == "block35":
            branches = [
                _cbn(x, 32, 1, "branch_0"),
                _cbn(_cbn(x, 32, 1, "branch_1a"), 32, 3, "branch_1b"),
                _cbn(_cbn(_cbn(x, 32, 1, "branch_2a"), 48, 3, "branch_2b"), 64, 3, "branch_2c"),
            ]
        elif kind == "block17":
            b1 = _cbn(x, 128, 1, "branch_1a")
            b1 = _cbn(b1, 160, (1, 7), "branch_1b")
            branches = [_cbn(x, 192, 1, "branch_0"), _cbn(b1, 192, (7, 1), "branch_1c")]
        else:  # block8
            b1 = _cbn(x, 192, 1, "branch_1a")
            b1 = _cbn(b1, 224, (1, 3), "branch_1b")
            branches = [_cbn(x, 192, 1, "branch_0"), _cbn(b1, 256, (3, 1), "branch_1c")]
        mixed = L.Concatenate(name="mixed")(branches)
        up = L.Conv2D(channels, 1, use_bias=True, name="conv")(mixed)
        up = L.Rescale(scale, name="scale")(up)
        x = L.Add(name="add")([x, up])
        if activation is not None:
            x = L.Activation(activation, name=activation)(x)
    return x


def inception_resnet_v2(
    num_classes: int = 1000,
    input_shape: Sequence[int] = (3, 299, 299),
    scales: tuple[float, float, float] = (0.17, 0.1, 0.2),
    classifier_activation: str | None = "softmax",
) -> Model:
    """Inception-ResNet-v2 (55,873,736 parameters, 55,813,192 trainable, at the defaults).

    Paper: C. Szegedy, S. Ioffe, V. Vanhoucke, A. A. Alemi, "Inception-v4, Inception-ResNet and
    the Impact of Residual Connections on Learning", AAAI, 2017.

    Reproduces ``keras.applications.InceptionResNetV2`` (the TF-slim network): the Inception-v3
    style stem (conv1-conv5) and ``mixed_5b``; 10 x ``block35`` (residual scale 0.17),
    ``mixed_6a``; 20 x ``block17`` (0.1), ``mixed_7a``; 9 x ``block8`` (0.2) and a last
    ``block8_10`` with scale 1 and no ReLU; ``conv_7b`` (1x1, 1536); global average pool; dense.
    Convs are conv without bias + ``BatchNormalization(scale=False)`` + ReLU, except the 1x1
    up-projection of each residual block, which has a bias and no BN.

    Parameters
    ----------
    num_classes : int
        Width of the output layer.
    input_shape : (C, H, W)
        Without the batch dimension; at least 75x75.
    scales : (float, float, float)
        Residual scaling of the block35, block17 and block8 stages.
    classifier_activation : str or None
        ``"softmax"`` (Keras) or ``None`` for logits.
    """
    input_shape = check_args("inception_resnet_v2", num_classes, input_shape)
    x = inp = Input(shape=input_shape, name="input")
    x = _cbn(x, 32, 3, "conv1", strides=2, padding="valid")
    x = _cbn(x, 32, 3, "conv2", padding="valid")
    x = _cbn(x, 64, 3, "conv3")
    x = L.MaxPool2D(3, strides=2, name="pool1")(x)
    x = _cbn(x, 80, 1, "conv4", padding="valid")
    x = _cbn(x, 192, 3, "conv5", padding="valid")
    x = L.MaxPool2D(3, strides=2, name="pool2")(x)

    with tc.block("mixed_5b"):
        b0 = _cbn(x, 96, 1, "branch_0")
        b1 = _cbn(_cbn(x, 48, 1, "branch_1a"), 64, 5, "branch_1b")
        b2 = _cbn(_cbn(_cbn(x, 64, 1, "branch_2a"), 96, 3, "branch_2b"), 96, 3, "branch_2c")
        bp = L.AveragePooling2D(3, strides=1, padding="same", name="branch_pool")(x)
        bp = _cbn(bp, 64, 1, "branch_pool_conv")
        x = L.Concatenate(name="concat")([b0, b1, b2, bp])
    for i in range(1, 11):
        x = _residual_block(x, f"block35_{i}", "block35", scales[0])

    with tc.block("mixed_6a"):
        b0 = _cbn(x, 384, 3, "branch_0", strides=2, padding="valid")
        b1 = _cbn(_cbn(x, 256, 1, "branch_1a"), 256, 3, "branch_1b")
        b1 = _cbn(b1, 384, 3, "branch_1c", strides=2, padding="valid")
        bp = L.MaxPool2D(3, strides=2, name="branch_pool")(x)
        x = L.Concatenate(name="concat")([b0, b1, bp])
    for i in range(1, 21):
        x = _residual_block(x, f"block17_{i}", "block17", scales[1])

    with tc.block("mixed_7a"):
        b0 = _cbn(_cbn(x, 256, 1, "branch_0a"), 384, 3, "branch_0b", strides=2, padding="valid")
        b1 = _cbn(_cbn(x, 256, 1, "branch_1a"), 288, 3, "branch_1b", strides=2, padding="valid")
        b2 = _cbn(_cbn(x, 256, 1, "branch_2a"), 288, 3, "branch_2b")
        b2 = _cbn(b2, 320, 3, "branch_2c", strides=2, padding="valid")
        bp = L.MaxPool2D(3, strides=2, name="branch_pool")(x)
        x = L.Concatenate(name="concat")([b0, b1, b2, bp])
    for i in range(1, 10):
        x = _residual_block(x, f"block8_{i}", "block8", scales[2])
    x = _residual_block(x, "block8_10", "block8", 1.0, activation=None)

    x = _cbn(x, 1536, 1, "conv_7b")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    out = classifier(x, num_classes, classifier_activation)
    return Model(inp, out, name="inception_resnet_v2")
