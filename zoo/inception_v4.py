"""Inception-v4, as the widely used PyTorch port (Cadene's ``pretrainedmodels``, ``timm``)."""

from __future__ import annotations

from collections.abc import Sequence

import tinycnn as tc
from tinycnn import Input, Model
from tinycnn import layers as L

from ._common import TORCH_MOMENTUM, Paper, check_args, classifier, conv_bn

PAPER = Paper(
    title="Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    authors="C. Szegedy, S. Ioffe, V. Vanhoucke, A. A. Alemi",
    venue="AAAI",
    year=2017,
)


def _cbn(x, filters, kernel_size, name, strides=1, padding="same"):
    # The port's BasicConv2d: conv without bias, BatchNorm2d(eps=1e-3, momentum=0.1), ReLU.
    return conv_bn(
        x, filters, kernel_size, name=name, strides=strides, padding=padding,
        momentum=TORCH_MOMENTUM, epsilon=1e-3,
    )  # fmt: skip


def _avg_branch(x, filters):
    # The port pools with count_include_pad=False, i.e. Keras-style "same" average pooling.
    b = L.AveragePooling2D(3, strides=1, padding="same", name="branch_pool")(x)
    return _cbn(b, filters, 1, "branch_pool_conv")


def _stem(x):
    """Figure 3 of the paper: 299x299x3 -> 35x35x384."""
    x = _cbn(x, 32, 3, "conv1", strides=2, padding="valid")
    x = _cbn(x, 32, 3, "conv2", padding="valid")
    x = _cbn(x, 64, 3, "conv3")
    with tc.block("mixed_3a"):
        x = L.Concatenate(name="concat")(
            [
                L.MaxPool2D(3, strides=2, name="branch_pool")(x),
                _cbn(x, 96, 3, "branch3x3", strides=2, padding="valid"),
            ]
        )
    with tc.block("mixed_4a"):
        b0 = _cbn(x, 64, 1, "branch0_1x1")
        b0 = _cbn(b0, 96, 3, "branch0_3x3", padding="valid")
        b1 = _cbn(x, 64, 1, "branch1_1x1")
        b1 = _cbn(b1, 64, (1, 7), "branch1_1x7")
        b1 = _cbn(b1, 64, (7, 1), "branch1_7x1")
        b1 = _cbn(b1, 96, 3, "branch1_3x3", padding="valid")
        x = L.Concatenate(name="concat")([b0, b1])
    with tc.block("mixed_5a"):
        x = L.Concatenate(name="concat")(
            [
                _cbn(x, 192, 3, "branch3x3", strides=2, padding="valid"),
                L.MaxPool2D(3, strides=2, name="branch_pool")(x),
            ]
        )
    return x


def _inception_a(x, name):
    """Figure 4: 35x35x384."""
    with tc.block(name):
        b0 = _cbn(x, 96, 1, "branch0_1x1")
        b1 = _cbn(x, 64, 1, "branch1_1x1")
        b1 = _cbn(b1, 96, 3, "branch1_3x3")
        b2 = _cbn(x, 64, 1, "branch2_1x1")
        b2 = _cbn(b2, 96, 3, "branch2_3x3a")
        b2 = _cbn(b2, 96, 3, "branch2_3x3b")
        return L.Concatenate(name="concat")([b0, b1, b2, _avg_branch(x, 96)])


def _reduction_a(x, name):
    """Figure 7 with k, l, m, n = 192, 224, 256, 384: 35 -> 17, 1024 maps."""
    with tc.block(name):
        b0 = _cbn(x, 384, 3, "branch0_3x3", strides=2, padding="valid")
        b1 = _cbn(x, 192, 1, "branch1_1x1")
        b1 = _cbn(b1, 224, 3, "branch1_3x3a")
        b1 = _cbn(b1, 256, 3, "branch1_3x3b", strides=2, padding="valid")
        b2 = L.MaxPool2D(3, strides=2, name="branch_pool")(x)
        return L.Concatenate(name="concat")([b0, b1, b2])


def _inception_b(x, name):
    """Figure 5: 17x17x1024."""
    with tc.block(name):
        b0 = _cbn(x, 384, 1, "branch0_1x1")
        b1 = _cbn(x, 192, 1, "branch1_1x1")
        b1 = _cbn(b1, 224, (1, 7), "branch1_1x7")
        b1 = _cbn(b1, 256, (7, 1), "branch1_7x1")
        b2 = _cbn(x, 192, 1, "branch2_1x1")
        b2 = _cbn(b2, 192, (7, 1), "branch2_7x1a")
        b2 = _cbn(b2, 224, (1, 7), "branch2_1x7a")
        b2 = _cbn(b2, 224, (7, 1), "branch2_7x1b")
        b2 = _cbn(b2, 256, (1, 7), "branch2_1x7b")
        return L.Concatenate(name="concat")([b0, b1, b2, _avg_branch(x, 128)])


def _reduction_b(x, name):
    """Figure 8: 17 -> 8, 1536 maps."""
    with tc.block(name):
        b0 = _cbn(x, 192, 1, "branch0_1x1")
        b0 = _cbn(b0, 192, 3, "branch0_3x3", strides=2, padding="valid")
        b1 = _cbn(x, 256, 1, "branch1_1x1")
        b1 = _cbn(b1, 256, (1, 7), "branch1_1x7")
        b1 = _cbn(b1, 320, (7, 1), "branch1_7x1")
        b1 = _cbn(b1, 320, 3, "branch1_3x3", strides=2, padding="valid")
        b2 = L.MaxPool2D(3, strides=2, name="branch_pool")(x)
        return L.Concatenate(name="concat")([b0, b1, b2])


def _inception_c(x, name):
    """Figure 6: 8x8x1536."""
    with tc.block(name):
        b0 = _cbn(x, 256, 1, "branch0_1x1")
        b1 = _cbn(x, 384, 1, "branch1_1x1")
        b1 = L.Concatenate(name="branch1")(
            [_cbn(b1, 256, (1, 3), "branch1_1x3"), _cbn(b1, 256, (3, 1), "branch1_3x1")]
        )
        b2 = _cbn(x, 384, 1, "branch2_1x1")
        b2 = _cbn(b2, 448, (3, 1), "branch2_3x1")
        b2 = _cbn(b2, 512, (1, 3), "branch2_1x3")
        b2 = L.Concatenate(name="branch2")(
            [_cbn(b2, 256, (1, 3), "branch2_1x3b"), _cbn(b2, 256, (3, 1), "branch2_3x1b")]
        )
        return L.Concatenate(name="concat")([b0, b1, b2, _avg_branch(x, 256)])


def inception_v4(
    num_classes: int = 1000,
    input_shape: Sequence[int] = (3, 299, 299),
    classifier_activation: str | None = "softmax",
) -> Model:
    """Inception-v4 (42,742,984 parameters, 42,679,816 trainable, at the defaults).

    Paper: C. Szegedy, S. Ioffe, V. Vanhoucke, A. A. Alemi, "Inception-v4, Inception-ResNet and
    the Impact of Residual Connections on Learning", AAAI, 2017.

    Reproduces the widely used PyTorch port (``pretrainedmodels.inceptionv4`` by R. Cadene, also
    ``timm``'s ``inception_v4``), itself a port of the TF-slim checkpoint: conv without bias +
    BatchNorm (eps 1e-3, affine) + ReLU everywhere; the stem of Figure 3 (``mixed_3a``,
    ``mixed_4a``, ``mixed_5a``), 4 x ``inception_a``, ``reduction_a``, 7 x ``inception_b``,
    ``reduction_b``, 3 x ``inception_c``, global average pool, dense. Like the port, no dropout.

    Parameters
    ----------
    num_classes : int
        Width of the output layer.
    input_shape : (C, H, W)
        Without the batch dimension; at least 75x75.
    classifier_activation : str or None
        ``"softmax"`` or ``None`` for logits (the port).
    """
    input_shape = check_args("inception_v4", num_classes, input_shape)
    x = inp = Input(shape=input_shape, name="input")
    x = _stem(x)
    for i in range(1, 5):
        x = _inception_a(x, f"inception_a{i}")
    x = _reduction_a(x, "reduction_a")
    for i in range(1, 8):
        x = _inception_b(x, f"inception_b{i}")
    x = _reduction_b(x, "reduction_b")
    for i in range(1, 4):
        x = _inception_c(x, f"inception_c{i}")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    out = classifier(x, num_classes, classifier_activation)
    return Model(inp, out, name="inception_v4")
