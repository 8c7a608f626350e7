"""Backtests on a database filled by real poll cycles: `alertbot rules backtest` and the reload
notice, against a local feed server, the database left as the running bot leaves it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakebotapi import FakeBotAPI
from feedserver import FeedServer, rss
from pollenv import Clock, Env, polling
from telegram import Bot

from bot.poll.replay import reload_reporter, reload_summary, run_backtest
from bot.rules.files import load_rules
from bot.rules.reload import Reloader
from bot.store import Store
from bot.telegram.admin import admin_notifier

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
ROOT = Path(__file__).resolve().parents[2]
ADMIN = 99

KURSK = """\
    id: kursk
    title: Fighting in Kursk Oblast
    level: high
    terms:
      kursk: [Kursk]
      war: [troops, forces, fighting]
    match:
      all: ["@kursk", "@war"]
      none: [submarine]
    """
# the edit: Sudzha counts as Kursk; a drill is not fighting
KURSK_EDITED = KURSK.replace("kursk: [Kursk]", "kursk: [Kursk, Sudzha]").replace(
    "none: [submarine]", "none: [submarine, exercise*]"
)
PORT = """\
    id: port-strikes
    title: Strikes on ports
    level: high
    terms:
      attack: [drone*, missile*]
    match:
      all: [port, "@attack"]
    """
PORT_REWORDED = PORT.replace("[drone*, missile*]", "[drone*, missile*, torpedo*]")

STORIES = {  # uid: (title, text)
    "advance": ("Advance near Kursk", "Ukrainian troops advanced in the Kursk region on Monday."),
    "sudzha": ("Sudzha shelled", "Russian forces shelled Sudzha overnight, officials said."),
    "drill": ("Drill near Kursk", "Troops held an exercise near Kursk, the ministry said."),
    "sub": ("Kursk memorial", "Forces veterans remembered the Kursk submarine."),
    "odesa": ("Odesa port hit", "Russian drones hit the port of Odesa overnight."),
    "football": ("Derby", "Shakhtar beat Dynamo 2-1 in the league derby on Sunday."),
}


def write_rules(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def feed_of(feed: str, uids: list[str]) -> bytes:
    """The feed `feed` carrying these STORIES (guids are the feed's own)."""
    return rss(*(
        {"title": STORIES[uid][0], "link": f"https://example.org/{uid}", "guid": f"{feed}-{uid}",
         "description": STORIES[uid][1]}
        for uid in uids
    ))  # fmt: skip


@pytest.fixture
def live_clock() -> Clock:
    return Clock(time.time() - 3600)  # an hour ago: inside the commands' default periods


@pytest.fixture
async def filled(
    tmp_path: Path, feed_server: FeedServer, live_clock: Clock
) -> AsyncIterator[tuple[Path, Env]]:
    """Two feeds polled by real cycles with the original rules; the same story in both."""
    rules = write_rules(tmp_path / "rules", kursk=KURSK, port=PORT)
    feed_server.route("/a.xml", body=feed_of("a", ["advance", "drill", "sub", "odesa"]))
    feed_server.route("/b.xml", body=feed_of("b", ["sudzha", "football", "drill"]))
    with Store(tmp_path / "alertbot.db", clock=live_clock) as store:
        async with polling(store, live_clock, feed_server, load_rules(rules)) as env:
            await env.cycle(env.feed("wire", "/a.xml"), env.feed("local", "/b.xml"))
            yield tmp_path / "alertbot.db", env


def alertbot(*args: str | Path, database: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALERTBOT_DATABASE": str(database)}
    env.pop("ALERTBOT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_backtest_of_an_edited_rule_lists_exactly_the_added_and_removed_stories(
    filled: tuple[Path, Env], tmp_path: Path
) -> None:
    database, _ = filled
    edited = write_rules(tmp_path / "edited", kursk=KURSK_EDITED, port=PORT)
    result = alertbot("rules", "backtest", edited, "--json", database=database)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_rule = {r["rule"]: r for r in report["rules"]}
    kursk = by_rule["kursk"]
    assert (kursk["before"], kursk["after"]) == (2, 2)  # advance + drill -> advance + sudzha
    assert [s["title"] for s in kursk["added"]] == ["Sudzha shelled"]
    assert [s["title"] for s in kursk["removed"]] == ["Drill near Kursk"]
    [added] = kursk["added"]
    assert added["feed"] == "local" and added["link"] == "https://example.org/sudzha"
    assert "**Sudzha**" in added["snippet"] and "**forces**" in added["snippet"]
    assert "**exercise**" not in kursk["removed"][0]["snippet"]  # what fired then: Kursk, Troops
    assert "**Kursk**" in kursk["removed"][0]["snippet"]
    assert by_rule["port-strikes"] == {
        "rule": "port-strikes", "before": 1, "after": 1, "added": [], "removed": [],
    }  # fmt: skip
    assert report["items"] == 7  # every stored version; the drill story in two feeds counts once

    text = alertbot("rules", "backtest", edited, "--since", "2d", database=database)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "kursk: 2 → 2 (+1 −1)" in lines and "port-strikes: 1 → 1 (unchanged)" in lines
    assert any(line.startswith("  + ") and "Sudzha shelled  [local]" in line for line in lines)
    assert any(line.startswith("  − ") and "Drill near Kursk" in line for line in lines)
    assert lines[-1] == "2 rules, 1 changed: +1 −1 stories in all"


async def test_backtest_reads_the_live_database_without_the_run_lock_or_blocking_it(
    filled: tuple[Path, Env], tmp_path: Path
) -> None:
    database, env = filled
    env.store.acquire_run_lock()  # the bot is running
    writer = sqlite3.connect(database)
    writer.execute("BEGIN IMMEDIATE")  # and is in the middle of writing
    writer.execute("UPDATE feeds SET error_count = error_count")
    try:
        edited = write_rules(tmp_path / "edited", kursk=KURSK_EDITED, port=PORT)
        result = alertbot("rules", "backtest", edited, "--json", database=database)
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rules"][0]["after"] == 2
    before = database.stat().st_mtime_ns
    run_backtest(database, load_rules(edited), 0)
    assert database.stat().st_mtime_ns == before  # read-only: nothing written


async def test_invalid_edited_rules_are_reported_as_file_line_and_nothing_runs(
    filled: tuple[Path, Env], tmp_path: Path
) -> None:
    database, _ = filled
    broken = write_rules(tmp_path / "broken", kursk=KURSK.replace("level: high", "level: huge"))
    result = alertbot("rules", "backtest", broken, database=database)
    assert result.returncode == 1 and result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{broken / 'kursk.yaml'}:3: ") and "level" in first
    missing = alertbot("rules", "backtest", broken, database=tmp_path / "none.db")
    assert missing.returncode == 1  # the rules are checked first, then the database
    valid = write_rules(tmp_path / "valid", kursk=KURSK)
    nodb = alertbot("rules", "backtest", valid, database=tmp_path / "none.db")
    assert nodb.returncode == 1 and "no database at" in nodb.stderr
    assert not (tmp_path / "none.db").exists()


async def test_items_outside_the_period_or_pruned_are_not_backtested(
    filled: tuple[Path, Env], tmp_path: Path, live_clock: Clock
) -> None:
    database, env = filled
    edited = write_rules(tmp_path / "edited", kursk=KURSK_EDITED, port=PORT)
    assert run_backtest(database, load_rules(edited), live_clock.now + 1).items == 0
    live_clock.now += 31 * 86400
    env.store.prune(30 * 86400)
    assert run_backtest(database, load_rules(edited), 0).items == 0


async def test_a_story_edited_since_is_backtested_as_it_reads_now(
    filled: tuple[Path, Env], tmp_path: Path, feed_server: FeedServer
) -> None:
    database, env = filled
    STORIES["football"] = ("Derby", "Troops near Sudzha watched the derby on Sunday.")
    try:
        feed_server.route("/b.xml", body=feed_of("b", ["sudzha", "football", "drill"]))
        await env.cycle(env.feed("local", "/b.xml"), advance=60)
    finally:
        STORIES["football"] = ("Derby", "Shakhtar beat Dynamo 2-1 in the league derby on Sunday.")
    edited = write_rules(tmp_path / "edited", kursk=KURSK_EDITED, port=PORT)
    result = run_backtest(database, load_rules(edited), 0)
    [kursk] = result.diffs(["kursk"])
    assert [s.title for s in kursk.added] == ["Derby", "Sudzha shelled"]  # newest first


async def test_a_reload_sends_admins_the_backtest_of_the_edited_rules(
    filled: tuple[Path, Env], bot_api: FakeBotAPI, live_clock: Clock
) -> None:
    database, _ = filled
    rules = database.parent / "rules"
    async with Bot("1:T", base_url=bot_api.base_url) as bot:
        reloader = Reloader(rules, load_rules(rules), notify=admin_notifier(bot, {ADMIN}))
        reloader.report = reload_reporter(database, live_clock)
        write_rules(rules, kursk=KURSK_EDITED, port=PORT_REWORDED)
        outcome = await reloader.reload("rule files changed")
        assert outcome.ok
        await reloader.settle()
    texts = bot_api.texts(ADMIN)
    assert texts[0].startswith("⚠️ Rules reloaded (rule files changed): 2 rules")
    assert texts[1].startswith(
        "⚠️ Backtest over the last 7 days: kursk: +1 −1; port-strikes: unchanged"
    )


def test_the_reload_summary_skips_rules_whose_matching_did_not_change(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", kursk=KURSK, port=PORT)
    with Store(tmp_path / "alertbot.db"):
        pass
    old = load_rules(rules)
    examples = KURSK.rstrip(" ") + '    tests:\n      match: ["Troops fought in Kursk."]\n'
    new = load_rules(write_rules(tmp_path / "new", kursk="\n\n" + examples, port=PORT))
    assert reload_summary(tmp_path / "alertbot.db", old, new, time.time()) is None
    gone = load_rules(write_rules(tmp_path / "gone", kursk=KURSK_EDITED))
    summary = reload_summary(tmp_path / "alertbot.db", old, gone, time.time())
    assert summary == "Backtest over the last 7 days: kursk: unchanged; port-strikes: unchanged"


async def test_worker_processes_find_what_one_process_finds(
    filled: tuple[Path, Env], tmp_path: Path
) -> None:
    database, _ = filled
    edited = load_rules(write_rules(tmp_path / "edited", kursk=KURSK_EDITED, port=PORT))
    one = run_backtest(database, edited, 0)
    many = run_backtest(database, edited, 0, jobs=3, least_per_job=2)
    assert many.items == one.items == 7
    assert many.diffs() == one.diffs() and many.absent_rules() == one.absent_rules()


async def test_a_period_longer_than_texts_are_kept_is_said_and_a_bad_one_refused(
    filled: tuple[Path, Env], tmp_path: Path
) -> None:
    database, _ = filled
    rules = database.parent / "rules"
    long = alertbot("rules", "backtest", rules, "--since", "40d", database=database)
    assert long.returncode == 0 and "texts are kept for 30d only" in long.stderr
    assert "kursk: 2 → 2 (unchanged)" in long.stdout.splitlines()
    bad = alertbot("rules", "backtest", rules, "--since", "soon", database=database)
    assert bad.returncode == 2 and "--since: 'soon' is not a duration" in bad.stderr
