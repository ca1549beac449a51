"""``tinycnn.functional``: differentiable ops with PyTorch's semantics and argument names.

Every function here is checked one to one against ``torch.nn.functional`` in ``tests/``.
Tensors are NCHW; conv weights are ``(C_out, C_in/groups, kH, kW)``, linear weights
``(out_features, in_features)``.
"""

from __future__ import annotations

from .ops.activation import hardtanh, leaky_relu, relu, relu6, sigmoid, tanh
from .ops.arith import linear, matmul
from .ops.conv import conv2d
from .ops.dropout import dropout
from .ops.loss import binary_cross_entropy, cross_entropy, mse_loss, nll_loss
from .ops.norm import batch_norm, local_response_norm
from .ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .ops.shape import cat, flatten, pad
from .ops.softmax import log_softmax, softmax

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "cat",
    "conv2d",
    "cross_entropy",
    "dropout",
    "flatten",
    "hardtanh",
    "leaky_relu",
    "linear",
    "local_response_norm",
    "log_softmax",
    "matmul",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "pad",
    "relu",
    "relu6",
    "sigmoid",
    "softmax",
    "tanh",
]
