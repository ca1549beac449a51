"""The zoo: parameter counts, shapes and MACs from shape inference; one training step per model.

The parameter counts are those of the named reference implementations (total = Keras'
``count_params()``, BN moving statistics included; trainable = what an optimizer updates, which is
torchvision's ``sum(p.numel())`` for the PyTorch references). The MACs are exact sums over the
Conv/Dense layers, independently worked out for these architectures; the reference figures they are
compared with are torchvision's and the papers'.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import tinycnn as tc
import zoo
from benchmarks import torch_models
from tests.helpers import needs_torch, torch

# builder, options, input shape, output shape (no batch), total params, trainable params, MACs
TABLE = [
    ("lenet5", {}, (1, 32, 32), (10,), 61_706, 61_706, 416_520),
    ("alexnet", {}, (3, 227, 227), (1000,), 60_965_224, 60_965_224, 724_406_816),
    ("alexnet", {"variant": "torchvision"}, (3, 224, 224), (1000,),
     61_100_840, 61_100_840, 714_188_480),
    ("vgg16", {}, (3, 224, 224), (1000,), 138_357_544, 138_357_544, 15_470_264_320),
    ("inception_v1", {}, (3, 224, 224), (1000,), 6_639_464, 6_624_904, 1_498_376_192),
    ("inception_v1", {"variant": "paper"}, (3, 224, 224), (1000,),
     6_998_552, 6_998_552, 1_582_671_872),
    ("inception_v1", {"aux_logits": True}, (3, 224, 224), [(1000,)] * 3,
     13_019_960, 13_004_888, 1_506_748_416),
    ("inception_v3", {}, (3, 299, 299), (1000,), 23_851_784, 23_817_352, 5_713_216_096),
    ("inception_v4", {}, (3, 299, 299), (1000,), 42_742_984, 42_679_816, 12_253_974_624),
    ("inception_resnet_v2", {}, (3, 299, 299), (1000,),
     55_873_736, 55_813_192, 13_155_794_016),
    ("xception", {}, (3, 299, 299), (1000,), 22_910_480, 22_855_952, 8_357_403_496),
    ("resnet50", {}, (3, 224, 224), (1000,), 25_610_152, 25_557_032, 4_089_184_256),
    ("resnext50", {}, (3, 224, 224), (1000,), 25_097_128, 25_028_904, 4_230_479_872),
]  # fmt: skip

# Published MAC figures (torchvision's model docs "GFLOPS", which count multiply-adds), given to
# two decimals; ours must round to them.
REFERENCE_GMACS = {
    "alexnet-variant=torchvision": 0.71,
    "vgg16": 15.47,
    "inception_v1": 1.50,
    "inception_v3": 5.71,
    "resnet50": 4.09,
    "resnext50": 4.23,
}

# The smallest-cost legal input of each model, used for the forward/backward pass.
SMALL = [
    ("lenet5", {}, (1, 32, 32), False),
    ("alexnet", {}, (3, 67, 67), False),
    ("alexnet", {"variant": "torchvision"}, (3, 63, 63), False),
    ("vgg16", {}, (3, 32, 32), True),
    ("inception_v1", {}, (3, 32, 32), False),
    ("inception_v1", {"variant": "paper", "aux_logits": True}, (3, 79, 79), True),
    ("inception_v3", {}, (3, 75, 75), True),
    ("inception_v4", {}, (3, 75, 75), True),
    ("inception_resnet_v2", {}, (3, 75, 75), True),
    ("xception", {}, (3, 71, 71), True),
    ("resnet50", {}, (3, 64, 64), True),
    ("resnext50", {}, (3, 64, 64), True),
]

# A block every model must name, as the issue spells them (summaries and diagrams collapse them).
BLOCKS = {
    "lenet5": set(),
    "alexnet": {f"conv{i}" for i in range(1, 6)} | {"fc6", "fc7"},
    "vgg16": {f"block{i}" for i in range(1, 6)},
    "inception_v1": {f"inception_{k}" for k in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a")},
    "inception_v3": {f"mixed{i}" for i in range(11)},
    "inception_v4": {"mixed_3a", "mixed_4a", "mixed_5a", "reduction_a", "reduction_b"}
    | {f"inception_a{i}" for i in range(1, 5)}
    | {f"inception_b{i}" for i in range(1, 8)}
    | {f"inception_c{i}" for i in range(1, 4)},
    "inception_resnet_v2": {"mixed_5b", "mixed_6a", "mixed_7a", "conv_7b"}
    | {f"block35_{i}" for i in range(1, 11)}
    | {f"block17_{i}" for i in range(1, 21)}
    | {f"block8_{i}" for i in range(1, 11)},
    "xception": {f"entry_flow_block{i}" for i in range(1, 5)}
    | {f"middle_flow_block{i}" for i in range(5, 13)}
    | {"exit_flow_block13", "exit_flow_block14"},
    "resnet50": {f"conv{s}_block{b}" for s, n in zip(range(2, 6), (3, 4, 6, 3))
                 for b in range(1, n + 1)},
}  # fmt: skip
BLOCKS["resnext50"] = BLOCKS["resnet50"]


def _id(row) -> str:
    name, options = row[0], row[1]
    return name + "".join(f"-{k}={v}" for k, v in options.items())


def _trainable(model) -> int:
    return sum(int(p.size) for p in model.parameters())


def _macs(model) -> int:
    return sum(data["macs"] for _, data in model.graph.nodes(data=True))


def _nodes(model) -> dict[str, tuple]:
    """Layer name -> (output shapes, params) for every node of the graph."""
    return {
        d["name"]: (tuple(map(tuple, d["output_shapes"])), d["params"])
        for _, d in model.graph.nodes(data=True)
    }


def test_registry_lists_the_ten_models():
    assert list(zoo.MODELS) == [
        "lenet5", "alexnet", "vgg16", "inception_v1", "inception_v3", "inception_v4",
        "inception_resnet_v2", "xception", "resnet50", "resnext50",
    ]  # fmt: skip
    assert set(zoo.PAPERS) == set(zoo.MODELS)
    for name, builder in zoo.MODELS.items():
        assert getattr(zoo, name) is builder
        paper = zoo.PAPERS[name]
        doc = " ".join(builder.__doc__.split())
        assert paper.title in doc and paper.venue in doc and str(paper.year) in doc


@pytest.mark.parametrize("row", TABLE, ids=[_id(r) for r in TABLE])
def test_table_from_shape_inference(row):
    name, options, input_shape, output_shape, total, trainable, macs = row
    model = zoo.MODELS[name](**options)
    assert model.input_shape == (None, *input_shape)
    if isinstance(output_shape, list):
        assert model.output_shape == [(None, *s) for s in output_shape]
    else:
        assert model.output_shape == (None, *output_shape)
    assert model.count_params() == total
    assert _trainable(model) == trainable
    assert _macs(model) == macs


@pytest.mark.parametrize("key", sorted(REFERENCE_GMACS))
def test_macs_agree_with_published_figures(key):
    row = next(r for r in TABLE if _id(r) == key)
    assert round(row[6] / 1e9, 2) == REFERENCE_GMACS[key]


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_blocks_are_named(name):
    model = zoo.MODELS[name](num_classes=10, input_shape=_small_shape(name))
    top = {d["block"][0] for _, d in model.graph.nodes(data=True) if d["block"]}
    assert BLOCKS[name] <= top, sorted(BLOCKS[name] - top)


def _small_shape(name: str):
    return next(r[2] for r in SMALL if r[0] == name and not r[1])


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_num_classes_changes_only_the_head_and_names_are_stable(name):
    shape = _small_shape(name)
    a = _nodes(zoo.MODELS[name](num_classes=10, input_shape=shape))
    b = _nodes(zoo.MODELS[name](num_classes=7, input_shape=shape))
    # Every layer is named explicitly: a second build in the same session gets the same names.
    assert a.keys() == b.keys()
    changed = {k for k in a if a[k] != b[k]}
    head = {"fc8"} if name == "alexnet" else {"predictions"}
    assert changed == head
    ((shape10,), _), ((shape7,), _) = a[next(iter(head))], b[next(iter(head))]
    assert shape10 == (None, 10) and shape7 == (None, 7)


def test_aux_heads_change_with_num_classes_too():
    a = _nodes(zoo.inception_v1(num_classes=10, aux_logits=True))
    b = _nodes(zoo.inception_v1(num_classes=7, aux_logits=True))
    assert {k for k in a if a[k] != b[k]} == {"predictions", "aux1/fc2", "aux2/fc2"}


@pytest.mark.parametrize(
    "name, input_shape, layer",
    [
        ("inception_v3", (3, 64, 64), "mixed8/branch3x3_2/conv"),
        ("inception_v3", (3, 74, 74), "mixed8/branch3x3_2/conv"),
        ("inception_v4", (3, 74, 74), "reduction_b/branch0_3x3/conv"),
        ("inception_resnet_v2", (3, 74, 74), "mixed_7a/branch_0b/conv"),
        ("vgg16", (3, 31, 31), "block5/pool"),
        ("alexnet", (3, 66, 66), "conv5/pool"),
        ("lenet5", (1, 15, 15), "pool2"),
        ("inception_v1", (3, 14, 14), "pool3"),  # 15 is legal: ceil-mode windows may overhang
        ("xception", (3, 6, 6), "entry_flow_block1/conv2"),
    ],
)
def test_illegal_input_raises_the_dsl_shape_error_naming_the_layer(name, input_shape, layer):
    with pytest.raises(ValueError, match=f'"{layer}"'):
        zoo.MODELS[name](input_shape=input_shape)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: zoo.lenet5(num_classes=0), "lenet5: num_classes must be a positive int"),
        (lambda: zoo.vgg16(input_shape=(224, 224)), r"vgg16: input_shape must be \(channels"),
        (lambda: zoo.resnet50(input_shape=(3, 0, 64)), "resnet50: input_shape"),
        (lambda: zoo.alexnet(variant="caffe"), "alexnet: variant must be"),
        (lambda: zoo.inception_v1(variant="v2"), "inception_v1: variant must be"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _step(name, options, input_shape):
    model = zoo.MODELS[name](num_classes=10, input_shape=input_shape, **options)
    rng = np.random.default_rng(0)
    x = tc.tensor(rng.standard_normal((2, *input_shape)).astype(np.float32))
    outs = model(x, training=True)
    outs = outs if isinstance(outs, list) else [outs]
    loss = None
    for out in outs:
        assert out.shape == (2, 10)
        assert np.isfinite(out.numpy()).all()
        # A random upstream gradient: the softmax outputs sum to 1, so a plain sum has none.
        term = (out * tc.tensor(rng.standard_normal((2, 10)).astype(np.float32))).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    params = model.parameters()
    assert len(params) > 0
    for p in params:
        assert p.grad is not None
        g = p.grad.numpy() if hasattr(p.grad, "numpy") else np.asarray(p.grad)
        assert g.shape == p.shape and np.isfinite(g).all()
    # Every layer contributes: the first conv's kernel gradient is not identically zero.
    assert np.abs(_grad(params[0])).sum() > 0


def _grad(p):
    return p.grad.numpy() if hasattr(p.grad, "numpy") else np.asarray(p.grad)


@pytest.mark.parametrize(
    "name, options, input_shape",
    [
        pytest.param(n, o, s, id=_id((n, o)), marks=[pytest.mark.slow] if slow else [])
        for n, o, s, slow in SMALL
    ],
)
def test_forward_backward(name, options, input_shape):
    _step(name, options, input_shape)


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz' dot is not installed")
def test_draw_collapses_blocks(tmp_path):
    model = zoo.inception_v1(num_classes=10, input_shape=(3, 64, 64))
    blocks = tmp_path / "blocks.svg"
    branches = tmp_path / "branches.svg"
    model.draw(str(blocks), depth=0)
    model.draw(str(branches), depth=1)
    svg = blocks.read_text()
    assert svg.lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE"))
    assert "inception_3a" in svg and "inception_5b" in svg
    # Depth 0: one box per module, the branches inside are not drawn; depth 1 opens them.
    assert "branch3x3_reduce" not in svg
    assert "branch3x3_reduce" in branches.read_text()


def _torch_name(key: str) -> str:
    """``conv3_block2/1_bn/gamma`` -> the torchvision-style key of the Sequential above."""
    layer, weight = key.rsplit("/", 1)
    suffix = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
              "moving_mean": "running_mean", "moving_variance": "running_var"}[weight]  # fmt: skip
    if layer == "predictions":
        return f"10.{suffix}"
    if layer.startswith("conv1/"):
        return f"{0 if layer.endswith('conv') else 1}.{suffix}"
    block, op = layer.split("/")
    stage, b = int(block[4]) - 2, int(block.split("block")[1]) - 1
    unit, kind = op.split("_")
    if unit == "0":
        return f"{4 + stage}.{b}.downsample.{0 if kind == 'conv' else 1}.{suffix}"
    return f"{4 + stage}.{b}.{kind}{unit}.{suffix}"


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("training", [False, True])
def test_resnet50_matches_torchvision_forward(training):
    """Parameter counts cannot see the order of ops (ReLU after the add, stride on the 3x3, BN
    eps); the values can. Random weights and BN statistics, copied into the torch module. At
    64x64 the last stage is 2x2, so training-mode BN sees 8 values per channel: at 32x32 (1x1,
    2 values) the network is so ill-conditioned that torch's own float32 and float64 disagree."""
    model = zoo.resnet50(num_classes=10, input_shape=(3, 64, 64), classifier_activation=None)
    ref = torch_models.resnet50(10).double()
    rng = np.random.default_rng(1)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("moving_variance"):
            value = rng.uniform(0.5, 2.0, value.shape)
        elif key.endswith(("moving_mean", "gamma", "beta")):
            value = rng.uniform(-0.5, 0.5, value.shape) + (key.endswith("gamma"))
        state[key] = value.astype(np.float32)
    model.load_state_dict(state)
    missing, unexpected = ref.load_state_dict(
        {_torch_name(k): torch.from_numpy(v.astype(np.float64)) for k, v in state.items()},
        strict=False,
    )
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    ref.train(training)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    got = model(tc.tensor(x), training=training).numpy()
    with torch.no_grad():
        want = ref(torch.from_numpy(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
