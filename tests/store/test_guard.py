"""The database file under attack, from outside: a hard link, deletion, corrupt pages, a full
disk. Real processes, real files; the fake Bot API stands in for Telegram."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pytest
from fakebotapi import FakeBotAPI, fake_token
from feedserver import FeedServer
from runbot import KURSK, alertbot, clean_env, rss, start_running, wait_for, write_config
from storekit import fill_disk, free_space

from bot import app
from bot.config import load_settings
from bot.errors import StoreUnwritable
from bot.models import Item, Match
from bot.store import Store

TOKEN = fake_token(424242, "g")
ADMIN, READER = 77, 501
KURSK_MATCH = Match("kursk", "Kursk", "critical", (), ("Kursk",), ())
KURSK_TOO = "Ukrainian forces advanced near Sudzha in the Kursk region on Tuesday."


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def telegram_env(api: FakeBotAPI) -> dict[str, str]:
    return clean_env(
        TELEGRAM_BOT_TOKEN=TOKEN,
        ALERTBOT_TELEGRAM_API_URL=api.base_url,
        ALERTBOT_ADMIN_IDS=str(ADMIN),
    )


def subscribe_reader(database: Path) -> None:
    database.parent.mkdir(parents=True, exist_ok=True)
    with Store(database) as store:
        store.add_subscriber(READER)
        store.subscribe(READER, ["kursk"])


def health(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return alertbot("health", "--config", str(config), cwd=cwd)


def test_a_hard_link_to_a_running_bots_database_is_refused(
    tmp_path: Path, feed_server: FeedServer, procs: list[subprocess.Popen[str]]
) -> None:
    feed_server.route("/f", body=rss(KURSK))
    config = write_config(tmp_path, {"f": feed_server.url("/f")})
    first, database = start_running(config, tmp_path, procs)
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.link(database, other / "test.db")  # the same file under another name
    (other / "state").symlink_to(other)  # so "state/test.db" from `other` is the link
    second_config = write_config(other, {"f": feed_server.url("/f")})
    second = alertbot("run", "--once", "--config", str(second_config), cwd=other)
    assert second.returncode == 1, second.stderr
    assert "already running" in second.stderr and "hard link" in second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
    assert first.poll() is None


def test_a_database_deleted_under_a_running_bot_stops_sending_and_tells_admins(
    tmp_path: Path,
    feed_server: FeedServer,
    bot_api: FakeBotAPI,
    procs: list[subprocess.Popen[str]],
) -> None:
    feed_server.route("/f", body=rss(KURSK))
    config = write_config(tmp_path, {"f": feed_server.url("/f")}, interval="1s")
    database = tmp_path / "state" / "test.db"
    subscribe_reader(database)
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        cwd=tmp_path, env=telegram_env(bot_api), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    procs.append(bot)
    wait_for(lambda: len(bot_api.messages(READER)) == 1, bot)
    database.unlink()
    wait_for(lambda: any("deleted" in t for t in bot_api.texts(ADMIN)), bot)
    feed_server.route("/f", body=rss(KURSK, KURSK_TOO))
    result = health(config, tmp_path)
    assert result.returncode == 1 and "was deleted" in result.stderr
    time.sleep(3)  # three poll intervals with a new story: nothing may go out
    assert len(bot_api.messages(READER)) == 1 and bot.poll() is None
    assert not database.exists()  # and nothing quietly made a fresh, empty one
    notices = [t for t in bot_api.texts(ADMIN) if "deleted" in t]
    assert len(notices) == 1 and "restore" in notices[0]
    bot.send_signal(signal.SIGTERM)
    assert bot.wait(timeout=20) == 0
    again = alertbot("run", "--once", "--config", str(config), cwd=tmp_path)
    assert again.returncode == 1 and "restore it from a backup" in again.stderr
    assert not database.exists()  # a restart does not start afresh with nobody subscribed


def test_corrupt_pages_end_the_run_with_one_line_saying_how_to_recover(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/f", body=rss(KURSK))
    config = write_config(tmp_path, {"f": feed_server.url("/f")})
    database = tmp_path / "state" / "test.db"
    subscribe_reader(database)
    with Store(database) as store:
        for n in range(200):
            store.db.execute("INSERT INTO runs (stats) VALUES (?)", ("x" * 900 + str(n),))
        store.db.conn.commit()
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = database.stat().st_size
    with open(database, "r+b") as handle:  # garbage over the pages in the middle
        handle.seek(size // 2)
        handle.write(os.urandom(16384))
    result = alertbot("run", "--once", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert str(database) in line and "corrupt" in line
    assert ".recover" in line and "backup" in line


# -- a full disk ------------------------------------------------------------------------------


class Captured(Store):
    """The bot's own Store, kept where the test can reach its connection (fault injection)."""

    made: ClassVar[list[Store]] = []

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        Captured.made.append(self)


async def until(condition, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_full_disk_stops_sending_keeps_running_and_resumes_without_repeats(
    tmp_path: Path, feed_server: FeedServer, bot_api: FakeBotAPI, monkeypatch
) -> None:
    feed_server.route("/f", body=rss(KURSK))
    config = write_config(tmp_path, {"f": feed_server.url("/f")}, interval="1s")
    database = tmp_path / "state" / "test.db"
    subscribe_reader(database)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(config, env=telegram_env(bot_api))
    monkeypatch.setattr(app, "Store", Captured)
    running = asyncio.create_task(app.run(settings, once=False, dry_run=False))
    try:
        await until(lambda: len(bot_api.messages(READER)) == 1, "the first alert")
        fill_disk(Captured.made[-1])
        long_story = KURSK_TOO + " The report describes the situation in detail." * 200
        feed_server.route("/f", body=rss(KURSK, long_story))  # needs pages the disk lacks
        await until(lambda: any("not writable" in t for t in bot_api.texts(ADMIN)), "a notice")
        result = await asyncio.to_thread(health, config, tmp_path)
        assert result.returncode == 1 and "database not writable: disk full" in result.stderr
        await asyncio.sleep(2.5)  # cycles come and go; the bot stays up and sends nothing
        assert not running.done() and len(bot_api.messages(READER)) == 1
        free_space(Captured.made[-1])
        await until(lambda: len(bot_api.messages(READER)) == 2, "the second alert")
        await until(lambda: any("writable again" in t for t in bot_api.texts(ADMIN)), "resumed")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    texts = bot_api.texts(READER)
    assert "Report 1" in texts[0] and "Report 2" in texts[1]
    notices = [t for t in bot_api.texts(ADMIN) if "database not writable: disk full" in t]
    assert len(notices) == 1
    result = await asyncio.to_thread(health, config, tmp_path)
    assert "not writable" not in result.stderr


@contextmanager
def bot_reporting(tmp_path: Path, status: str) -> Iterator[Path]:
    """A config whose database a running bot holds, reporting `status`; yields the config."""
    config = write_config(tmp_path, {"f": "http://127.0.0.1:9/f"})
    with Store(tmp_path / "state" / "test.db") as store:
        store.acquire_run_lock()
        store.run_lock.write_status(status)
        yield config


def test_health_fails_while_the_bot_reports_an_unwritable_database(tmp_path: Path) -> None:
    with bot_reporting(tmp_path, "database not writable: disk full") as config:
        result = health(config, tmp_path)
    assert result.returncode == 1
    assert "database not writable: disk full" in result.stderr and str(os.getpid()) in result.stderr
    assert health(config, tmp_path).stderr.count("not writable") == 0  # stopped: ok again


def test_status_shows_what_the_running_bot_reports(tmp_path: Path) -> None:
    with bot_reporting(tmp_path, "database not writable: disk full") as config:
        result = alertbot("status", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].endswith("reports: database not writable: disk full")


def test_error_texts_are_stored_and_shown_redacted(tmp_path: Path) -> None:
    token = fake_token(987654321, "r")  # not the configured one: caught by its shape
    database = tmp_path / "state" / "test.db"
    config = write_config(tmp_path, {"f": "http://127.0.0.1:9/f"})
    with Store(database) as store:
        store.sync_feeds(load_settings(config, env={}).feeds)
        store.record_feed_error("f", f"proxy said: GET /bot{token}/getMe", next_fetch=0)
        subscribe_reader(database)
        link = "https://example.org/s"
        item = Item("f", "u", link, "T", link, None, "x")
        store.record_item(item, [KURSK_MATCH], [KURSK_MATCH])
        store.db.execute(  # a row written before redaction existed
            "UPDATE outbox SET state = 'failed', last_error = ?",
            (f"POST /bot{token}/sendMessage",),
        )
        store.db.conn.commit()
        assert token not in (store.feed_state("f").last_error or "")
    result = alertbot("status", "--config", str(config), cwd=tmp_path)
    assert "/bot[REDACTED]/sendMessage" in result.stdout and token not in result.stdout
    assert "/bot[REDACTED]/getMe" in result.stdout


def test_writes_to_a_replaced_database_file_are_refused(tmp_path: Path) -> None:
    database = tmp_path / "state" / "test.db"
    config = write_config(tmp_path, {"f": "http://127.0.0.1:9/f"})
    with Store(database) as store:
        store.acquire_run_lock()
        Store(tmp_path / "restored.db").close()
        os.replace(tmp_path / "restored.db", database)  # e.g. a backup copied over it
        with pytest.raises(StoreUnwritable, match="was replaced while alertbot was running"):
            store.add_subscriber(READER)
        result = health(config, tmp_path)
        assert result.returncode == 1 and "was replaced" in result.stderr
    with Store(database) as fresh:  # the file now at the path is used after a restart
        assert fresh.subscribers() == []
