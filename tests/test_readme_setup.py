"""README's first command, verbatim, in a fresh copy of the repository with the machine's python3
(whose bundled pip may be old): it installs and runs one cycle with no warning from pip."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from runbot import ROOT

SETUP = (ROOT / "README.md").read_text(encoding="utf-8").split("## Set up", 1)[1]
FIRST = re.findall(r"```sh\n(.*?)\n```", SETUP.split("\n## ", 1)[0], re.S)[0]
LEFT_OUT = (".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis",
            "build", "*.egg-info", "*.db", "*.db-wal", "*.db-shm", "alertbot.yaml")  # fmt: skip


def test_readme_first_command_installs_and_runs_without_a_pip_warning(tmp_path: Path) -> None:
    clone = tmp_path / "alertbot"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(*LEFT_OUT))
    # a newcomer's shell: no virtual environment active, this test's own one off PATH
    ours = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != ours)
    dropped = ("VIRTUAL_ENV", "ALERTBOT_", "TELEGRAM_", "PYTHON")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    result = subprocess.run(
        ["bash", "-c", FIRST], cwd=clone, env={**env, "PATH": path},
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "does not provide the extra" not in output  # jusText's lxml[html_clean] on old pips
    assert "BuildBackendWarning" not in output  # e.g. a deprecated pyproject.toml field
    assert "Successfully installed" in output and "alertbot-" in output
    assert "»" in result.stdout, "the bundled example's alerts are printed"
