"""End to end for rule editors: `alertbot run` as a process polls a local feed and delivers through
the fake Bot API; a reader taps "Not relevant", an edited rule file is saved, and the admins get
the backtest of the edit."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from fakebotapi import FakeBotAPI
from feedserver import FeedServer
from runbot import bot_running, wait_until

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "777001:EDIT-secret"
READER, ADMIN = 511, 99
STORY = "https://example.org/news/pla-drills-encircle"
TEXT = "China's PLA began live-fire drills encircling Taiwan on Monday, the ministry said."


def feed(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Desk</title><link>https://example.org/</link>{''.join(items)}</channel></rss>"
    ).encode()


@pytest.fixture
def bot_process(
    bot_api: FakeBotAPI, feed_server: FeedServer, tmp_path: Path
) -> Iterator[subprocess.Popen]:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    feed_server.route("/feed.xml", body=feed(), headers={"Content-Type": "application/rss+xml"})
    config = tmp_path / "alertbot.yaml"
    config.write_text(
        f"feeds:\n  - name: desk\n    url: {feed_server.url('/feed.xml')}\n    interval: 1s\n"
        f"paths:\n  rules: {tmp_path / 'rules'}\n  database: {tmp_path / 'alertbot.db'}\n"
    )
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "ALERTBOT_TELEGRAM_API_URL": bot_api.base_url,
        "ALERTBOT_ADMIN_IDS": str(ADMIN),
    }
    with bot_running(config, tmp_path, **env) as process:
        yield process


def test_a_tap_is_recorded_and_a_saved_edit_reports_its_backtest_to_admins(
    bot_api: FakeBotAPI, feed_server: FeedServer, bot_process: subprocess.Popen, tmp_path: Path
) -> None:
    bot_api.user_sends(READER, "/subscribe taiwan-exercises")
    wait_until(lambda: bot_api.messages(READER), "the confirmation")
    wait_until(lambda: feed_server.requests_for("/feed.xml"), "the first fetch")
    item = (
        f"<item><title>PLA drills</title><link>{STORY}</link><guid>{STORY}</guid>"
        f"<pubDate>{formatdate(usegmt=True)}</pubDate><description>{TEXT}</description></item>"
    )
    feed_server.route("/feed.xml", body=feed(item), headers={"Content-Type": "text/xml"})
    wait_until(lambda: len(bot_api.messages(READER)) == 2, "the alert")
    alert = bot_api.messages(READER)[1]
    [(label, data)] = alert.buttons
    assert label == "👎 Not relevant"
    bot_api.user_presses(READER, alert.message_id, data)
    wait_until(lambda: bot_api.callback_answers, "the thanks")
    assert bot_api.callback_answers[0]["text"].startswith("Thanks")
    with sqlite3.connect(tmp_path / "alertbot.db") as db:
        marks = db.execute("SELECT chat_id, rule_id, snippet FROM feedback").fetchall()
    assert marks == [(READER, "taiwan-exercises", TEXT)]

    rule = tmp_path / "rules" / "taiwan-exercises.yaml"
    edited = rule.read_text().replace(
        'none: ["@not-prc-drills"]', 'none: ["@not-prc-drills", encircling]'
    )
    assert edited != rule.read_text()
    rule.write_text(edited)
    wait_until(lambda: any("Backtest" in t for t in bot_api.texts(ADMIN)), "the backtest notice")
    notice = next(t for t in bot_api.texts(ADMIN) if "Backtest" in t)
    assert notice.startswith("⚠️ Backtest over the last 7 days: taiwan-exercises: +0 −1 (")
    assert "other rules not edited" in notice

    bot_process.send_signal(signal.SIGTERM)
    out, err = bot_process.communicate(timeout=20)
    assert bot_process.returncode == 0, err
    assert TOKEN not in out + err
