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
