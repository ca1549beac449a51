"""The README's examples are true: every Python block runs as written (its ``# (8, 16, 32, 32)``
shape comments checked), and the printed outputs it shows are what the program prints."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import tinycnn
from tinycnn.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# Blocks that are an API sheet or a fragment, not a program (named by their first line).
SKETCHES = {
    "import tinycnn as tc\nfrom tinycnn import layers as L\n\nx = inp = tc.Input((3, 32, 32))": (
        "the API in one screen: one line per method, on names it does not define"
    ),
    "opt = tc.optim.Adam(model.parameters(), lr=1e-3)": "a loop fragment: batches is the reader's",
}
SHAPE_COMMENT = re.compile(r"#\s*(?:[\w ]+:\s*)?(\((?:\d+, )*\d+,?\))\s*$")


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", README, re.S | re.M)


def _programs() -> list[str]:
    return [code for code in _blocks("python") if not any(code.startswith(s) for s in SKETCHES)]


def _section(title: str) -> str:
    return README.split(title, 1)[1]


def test_every_python_block_is_a_program_or_a_named_sketch():
    blocks = _blocks("python")
    sketches = [code for code in blocks if any(code.startswith(s) for s in SKETCHES)]
    assert len(sketches) == len(SKETCHES)
    assert len(_programs()) == len(blocks) - len(SKETCHES) >= 7


@pytest.fixture
def small_mnist(monkeypatch):
    """The training example trains on all of MNIST for 10 epochs; here on its first 300 images
    (the code is the README's, the data smaller)."""
    from tinycnn import datasets

    load = datasets.load_mnist
    monkeypatch.setattr(datasets, "load_mnist", lambda *a, **k: load(*a, **{**k, "limit": 300}))


@pytest.mark.parametrize("index", range(len(_programs())))
def test_python_block_runs_and_its_shape_comments_hold(index, tmp_path, monkeypatch, small_mnist):
    monkeypatch.chdir(tmp_path)  # examples that save files write them here
    monkeypatch.syspath_prepend(str(ROOT))  # `from zoo import ...`
    code = _programs()[index]
    lines = code.splitlines()
    namespace: dict = {}
    checked = 0
    for stmt in ast.parse(code).body:
        exec(compile(ast.Module([stmt], []), "README.md", "exec"), namespace)
        if isinstance(stmt, ast.FunctionDef):  # a model builder: it builds
            assert isinstance(namespace[stmt.name](), tinycnn.Model)
            continue
        for node in ast.walk(stmt):  # in a loop: the last iteration's value
            match = isinstance(node, ast.Assign) and SHAPE_COMMENT.search(
                lines[node.end_lineno - 1]
            )
            if match:
                target = node.targets[0]
                name = (target.elts[0] if isinstance(target, ast.Tuple) else target).id
                shape = tuple(namespace[name].shape)
                assert shape == ast.literal_eval(match.group(1)), lines[node.end_lineno - 1]
                checked += 1
    assert checked == sum(bool(SHAPE_COMMENT.search(line)) for line in lines)


def test_the_mini_inception_summary_is_the_example_file_and_its_summary():
    section = _section("### A mini-Inception module")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert code.strip() in (ROOT / "docs" / "examples" / "mini_inception.py").read_text()
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["mini_inception"]().summary(return_string=True).strip() == shown.strip()


def _shown_lines_in_order(shown: str, printed: str) -> None:
    """Every line the README shows is printed, in that order ("…"/"..." lines elide)."""
    printed_lines = [line.rstrip() for line in printed.splitlines()]
    at = 0
    for line in shown.strip().splitlines():
        if line.strip() in ("...", "…"):
            continue
        assert line.rstrip() in printed_lines[at:], f"not printed (in this order): {line!r}"
        at = printed_lines.index(line.rstrip(), at) + 1


def test_the_walk_throughs_and_the_zoo_table_are_what_the_commands_print(capsys):
    section = _section("### The seed's dimension walk-through")
    walk, rf = re.findall(r"```text\n(.*?)```", section, re.S)[:2]
    assert main(["explain", "lenet5"]) == 0
    assert capsys.readouterr().out.strip() == walk.strip()
    assert main(["explain", "lenet5", "--rf"]) == 0
    _shown_lines_in_order(rf, capsys.readouterr().out)

    table = re.search(r"`tinycnn zoo`:\n\n```text\n(.*?)```", README, re.S).group(1)
    assert main(["zoo"]) == 0
    _shown_lines_in_order(table, capsys.readouterr().out)


def test_the_shape_errors_shown_are_the_ones_raised():
    """The three errors of "Shape errors where the model is written", from models that make
    them (the README wraps the messages; whitespace is compared loosely)."""
    from tinycnn import layers as L
    from tinycnn.graph import clear_session

    section = _section("### Shape errors where the model is written")
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1).strip().split("\n\n")

    def raised(build) -> str:
        clear_session()
        with pytest.raises(ValueError) as info:
            build()
        return " ".join(str(info.value).split())

    def conv3():
        x = tinycnn.Input((16, 4, 4))
        L.Conv2D(8, 5, name="conv3")(x)

    def concat():
        x = tinycnn.Input((3, 4, 4))
        b1 = L.Conv2D(64, 1, name="b1")(x)
        b2 = L.Conv2D(32, 4, name="b2")(x)
        L.Concatenate(name="concat")([b1, b2])

    def add():
        x = tinycnn.Input((3, 8, 8))
        b1 = L.Conv2D(64, 1, strides=2, name="b1")(x)
        p2 = L.MaxPool2D(2, name="pool2")(L.Conv2D(16, 1)(x))
        L.Add(name="add")([b1, p2])

    got = [raised(conv3), raised(concat), raised(add)]
    assert got == [" ".join(message.split()) for message in shown]
    assert np.all([message.startswith(("Conv2D", "Concatenate", "Add")) for message in got])
