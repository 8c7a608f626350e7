"""Rules edited while the bot runs: validated, swapped whole, or refused with FILE:LINE."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from feedserver import FeedServer
from test_run_cli import clean_env, rss

from bot.rules.files import load_rules
from bot.rules.matcher import Rulebook
from bot.rules.reload import Reloader

ROOT = Path(__file__).resolve().parent.parent
HUNGER = """id: famine
title: Famine warnings
level: medium
terms:
  famine: [famine, starvation, "food insecurity"]
match:
  all: ["@famine"]
"""
BROKEN = "id: famine\ntitle: Famine\nlevel: extreme\nmatch:\n  all: [famine]\n"


def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


async def test_valid_rules_are_swapped_in_whole_and_everyone_is_told(tmp_path: Path) -> None:
    path = rules_copy(tmp_path)
    swapped: list[Rulebook] = []
    told: list[str] = []

    async def notify(text: str) -> None:
        told.append(text)

    reloader = Reloader(path, load_rules(path), on_swap=[swapped.append], notify=notify)
    (path / "famine.yaml").write_text(HUNGER)
    (path / "kursk.yaml").unlink()
    outcome = await reloader.reload("test")
    assert outcome.ok and outcome.added == ("famine",) and outcome.removed == ("kursk",)
    assert swapped == [reloader.rulebook] and reloader.rulebook.get("famine") is not None
    assert told == [f"Rules reloaded (test): {outcome.rule_count} rules; new: famine; gone: kursk"]


async def test_invalid_rules_keep_the_old_set_and_name_file_and_line(tmp_path: Path) -> None:
    path = rules_copy(tmp_path)
    running = load_rules(path)
    swapped: list[Rulebook] = []
    reloader = Reloader(path, running, on_swap=[swapped.append])
    (path / "famine.yaml").write_text(BROKEN)
    outcome = await reloader.reload("test")
    assert not outcome.ok and swapped == [] and reloader.rulebook is running
    assert f"{path / 'famine.yaml'}:3: 'level' must be one of" in outcome.message()
    assert outcome.message().startswith("Rules NOT reloaded (test); the previous rules keep")


async def test_the_watcher_notices_an_edit(tmp_path: Path) -> None:
    path = rules_copy(tmp_path)
    reloader = Reloader(path, load_rules(path))
    stop = asyncio.Event()
    watching = asyncio.create_task(reloader.watch(stop, interval=0.05))
    await asyncio.sleep(0.1)
    (path / "famine.yaml").write_text(HUNGER)
    deadline = time.monotonic() + 10
    while reloader.rulebook.get("famine") is None:
        assert time.monotonic() < deadline, "the watcher never reloaded"
        await asyncio.sleep(0.05)
    stop.set()
    await watching


def one_feed_config(tmp_path: Path, feed_url: str, rules: Path, more: str = "") -> Path:
    """alertbot.yaml with one feed `wire`, these rules, a database under state/, and `more`."""
    config = tmp_path / "alertbot.yaml"
    config.write_text(
        f"feeds:\n  - name: wire\n    url: {feed_url}\n    backfill: 10\n"
        f"paths:\n  rules: {rules}\n  database: state/bot.db\n{more}"
    )
    return config


class Running:
    """`alertbot run` in a subprocess, its output collected line by line as it comes."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"never saw {text!r}:\n" + "".join(self.lines)
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)


def test_editing_rules_under_a_running_bot_changes_what_it_alerts(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    rules = rules_copy(tmp_path)
    feed_server.route("/feed", body=rss("Nothing of note happened."))
    every_second = "defaults:\n  interval: 1s\n"
    config = one_feed_config(tmp_path, feed_server.url("/feed"), rules, every_second)
    bot = Running(config, tmp_path)
    try:
        bot.wait_for("cycle done")
        (rules / "famine.yaml").write_text(BROKEN)
        bot.wait_for(f"{rules / 'famine.yaml'}:3: 'level' must be one of")
        bot.wait_for("previous rules keep running")
        (rules / "famine.yaml").write_text(HUNGER)
        bot.wait_for("Rules reloaded (rule files changed)")
        feed_server.route(
            "/feed", body=rss("Nothing.", "Aid groups warn of famine in the besieged city.")
        )
        bot.wait_for("Famine warnings")
        bot.proc.send_signal(signal.SIGHUP)
        bot.wait_for("Rules reloaded (SIGHUP)")
    finally:
        assert bot.stop() == 0
