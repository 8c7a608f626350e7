"""End to end: `alertbot run` as a process, a local feed server and the fake Bot API."""

from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from fakebotapi import FakeBotAPI
from feedserver import FeedServer
from runbot import bot_running, wait_until

from bot.telegram.topics import topic_key

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
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "ALERTBOT_TELEGRAM_API_URL": bot_api.base_url}
    with bot_running(config, tmp_path, **env) as process:
        yield process


def test_subscribe_then_one_alert_and_clean_stop(bot_api, feed_server, bot_process, tmp_path):
    bot_api.user_sends(READER, "/start")
    bot_api.user_sends(BYSTANDER, "/start")
    wait_until(lambda: bot_api.messages(READER) and bot_api.messages(BYSTANDER), "the welcome")
    welcome = bot_api.messages(READER)[0]
    button = f"t:s:0:{topic_key('taiwan-exercises')}"
    assert ("PRC military exercises around Taiwan", button) in welcome.buttons
    bot_api.user_presses(READER, welcome.message_id, button)
    wait_until(lambda: bot_api.message(READER, welcome.message_id).edits, "the ✅ on the button")
    wait_until(lambda: feed_server.requests_for("/feed.xml"), "the first fetch")

    feed_server.route("/feed.xml", body=feed(story()), headers={"Content-Type": "text/xml"})
    wait_until(lambda: len(bot_api.messages(READER)) == 2, "the alert")
    fetches = len(feed_server.requests_for("/feed.xml"))
    wait_until(lambda: len(feed_server.requests_for("/feed.xml")) >= fetches + 2, "two more cycles")

    alert = bot_api.messages(READER)[1]
    assert len(bot_api.messages(READER)) == 2, "the story must arrive exactly once"
    assert f'href="{STORY}"' in alert.text and "<b>PLA</b>" in alert.text
    assert alert.text.startswith(f'<a href="{STORY}">')  # the headline first
    assert "\n🟠 PRC military exercises around Taiwan\n" in alert.text
    assert len(bot_api.messages(BYSTANDER)) == 1  # the welcome only

    bot_process.send_signal(signal.SIGTERM)
    out, err = bot_process.communicate(timeout=20)
    assert bot_process.returncode == 0, err
    assert TOKEN not in out + err
    assert TOKEN.encode() not in (tmp_path / "alertbot.db").read_bytes()


# -- a crash mid-delivery -------------------------------------------------------------------------
CHATS = range(601, 631)  # 30 subscribers of one topic
CRASH_STORIES = [
    ("Joint Sword drills", "China's PLA began live-fire drills encircling Taiwan on Monday."),
    ("Strait Thunder", "PLA warships rehearsed a blockade of Taiwan's ports, the ministry said."),
    ("Drills off Kinmen", "Chinese coast guard ships held live-fire drills near Taiwan's Kinmen."),
]
CRASH_LINKS = [f"https://example.org/news/crash-{n}" for n in range(len(CRASH_STORIES))]
CRASH_AT = 40  # of 90 messages: the bot dies while sending the 40th


def crash_feed() -> bytes:
    items = [
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{formatdate(usegmt=True)}</pubDate><description>{text}</description></item>"
        for (title, text), link in zip(CRASH_STORIES, CRASH_LINKS, strict=True)
    ]
    return feed(*items)


def story_of(text: str) -> str:
    """The story link an alert's HTML points to (the whole text when there is none)."""
    link = re.search(r'href="(https://example\.org/news/crash-\d+)"', text)
    return link[1] if link else text


def received(api: FakeBotAPI) -> list[tuple[int, str]]:
    """(chat, story) of every message the fake recorded for the subscribers, repeats included."""
    return [(chat, story_of(m.text)) for chat in CHATS for m in api.messages(chat)]


def outbox_states(database: Path) -> dict[str, int]:
    """Rows per state, read beside the running bot (WAL lets a reader in at any time)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        return dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())


class CrashOnSend:
    """Makes the fake Telegram kill the bot inside the documented crash window, and only there.

    Telegram serves sendMessage one request at a time. When message number `at` arrives, it
    first waits until the bot has committed every message Telegram answered so far, then accepts
    (records) that message and SIGKILLs the bot before answering: exactly one message is
    confirmed by Telegram but not committed. Requests the dead bot had queued behind it are
    dropped unanswered (Telegram never acts on them); the restarted bot is served normally.
    """

    def __init__(self, api: FakeBotAPI, database: Path, at: int) -> None:
        self.api, self.database, self.at = api, database, at
        self.forward = api.handle
        self.serial = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.crashed = threading.Event()
        self.pair: tuple[int, str] | None = None
        self.sent_before: int | None = None
        self.resumed_at = math.inf
        api.handle = self.handle  # type: ignore[method-assign]

    def resume(self) -> None:
        """From now on requests come from the restarted bot."""
        self.resumed_at = time.monotonic()

    def handle(self, method: str, params: dict) -> tuple[int, dict] | None:
        if method != "sendMessage":
            return self.forward(method, params)
        arrived = time.monotonic()
        with self.serial:
            if self.crashed.is_set() and arrived < self.resumed_at:
                return None  # sent by the dead bot: hang up without acting on it
            if self.crashed.is_set() or self.api.total_sent() + 1 < self.at:
                return self.forward(method, params)
            self.sent_before = self._committed(self.at - 1)
            self.forward(method, params)
            self.pair = (params["chat_id"], story_of(str(params["text"])))
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=30)
            self.crashed.set()
            return None

    def _committed(self, count: int, timeout: float = 20.0) -> int:
        """Wait (bounded) until `count` rows are marked sent; return how many are."""
        deadline = time.monotonic() + timeout
        while (sent := outbox_states(self.database).get("sent", 0)) < count:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return sent


@pytest.fixture
def launch(bot_api: FakeBotAPI) -> Iterator[Callable[[Path, str], subprocess.Popen]]:
    """Start `alertbot run` processes (output to files: a full pipe would block the bot)."""
    started: list[subprocess.Popen] = []
    env = os.environ | {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "ALERTBOT_TELEGRAM_API_URL": bot_api.base_url,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ALERTBOT_CONFIG", None)

    def start(config: Path, name: str) -> subprocess.Popen:
        out, err = config.with_name(f"{name}.out"), config.with_name(f"{name}.err")
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--config", str(config)],
                cwd=config.parent,
                env=env,
                stdout=stdout,
                stderr=stderr,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_killed_mid_delivery_then_restarted_delivers_the_rest(
    bot_api, feed_server, launch, tmp_path
):
    from bot.store import Store

    database = tmp_path / "alertbot.db"
    with Store(database) as store:
        for chat in CHATS:
            store.subscribe(chat, ["taiwan-exercises"])
    feed_server.route("/feed.xml", body=crash_feed(), headers={"Content-Type": "text/xml"})
    config = tmp_path / "alertbot.yaml"
    config.write_text(
        f"feeds:\n  - name: local\n    url: {feed_server.url('/feed.xml')}\n    interval: 1s\n"
        "    backfill: 10\n    full_text: never\n"
        f"paths:\n  rules: {ROOT / 'rules'}\n  database: {database}\n"
    )
    crash = CrashOnSend(bot_api, database, at=CRASH_AT)
    crash.process = launch(config, "first")
    wait_until(crash.crashed.is_set, f"the bot to send {CRASH_AT} alerts and be killed", timeout=30)
    assert crash.process.returncode == -signal.SIGKILL
    assert crash.sent_before == CRASH_AT - 1, "what Telegram answered must be committed"
    assert outbox_states(database) == {"pending": 90 - crash.sent_before, "sent": crash.sent_before}

    crash.resume()
    second = launch(config, "second")
    expected = {(chat, link) for chat in CHATS for link in CRASH_LINKS}
    wait_until(lambda: expected <= set(received(bot_api)), "every alert", timeout=30)
    wait_until(
        lambda: outbox_states(database).get("pending", 0) == 0, "an empty outbox", timeout=30
    )
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0

    counts = Counter(received(bot_api))
    repeats = {pair: n for pair, n in counts.items() if n > 1}
    assert set(counts) == expected
    assert sum(n - 1 for n in repeats.values()) <= 1, f"repeated: {repeats}"
    assert set(repeats) <= {crash.pair}, (
        f"only the message in the crash window may repeat: {repeats}"
    )
    with Store(database) as store:
        assert store.outbox_counts() == {"pending": 0, "sent": 90, "failed": 0, "cancelled": 0}
        assert {row.state for row in store.outbox_rows()} == {"sent"}
    for log in ("first.out", "first.err", "second.out", "second.err"):
        assert TOKEN not in (tmp_path / log).read_text(), log
    assert TOKEN.encode() not in database.read_bytes()
