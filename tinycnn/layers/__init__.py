"""``tinycnn.layers`` (``from tinycnn import layers as L``): Keras' layer names and defaults on
NCHW tensors.  Each layer validates its arguments when constructed and its input shape when
called, naming itself in every error."""

from ..graph.layer import Layer
from ..graph.symbolic import Input, InputLayer
from .conv import Conv2D
from .core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    ReLU,
    Rescale,
    Rescaling,
    Reshape,
    Softmax,
    ZeroPadding2D,
)
from .merge import Add, Concatenate, Multiply
from .normalization import BatchNormalization, LocalResponseNormalization
from .pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    MaxPool2D,
    MaxPooling2D,
)
from .separable import DepthwiseConv2D, SeparableConv2D

__all__ = [
    "Activation",
    "Add",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "Input",
    "InputLayer",
    "Layer",
    "LeakyReLU",
    "LocalResponseNormalization",
    "MaxPool2D",
    "MaxPooling2D",
    "Multiply",
    "ReLU",
    "Rescale",
    "Rescaling",
    "Reshape",
    "SeparableConv2D",
    "Softmax",
    "ZeroPadding2D",
]
