"""The README's first command is ``clust demo``, and every ``clust`` line of its
"The clust command" section is a command line ``clust`` accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from clust.cli import _parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _command_lines() -> list[str]:
    [block] = re.findall(r"```bash\n(.*?)```", _section("The clust command"), re.S)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_first_command_is_the_demo() -> None:
    [block] = re.findall(r"```bash\n(.*?)```", _section("Two commands"), re.S)
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert commands[0] == "pip install -e . && clust demo"
    assert "examples/quickstart.py" in _section("Two commands")


@pytest.mark.parametrize("line", _command_lines())
def test_documented_command_parses(line: str) -> None:
    words = shlex.split(line)
    assert words[0] == "clust"
    args = _parser().parse_args(words[1:])
    assert callable(args.run)


def test_every_subcommand_is_documented() -> None:
    documented = {shlex.split(line)[1] for line in _command_lines()}
    assert documented == {"demo", "chat", "conversations", "usage", "db"}
