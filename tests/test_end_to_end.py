"""End to end: `alertbot run` as a process, a local feed server and the fake Bot API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from fakebotapi import FakeBotAPI
from feedserver import FeedServer

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "777000:END-to-END-secret"
READER, BYSTANDER = 501, 502
STORY = "https://example.org/news/pla-joint-sword-drills"


def feed(*items: str) -> bytes:
    body = "".join(items)
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Local desk</title><link>https://example.org/</link>{body}</channel></rss>"
    ).encode()


def story() -> str:
    text = "China's PLA began live-fire drills encircling Taiwan on Monday, the ministry said."
    return (
        f"<item><title>PLA drills &amp; Taiwan</title><link>{STORY}</link><guid>{STORY}</guid>"
        f"<pubDate>{formatdate(usegmt=True)}</pubDate><description>{text}</description></item>"
    )


def wait(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def bot_process(
    bot_api: FakeBotAPI, feed_server: FeedServer, tmp_path: Path
) -> Iterator[subprocess.Popen]:
    feed_server.route("/feed.xml", body=feed(), headers={"Content-Type": "application/rss+xml"})
    config = tmp_path / "alertbot.yaml"
    config.write_text(
        f"feeds:\n  - name: local\n    url: {feed_server.url('/feed.xml')}\n    interval: 1s\n"
        f"paths:\n  rules: {ROOT / 'rules'}\n  database: {tmp_path / 'alertbot.db'}\n"
    )
    env = os.environ | {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "ALERTBOT_TELEGRAM_API_URL": bot_api.base_url,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ALERTBOT_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_subscribe_then_one_alert_and_clean_stop(bot_api, feed_server, bot_process, tmp_path):
    bot_api.user_sends(READER, "/start")
    bot_api.user_sends(BYSTANDER, "/start")
    wait(lambda: bot_api.messages(READER) and bot_api.messages(BYSTANDER), "the welcome")
    welcome = bot_api.messages(READER)[0]
    assert ("PRC military exercises around Taiwan", "t:taiwan-exercises") in welcome.buttons
    bot_api.user_presses(READER, welcome.message_id, "t:taiwan-exercises")
    wait(lambda: bot_api.message(READER, welcome.message_id).edits, "the ✅ on the button")
    wait(lambda: feed_server.requests_for("/feed.xml"), "the first fetch")

    feed_server.route("/feed.xml", body=feed(story()), headers={"Content-Type": "text/xml"})
    wait(lambda: len(bot_api.messages(READER)) == 2, "the alert")
    fetches = len(feed_server.requests_for("/feed.xml"))
    wait(lambda: len(feed_server.requests_for("/feed.xml")) >= fetches + 2, "two more cycles")

    alert = bot_api.messages(READER)[1]
    assert len(bot_api.messages(READER)) == 2, "the story must arrive exactly once"
    assert f'href="{STORY}"' in alert.text and "<b>PLA</b>" in alert.text
    assert alert.text.startswith("🟠 <b>PRC military exercises around Taiwan</b>")
    assert len(bot_api.messages(BYSTANDER)) == 1  # the welcome only

    bot_process.send_signal(signal.SIGTERM)
    out, err = bot_process.communicate(timeout=20)
    assert bot_process.returncode == 0, err
    assert TOKEN not in out + err
    assert TOKEN.encode() not in (tmp_path / "alertbot.db").read_bytes()
