"""Prometheus metrics: a running bot serves counters that follow what it did."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from feedserver import FeedServer
from runbot import KURSK, Running, one_feed_config, rss

from bot.metrics import Metrics
from bot.poll.cycle import CycleStats
from bot.telegram.deliver import Stats

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(text: str, name: str) -> float:
    """The value of one sample line (`name` includes its labels) in Prometheus text."""
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])


def test_counters_follow_cycles_and_delivery_passes() -> None:
    metrics = Metrics()
    metrics.observe_cycle(
        CycleStats(feeds=3, fetched=2, failed=1, matched=1, fetch_seconds=[0.2]), 1.5
    )
    metrics.observe_delivery(Stats(sent=4, failed=1))
    text = metrics.registry_text()
    assert sample(text, 'alertbot_fetches_total{outcome="fetched"}') == 2
    assert sample(text, 'alertbot_fetches_total{outcome="failed"}') == 1
    assert sample(text, "alertbot_items_matched_total") == 1
    assert sample(text, 'alertbot_messages_total{outcome="sent"}') == 4
    assert sample(text, "alertbot_fetch_seconds_count") == 1


def test_a_running_bot_serves_its_metrics(feed_server: FeedServer, tmp_path: Path) -> None:
    port = free_port()
    feed_server.route("/feed", body=rss(KURSK))
    config = one_feed_config(
        tmp_path, feed_server.url("/feed"), ROOT / "rules", f"metrics:\n  port: {port}\n"
    )
    bot = Running(config, tmp_path)
    try:
        bot.wait_for("cycle done")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        assert bot.stop() == 0
    assert sample(text, 'alertbot_fetches_total{outcome="fetched"}') == 1
    assert sample(text, "alertbot_alerts_queued_total") == 1
    assert sample(text, "alertbot_cycle_seconds_count") == 1
    assert 'alertbot_outbox_rows{state="pending"}' in text
