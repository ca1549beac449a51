"""The zoo: ten classic CNNs, each written only with tinycnn's public DSL.

Every builder takes ``num_classes`` and ``input_shape`` (C, H, W, without the batch dimension)
plus its variant options, and returns a ``tinycnn.Model``. ``MODELS`` maps the names to the
builders (the ``tinycnn`` CLI uses it); ``PAPERS`` maps them to where each was published.
"""

from __future__ import annotations

from collections.abc import Callable

from tinycnn import Model

from . import alexnet as _alexnet
from . import inception as _inception
from . import inception_resnet as _inception_resnet
from . import inception_v3 as _inception_v3
from . import inception_v4 as _inception_v4
from . import lenet as _lenet
from . import resnet as _resnet
from . import vgg as _vgg
from . import xception as _xception
from ._common import Paper
from .alexnet import alexnet
from .inception import inception_v1
from .inception_resnet import inception_resnet_v2
from .inception_v3 import inception_v3
from .inception_v4 import inception_v4
from .lenet import lenet5
from .resnet import resnet50, resnext50
from .vgg import vgg16
from .xception import xception

MODELS: dict[str, Callable[..., Model]] = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "inception_v1": inception_v1,
    "inception_v3": inception_v3,
    "inception_v4": inception_v4,
    "inception_resnet_v2": inception_resnet_v2,
    "xception": xception,
    "resnet50": resnet50,
    "resnext50": resnext50,
}

PAPERS: dict[str, Paper] = {
    "lenet5": _lenet.PAPER,
    "alexnet": _alexnet.PAPER,
    "vgg16": _vgg.PAPER,
    "inception_v1": _inception.PAPER,
    "inception_v3": _inception_v3.PAPER,
    "inception_v4": _inception_v4.PAPER,
    "inception_resnet_v2": _inception_resnet.PAPER,
    "xception": _xception.PAPER,
    "resnet50": _resnet.PAPER,
    "resnext50": _resnet.RESNEXT_PAPER,
}

__all__ = [
    "MODELS",
    "PAPERS",
    "Paper",
    "alexnet",
    "inception_resnet_v2",
    "inception_v1",
    "inception_v3",
    "inception_v4",
    "lenet5",
    "resnet50",
    "resnext50",
    "vgg16",
    "xception",
]
