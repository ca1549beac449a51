"""CI runs the README's test command: the two must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running the tests", 1)[1]
    return re.search(r"```bash\n(.*?)\n```", section, re.S).group(1).strip()


def test_ci_runs_the_readme_test_command():
    command = _readme_test_command()
    assert "python -m pytest" in command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci], f"{command!r} is not a line of .ci/run"


def test_first_example_prints_the_losses_the_readme_shows(capsys):
    section = (ROOT / "README.md").read_text().split("## A first example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    printed = re.findall(r"loss ([\d.]+)", capsys.readouterr().out)
    shown = re.search(r"# ([\d.]+), ([\d.]+), ([\d.]+)", code).groups()
    assert printed == list(shown)


def test_every_name_the_readme_gives_exists():
    """``tc.a.b.C`` as written in code works after a bare ``import tinycnn as tc`` (attribute
    access, each name in an interpreter of its own, so that no other import helps);
    ``tinycnn.a.b.f`` in the prose is importable (``from tinycnn.a.b import f``)."""
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    names = sorted(set(re.findall(r"\b(?:tc|tinycnn)(?:\.[A-Za-z_]\w*)+", text)))
    assert len(names) > 20
    attribute = "import functools, sys, tinycnn; functools.reduce(getattr, sys.argv[1:], tinycnn)"
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", attribute, *name.split(".")[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
        if name.startswith("tc.")
    }
    bad = []
    for name, proc in procs.items():
        _, err = proc.communicate()
        if proc.returncode:
            bad.append(f"{name}: {err.strip().splitlines()[-1]}")
    code = f"""
import functools, importlib
for name in {[n for n in names if n.startswith("tinycnn.")]!r}:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
            break
        except ImportError:
            pass
    try:
        functools.reduce(getattr, parts[cut:], obj)
    except AttributeError as e:
        print(f"{{name}}: {{e}}")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    bad += out.stdout.splitlines()
    assert not bad, "\n".join(bad)
