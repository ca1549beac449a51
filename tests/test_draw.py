"""Diagrams: the DOT source (a LeNet-5 snapshot), rendered SVGs (one node per visible layer, one
cluster per block), collapsing, folding, and the missing-``dot`` path."""

import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import tinycnn as tc
from tinycnn import layers as L
from tinycnn.graph import clear_session, render

from .test_summary import lenet5, mini_inception

SNAPSHOTS = Path(__file__).parent / "snapshots"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")


@pytest.fixture(autouse=True)
def _fresh_names():
    clear_session()


def test_lenet5_dot_snapshot():
    """The DOT text is deterministic; regenerate with TINYCNN_UPDATE_SNAPSHOTS=1."""
    source = lenet5().to_dot()
    path = SNAPSHOTS / "lenet5.gv"
    if os.environ.get("TINYCNN_UPDATE_SNAPSHOTS"):
        path.write_text(source, encoding="utf-8")
    assert source == path.read_text(encoding="utf-8")


def test_dot_content():
    source = mini_inception().to_dot(rankdir="LR", dpi=150)
    assert source.startswith('digraph "mini_inception" {')
    assert "rankdir=LR" in source and "dpi=150" in source
    for block in ("mixed", "mixed/branch1", "mixed/branch2", "mixed/pool", "stem"):
        assert f'subgraph "cluster_{block}"' in source
    # inside a cluster a layer is labelled by its local name
    assert "<b>conv3x3</b>" in source and "<b>mixed/branch2/conv3x3</b>" not in source
    assert "Conv2D 8@3×3 S=1 P=same relu" in source
    assert "8×16×16" in source and "296 params" in source
    assert re.search(r'fillcolor="#a8d1f0"', source)  # conv colour
    bare = mini_inception().to_dot(show_shapes=False, show_params=False)
    assert "8×16×16" not in bare and "params" not in bare
    with pytest.raises(ValueError, match="rankdir"):
        lenet5().to_dot(rankdir="XY")
    with pytest.raises(ValueError, match="depth"):
        lenet5().to_dot(depth=-1)


def _svg_counts(path):
    root = ET.parse(path).getroot()
    groups = [g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g")]
    return groups.count("node"), groups.count("cluster")


@needs_dot
def test_svg_has_one_node_per_layer_and_one_cluster_per_block(tmp_path):
    m = mini_inception()
    path = m.draw(tmp_path / "mini.svg")
    blocks = {
        d["block"][:k] for _, d in m.graph.nodes(data=True) for k in range(1, len(d["block"]) + 1)
    }
    assert _svg_counts(path) == (len(m.graph), len(blocks)) == (13, 5)
    # depth 1: branch blocks become single nodes, only the level-1 clusters remain
    path = m.draw(tmp_path / "mini_d1.svg", depth=1)
    assert _svg_counts(path) == (13 - 4 + 3, 2)
    path = m.draw(tmp_path / "mini_d0.svg", depth=0)
    assert _svg_counts(path) == (5, 0)


@needs_dot
def test_formats_by_suffix(tmp_path):
    m = lenet5()
    assert Path(m.draw(tmp_path / "a.png", dpi=50)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(m.draw(tmp_path / "a.pdf")).read_bytes()[:5] == b"%PDF-"
    gv = Path(m.draw(tmp_path / "a.gv"))
    assert gv.read_text().startswith('digraph "lenet5"')
    with pytest.raises(ValueError, match="unknown format '.jpg'"):
        m.draw(tmp_path / "a.jpg")
    svg = m._repr_svg_()
    assert "<svg" in svg and "conv1" in svg


def test_missing_dot_writes_gv_and_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "_dot_binary", lambda: None)
    m = lenet5()
    with pytest.raises(render.GraphvizNotFoundError) as err:
        m.draw(tmp_path / "net.svg")
    msg = str(err.value)
    assert "apt-get install graphviz" in msg and "brew install graphviz" in msg
    assert "conda install" in msg and str(tmp_path / "net.gv") in msg
    assert (tmp_path / "net.gv").read_text().startswith('digraph "lenet5"')
    assert not (tmp_path / "net.svg").exists()
    assert m._repr_svg_() is None


def _blocks_model(n_blocks, per_block=5, same=True):
    x = inp = tc.Input((4, 6, 6))
    for i in range(n_blocks):
        with tc.block(f"unit{i + 1}"):
            for j in range(per_block - 1):
                x = L.Conv2D(4 if same else 4 + i, 1, name=f"conv{j}")(x)
            x = L.Activation("relu", name="relu")(x)
    return tc.Model(inp, x, name="deep")


def test_large_graph_collapses_with_a_note():
    m = _blocks_model(60)  # 300 layers
    note = (
        "300 layers: blocks collapsed to depth 0 for legibility; to expand, pass depth=N "
        "(command line: --depth N) for that depth, or max_nodes=None (command line: "
        "--max-nodes 0) for every layer"
    )
    with pytest.warns(UserWarning) as caught:
        source = m.to_dot()
    assert [str(w.message) for w in caught] == [f'draw "deep": {note}']
    assert f'label="deep\\n{note}"' in source  # the diagram's title says the same
    assert source.count("[label=<") == 61
    assert m.to_dot(max_nodes=None).count("[label=<") == 301
    assert m.to_dot(depth=1).count("[label=<") == 301  # an explicit depth is obeyed


def test_the_collapse_notes_command_line_flag_expands(tmp_path, capsys):
    from tinycnn import cli

    builder = tmp_path / "deep.py"
    builder.write_text(
        "import tinycnn as tc\n"
        "from tinycnn import layers as L\n\n\n"
        "def deep():\n"
        "    x = inp = tc.Input((4, 6, 6))\n"
        "    for i in range(60):\n"
        "        with tc.block(f'unit{i}'):\n"
        "            for j in range(5):\n"
        "                x = L.Conv2D(4, 1, name=f'conv{j}')(x)\n"
        "    return tc.Model(inp, x, name='deep')\n"
    )
    gv = tmp_path / "deep.gv"
    assert cli.main(["draw", f"{builder}:deep", "-o", str(gv)]) == 0
    assert "--max-nodes 0" in capsys.readouterr().err
    assert gv.read_text().count("[label=<") == 61
    assert cli.main(["draw", f"{builder}:deep", "--max-nodes", "0", "-o", str(gv)]) == 0
    assert "collapsed" not in capsys.readouterr().err
    assert gv.read_text().count("[label=<") == 301


def test_collapse_repeated_blocks():
    m = _blocks_model(4)
    source = m.to_dot(collapse_repeated=True)
    assert "<b>unit ×4</b>" in source and "4 blocks, 20 layers" in source
    assert source.count("[label=<") == 2 and "peripheries=2" in source
    different = _blocks_model(3, same=False)  # widths differ: nothing repeats
    assert different.to_dot(collapse_repeated=True).count("[label=<") == 16


def test_fold_bn_and_activation_into_conv():
    source = mini_inception().to_dot(fold=True)
    assert "Conv2D+BN+relu 16@3×3 S=1 P=same" in source
    assert source.count("[label=<") == 13 - 2
    assert "<b>bn</b>" not in source


@needs_dot
def test_zoo_style_inception_svg(tmp_path):
    # a graph with shared names inside different blocks renders without id clashes
    path = mini_inception().draw(tmp_path / "m.svg", fold=True, collapse_repeated=True)
    assert _svg_counts(path)[0] == 11


def test_a_layer_also_inside_a_nested_model_is_drawn_with_its_params_once():
    """The boxes' params add up to count_params(): a conv called directly and inside a nested
    model is counted on the first box that holds it (here the nested model's, 20 + 6)."""
    conv = L.Conv2D(2, 3, padding="same", name="conv")
    xi = tc.Input((1, 8, 8))
    inner = tc.Model(xi, L.Conv2D(2, 1, name="pw")(conv(xi)), name="inner")
    x = tc.Input((1, 8, 8))
    model = tc.Model(x, L.Add(name="sum")([inner(x), conv(x)]), name="outer")
    assert model.count_params() == 26
    dot = model.to_dot(depth=0)
    counts = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) params", dot)]
    assert sorted(counts) == [26] and sum(counts) == model.count_params()
