"""Rules edited while the bot runs: validated, swapped whole, or refused with FILE:LINE."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

from feedserver import FeedServer
from runbot import Running, one_feed_config, rss

from bot.rules.files import load_rules
from bot.rules.matcher import Rulebook
from bot.rules.reload import Reloader

ROOT = Path(__file__).resolve().parents[2]
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
