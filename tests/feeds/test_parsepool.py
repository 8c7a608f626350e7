"""ParsePool: the same answer from worker processes as from a thread; a dead worker is survived."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bot.errors import FeedError
from bot.feeds.parse import parse_feed
from bot.feeds.parsepool import ParsePool, cpu_count, parse_job
from bot.identity import text_fingerprint

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
HEADERS = {"content-type": "application/rss+xml"}
RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<item><title>One</title><link>https://x.org/1</link><description>&lt;p&gt;Kursk "
    b"assault.&lt;/p&gt;</description></item>"
    b"<item><title>Two</title><guid>g2</guid><description>Plain text.</description></item>"
    b"</channel></rss>"
)


def test_parse_job_is_parse_feed_plus_fingerprints() -> None:
    parsed, prints = parse_job(RSS, HEADERS, "f", "https://x.org/feed")
    assert parsed == parse_feed(RSS, HEADERS, "f", "https://x.org/feed")
    assert prints == [text_fingerprint(i.title, i.text) for i in parsed.items]


async def test_worker_processes_give_the_threads_answer() -> None:
    bodies = [RSS, *(p.read_bytes() for p in sorted(FEEDS.glob("*.xml"))[:5])]
    with ParsePool(2) as pool, ParsePool(0) as thread:
        assert pool.processes and not thread.processes
        for body in bodies:
            got = await pool.parse(body, HEADERS, "f", "https://x.org/feed")
            assert got == await thread.parse(body, HEADERS, "f", "https://x.org/feed")
        assert len(pool.pids()) >= 1


async def test_a_killed_worker_fails_one_feed_then_the_pool_starts_afresh() -> None:
    with ParsePool(2) as pool:
        await pool.parse(RSS, HEADERS, "f", "https://x.org/feed")
        for pid in pool.pids():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(FeedError, match="parser process died"):
            for _ in range(10):  # until the executor has seen its workers die
                await pool.parse(RSS, HEADERS, "f", "https://x.org/feed")
        parsed, _ = await pool.parse(RSS, HEADERS, "f", "https://x.org/feed")
        assert [i.title for i in parsed.items] == ["One", "Two"]


def test_one_cpu_or_zero_workers_means_a_thread() -> None:
    assert not ParsePool(1).processes
    assert not ParsePool(0).processes
    assert cpu_count() >= 1
