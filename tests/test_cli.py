"""The ``tinycnn`` command line: zoo, summary, explain, draw; MODEL as a zoo name or
``package.module:function``."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tinycnn as tc
from tinycnn import cli
from tinycnn import layers as L
from tinycnn.graph import clear_session

ROOT = Path(__file__).resolve().parents[1]


def tiny(num_classes=3, input_shape=(1, 8, 8)):
    """A model builder for ``tests.test_cli:tiny``."""
    clear_session()
    x = inp = tc.Input(input_shape)
    with tc.block("features"):
        x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
        x = L.MaxPool2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    return tc.Model(inp, L.Dense(num_classes, name="fc")(x), name="tiny")


NOT_A_MODEL = 42


def test_summary_and_explain(capsys):
    state = tc.random.get_state()
    assert cli.main(["summary", "tests.test_cli:tiny"]) == 0
    assert tc.random.get_state() == state  # a view draws no weights (shapes_only)
    out = capsys.readouterr().out
    assert 'Model: "tiny"' in out and "Total params: 235" in out
    assert cli.main(["summary", "tests.test_cli:tiny", "--depth", "0"]) == 0
    assert "features (Block: 2 layers)" in capsys.readouterr().out
    assert (
        cli.main(["explain", "tests.test_cli:tiny", "--input-shape", "1,6,6", "--num-classes", "5"])
        == 0
    )
    out = capsys.readouterr().out
    assert "W2 = (6 − 3 + 2·1)/1 + 1 = 6 → 6×6×4" in out and "Dense 5: 36 → 5" in out


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")
def test_draw(tmp_path, capsys):
    out = tmp_path / "tiny.svg"
    assert (
        cli.main(
            [
                "draw",
                "tests.test_cli:tiny",
                "-o",
                str(out),
                "--rankdir",
                "LR",
                "--fold",
                "--depth",
                "1",
                "--no-params",
            ]
        )
        == 0
    )
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_text().lstrip().startswith("<?xml")


def test_draw_source_only(tmp_path):
    out = tmp_path / "tiny.gv"
    assert (
        cli.main(
            [
                "draw",
                "tests.test_cli:tiny",
                "-o",
                str(out),
                "--no-shapes",
                "--collapse-repeated",
                "--max-nodes",
                "0",
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "rankdir=TB" in text and 'subgraph "cluster_features"' in text and "×8" not in text


@pytest.mark.parametrize(
    "argv,message",
    [
        (["summary", "no_such_model"], "unknown model 'no_such_model'; zoo models: "),
        (["summary", "no.such.module:f"], "cannot import module 'no.such.module'"),
        (["summary", "tests.test_cli:missing"], "has no attribute 'missing'"),
        (["summary", "tests.test_cli:"], "expected package.module:function or file.py:function"),
        (["summary", ":tiny"], "expected package.module:function or file.py:function"),
        (["summary", "tests.test_cli:NOT_A_MODEL"], "did not give a tinycnn Model"),
        (
            ["explain", "tests.test_cli:tiny", "--input-shape", "1,1,1"],
            r"MaxPool2D layer \"features/pool\"",
        ),
    ],
)
def test_errors_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(argv)
    assert err.value.code == 2
    assert __import__("re").search(message, capsys.readouterr().err)


def test_model_files_that_fail_say_what_and_where(tmp_path, capsys):
    (tmp_path / "rel.py").write_text("x = 1\nfrom ._common import y\n")
    (tmp_path / "net.py").write_text("def f():\n    return 1\n")
    cases = [
        (
            f"{tmp_path}/rel.py:f",
            "raised ImportError: attempted relative import with no known "
            "parent package (line 2: from ._common import y); a file with relative imports is part "
            "of a package: give package.module:function",
        ),
        (f"{tmp_path}/net.py", f"is a file: name its function too, as {tmp_path}/net.py:function"),
    ]
    for spec, message in cases:
        with pytest.raises(SystemExit) as err:
            cli.main(["summary", spec])
        assert err.value.code == 2
        assert message in capsys.readouterr().err


def test_a_model_function_that_fails_says_its_line_by_a_relative_path(
    tmp_path, monkeypatch, capsys
):
    """The function's own error (a typo, or a shape error of a layer it calls) names the line
    of the file that raised it, whether the file is given by a relative path or as a module."""
    (tmp_path / "mine.py").write_text(
        "import tinycnn as tc\nimport tinycnn.layers as L\n\n\ndef typo():\n"
        "    return undefined_name\n\n\ndef big_kernel():\n    x = tc.Input((1, 8, 8))\n"
        "    return tc.Model(x, L.Conv2D(4, 11)(x))\n"
    )
    (tmp_path / "boom.py").write_text("raise RuntimeError('at import')\n")
    monkeypatch.chdir(tmp_path)
    cases = [
        ("mine.py:typo", "running 'mine.py' raised NameError: name 'undefined_name' is not "
         "defined (line 6: return undefined_name)"),
        ("mine:typo", "(line 6: return undefined_name)"),
        ("mine.py:big_kernel", "H2 = (8 − 11 + 2·0)/1 + 1 = -2 is < 1"),
        ("mine.py:big_kernel", "(line 11: return tc.Model(x, L.Conv2D(4, 11)(x)))"),
        ("boom.py:f", "raised RuntimeError: at import (line 1: raise RuntimeError('at import'))"),
    ]  # fmt: skip
    for spec, message in cases:
        with pytest.raises(SystemExit) as err:
            cli.main(["summary", spec])
        assert err.value.code == 2
        assert message in capsys.readouterr().err


def test_a_file_that_cannot_be_written_is_one_line(tmp_path, capsys):
    target = tmp_path / "missing" / "net.svg"
    with pytest.raises(SystemExit) as err:
        cli.main(["draw", "tests.test_cli:tiny", "-o", str(target)])
    assert err.value.code == 1
    assert capsys.readouterr().err == (
        f"tinycnn draw: error: {target}: No such file or directory\n"
    )


def test_a_warning_is_one_note_line(monkeypatch, capsys):
    def summary(args):
        __import__("warnings").warn("blocks collapsed for legibility")
        return 0

    monkeypatch.setitem(
        cli.COMMANDS, "summary", cli.Command("a summary", cli._summary_args, summary)
    )
    assert cli.main(["summary", "tests.test_cli:tiny"]) == 0
    assert capsys.readouterr().err == "tinycnn summary: note: blocks collapsed for legibility\n"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["summary", "lenet5", "--depth", "-1"], "argument --depth: must be >= 0, got -1"),
        (["draw", "lenet5", "--max-nodes", "-5"], "argument --max-nodes: must be >= 0, got -5"),
        (["draw", "lenet5", "--dpi", "0"], "argument --dpi: must be >= 1, got 0"),
        (
            ["summary", "lenet5", "--line-length", "x"],
            "--line-length: expected an integer, got 'x'",
        ),
    ],
)
def test_counts_are_checked_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_input_shape_argument(capsys):
    with pytest.raises(SystemExit):
        cli.main(["summary", "lenet5", "--input-shape", "3x224"])
    assert "expected three positive sizes" in capsys.readouterr().err


def test_zoo_listing(monkeypatch, capsys):
    import zoo

    monkeypatch.setattr(zoo, "MODELS", {"tiny": tiny})
    assert cli.main(["zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "input", "output", "params", "MACs", "year"]
    assert lines[2].split() == ["tiny", "1×8×8", "3", "235", "2.50", "K"]
    assert cli.main(["zoo", "--names"]) == 0
    assert capsys.readouterr().out.split() == ["tiny"]


def test_zoo_name_resolves_through_the_registry(monkeypatch, capsys):
    import zoo

    monkeypatch.setitem(zoo.MODELS, "tiny_registered", tiny)
    assert cli.main(["summary", "tiny_registered"]) == 0
    assert 'Model: "tiny"' in capsys.readouterr().out


def test_commands_table_is_extensible(monkeypatch, capsys):
    seen = []

    def configure(p):
        p.add_argument("--flag", action="store_true")

    monkeypatch.setitem(
        cli.COMMANDS,
        "hello",
        cli.Command("say hello", configure, lambda a: seen.append(a.flag) or 0),
    )
    assert cli.main(["hello", "--flag"]) == 0 and seen == [True]
    monkeypatch.setitem(
        cli.COMMANDS, "lazy", cli.Command("lazy import", lambda p: None, "tests.test_cli:_lazy_run")
    )
    assert cli.main(["lazy"]) == 7


def _lazy_run(args):
    return 7


def test_ctrl_c_ends_any_command_with_status_130_and_no_traceback(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "slow", cli.Command("slow", lambda p: None, interrupted))
    assert cli.main(["slow"]) == 130
    captured = capsys.readouterr()
    assert captured.err.strip() == "tinycnn slow: interrupted" and "Traceback" not in captured.err


@pytest.mark.parametrize("module", ["tinycnn", "tinycnn.cli"])
def test_module_entry_point_runs(module):
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    for name in ("zoo", "summary", "explain", "draw"):
        assert name in proc.stdout
