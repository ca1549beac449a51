"""Inception-v3, as ``keras.applications.InceptionV3``."""

from __future__ import annotations

from collections.abc import Sequence

import tinycnn as tc
from tinycnn import Input, Model
from tinycnn import layers as L

from ._common import Paper, check_args, classifier, conv_bn

PAPER = Paper(
    title="Rethinking the Inception Architecture for Computer Vision",
    authors="C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna",
    venue="CVPR",
    year=2016,
)


def _cbn(x, filters, kernel_size, name, strides=1, padding="same"):
    # Keras' conv2d_bn: conv without bias, BatchNormalization(scale=False), ReLU.
    return conv_bn(
        x, filters, kernel_size, name=name, strides=strides, padding=padding, scale=False
    )


def _avg_branch(x, filters):
    b = L.AveragePooling2D(3, strides=1, padding="same", name="branch_pool")(x)
    return _cbn(b, filters, 1, "branch_pool_conv")


def _block_35(x, name, pool_filters):
    """mixed0-2: 35x35 module with the 5x5 factorized into 3x3 in one branch (Figure 5)."""
    with tc.block(name):
        b1 = _cbn(x, 64, 1, "branch1x1")
        b5 = _cbn(x, 48, 1, "branch5x5_1")
        b5 = _cbn(b5, 64, 5, "branch5x5_2")
        b3 = _cbn(x, 64, 1, "branch3x3dbl_1")
        b3 = _cbn(b3, 96, 3, "branch3x3dbl_2")
        b3 = _cbn(b3, 96, 3, "branch3x3dbl_3")
        return L.Concatenate(name="concat")([b1, b5, b3, _avg_branch(x, pool_filters)])


def _reduction_a(x, name):
    """mixed3: 35 -> 17 grid reduction (Figure 10)."""
    with tc.block(name):
        b3 = _cbn(x, 384, 3, "branch3x3", strides=2, padding="valid")
        bd = _cbn(x, 64, 1, "branch3x3dbl_1")
        bd = _cbn(bd, 96, 3, "branch3x3dbl_2")
        bd = _cbn(bd, 96, 3, "branch3x3dbl_3", strides=2, padding="valid")
        bp = L.MaxPool2D(3, strides=2, name="branch_pool")(x)
        return L.Concatenate(name="concat")([b3, bd, bp])


def _block_17(x, name, c7):
    """mixed4-7: 17x17 module with n x n factorized into 1x7 and 7x1 (Figure 6)."""
    with tc.block(name):
        b1 = _cbn(x, 192, 1, "branch1x1")
        b7 = _cbn(x, c7, 1, "branch7x7_1")
        b7 = _cbn(b7, c7, (1, 7), "branch7x7_2")
        b7 = _cbn(b7, 192, (7, 1), "branch7x7_3")
        bd = _cbn(x, c7, 1, "branch7x7dbl_1")
        bd = _cbn(bd, c7, (7, 1), "branch7x7dbl_2")
        bd = _cbn(bd, c7, (1, 7), "branch7x7dbl_3")
        bd = _cbn(bd, c7, (7, 1), "branch7x7dbl_4")
        bd = _cbn(bd, 192, (1, 7), "branch7x7dbl_5")
        return L.Concatenate(name="concat")([b1, b7, bd, _avg_branch(x, 192)])


def _reduction_b(x, name):
    """mixed8: 17 -> 8 grid reduction."""
    with tc.block(name):
        b3 = _cbn(x, 192, 1, "branch3x3_1")
        b3 = _cbn(b3, 320, 3, "branch3x3_2", strides=2, padding="valid")
        b7 = _cbn(x, 192, 1, "branch7x7x3_1")
        b7 = _cbn(b7, 192, (1, 7), "branch7x7x3_2")
        b7 = _cbn(b7, 192, (7, 1), "branch7x7x3_3")
        b7 = _cbn(b7, 192, 3, "branch7x7x3_4", strides=2, padding="valid")
        bp = L.MaxPool2D(3, strides=2, name="branch_pool")(x)
        return L.Concatenate(name="concat")([b3, b7, bp])


def _block_8(x, name):
    """mixed9-10: 8x8 module with expanded filter bank outputs (Figure 7)."""
    with tc.block(name):
        b1 = _cbn(x, 320, 1, "branch1x1")
        b3 = _cbn(x, 384, 1, "branch3x3_1")
        b3 = L.Concatenate(name="branch3x3")(
            [_cbn(b3, 384, (1, 3), "branch3x3_2a"), _cbn(b3, 384, (3, 1), "branch3x3_2b")]
        )
        bd = _cbn(x, 448, 1, "branch3x3dbl_1")
        bd = _cbn(bd, 384, 3, "branch3x3dbl_2")
        bd = L.Concatenate(name="branch3x3dbl")(
            [_cbn(bd, 384, (1, 3), "branch3x3dbl_3a"), _cbn(bd, 384, (3, 1), "branch3x3dbl_3b")]
        )
        return L.Concatenate(name="concat")([b1, b3, bd, _avg_branch(x, 192)])


def inception_v3(
    num_classes: int = 1000,
    input_shape: Sequence[int] = (3, 299, 299),
    classifier_activation: str | None = "softmax",
) -> Model:
    """Inception-v3 (23,851,784 parameters, 23,817,352 trainable, at the defaults).

    Paper: C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna, "Rethinking the Inception
    Architecture for Computer Vision", CVPR, 2016.

    Reproduces ``keras.applications.InceptionV3`` (``include_top=True``): every conv is conv
    without bias + ``BatchNormalization(scale=False)`` + ReLU; blocks ``mixed0`` ... ``mixed10``
    with Keras' branch names; global average pool; dense softmax. No auxiliary head and no dropout,
    as in Keras (torchvision adds both and has the same convolutional trunk).

    Parameters
    ----------
    num_classes : int
        Width of the output layer.
    input_shape : (C, H, W)
        Without the batch dimension; at least 75x75 (smaller inputs shrink a feature map below a
        3x3 kernel and the DSL's shape inference names the layer).
    classifier_activation : str or None
        ``"softmax"`` (Keras) or ``None`` for logits.
    """
    input_shape = check_args("inception_v3", num_classes, input_shape)
    x = inp = Input(shape=input_shape, name="input")
    x = _cbn(x, 32, 3, "conv1", strides=2, padding="valid")
    x = _cbn(x, 32, 3, "conv2", padding="valid")
    x = _cbn(x, 64, 3, "conv3")
    x = L.MaxPool2D(3, strides=2, name="pool1")(x)
    x = _cbn(x, 80, 1, "conv4", padding="valid")
    x = _cbn(x, 192, 3, "conv5", padding="valid")
    x = L.MaxPool2D(3, strides=2, name="pool2")(x)
    for i, pool_filters in enumerate((32, 64, 64)):
        x = _block_35(x, f"mixed{i}", pool_filters)
    x = _reduction_a(x, "mixed3")
    for i, c7 in enumerate((128, 160, 160, 192), start=4):
        x = _block_17(x, f"mixed{i}", c7)
    x = _reduction_b(x, "mixed8")
    x = _block_8(x, "mixed9")
    x = _block_8(x, "mixed10")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    out = classifier(x, num_classes, classifier_activation)
    return Model(inp, out, name="inception_v3")
