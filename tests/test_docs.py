"""README stays true: every command, config key and environment variable is documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bot import config
from bot.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = "alertbot") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += _commands(sub, f"{prefix} {name}")
    return found


def test_every_command_is_in_the_readme():
    commands = _commands(build_parser())
    assert "alertbot rules check" in commands and "alertbot run" in commands
    missing = [c for c in commands if c not in README and c.replace(" ", " ", 1) not in README]
    # `subscribers add|list|remove` and `feeds import/export` are written compactly in the table
    compact = {
        c
        for c in missing
        if re.search(rf"{re.escape(c.rsplit(' ', 1)[0])} \S*{c.rsplit(' ', 1)[1]}", README)
    }
    assert not set(missing) - compact, (
        f"commands missing from README: {sorted(set(missing) - compact)}"
    )


def test_every_configuration_key_is_in_the_readme():
    keys = [f"{section}.{key}" for section, fields in config._FIELDS.items() for key in fields]
    keys += [f"feeds[].{key}" for key in config._FEED_FIELDS]
    missing = [k for k in keys if f"`{k}`" not in README]
    assert not missing, f"configuration keys missing from README: {missing}"


def test_every_environment_variable_is_in_the_readme():
    names = set(
        re.findall(
            r"\b(?:ALERTBOT|TELEGRAM)_[A-Z_]+\b",
            (ROOT / "bot" / "config" / "__init__.py").read_text(),
        )
    )
    assert "TELEGRAM_BOT_TOKEN" in names
    assert not [n for n in names if n not in README]


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    test_command = next(b for b in blocks if "pytest" in b).strip()
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_opens_with_the_two_set_up_commands():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2
    assert "alertbot run --once" in commands[0]
    assert "pytest" in commands[1]


def test_every_module_is_in_the_readme_layout():
    layout = README.split("## How the code is laid out", 1)[1]
    for path in sorted((ROOT / "bot").rglob("*.py")):
        folder = path.parent.relative_to(ROOT / "bot")
        named = f"{folder}/" if path.name == "__init__.py" else path.name
        if str(folder) != "." or path.name != "__init__.py":
            assert named in layout, f"{path.relative_to(ROOT)} is not in README's layout section"
