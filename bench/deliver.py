"""Benchmark: outbox delivery through the fake Bot API, which enforces a global rate limit.

    python bench/deliver.py [--subscribers 2000] [--fanout] [--limit 30] [--baseline 150]

Fills a fresh database with one outbox row per subscriber (by default N reports, one for each
subscriber's own topic; with --fanout, ONE report that every subscriber follows), starts the
fake Bot API server (tests/fakebotapi.py) answering 429 above --limit messages per second,
and lets the Deliverer work the outbox over real HTTP until nothing is pending. Measured in
the same run, the baseline: the same kind of messages sent one after another, waiting as
each 429 says. The last line is the summary the README quotes:

    messages=N seconds=S rate_per_s=R limit_per_s=L efficiency=R/L lost=0 duplicates=0
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakebotapi import FakeBotAPI  # noqa: E402
from telegram import Bot  # noqa: E402
from telegram.error import RetryAfter  # noqa: E402
from telegram.ext import ExtBot  # noqa: E402
from telegram.request import HTTPXRequest  # noqa: E402

from bot.models import Item, Match, Snippet  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.telegram.deliver import Deliverer, Policy, rate_limiter  # noqa: E402

TOKEN = "1:bench"
FIRST_CHAT = 10_000_000


def match(rule_id: str) -> Match:
    snippet = Snippet("The PLA began live-fire drills encircling Taiwan on Monday.", ((4, 7),))
    return Match(rule_id, "PRC military exercises around Taiwan", "high", (), ("PLA",), (snippet,))


def report(n: int) -> Item:
    link = f"https://example.org/report/{n}"
    title = f"Report {n}: PLA drills around Taiwan"
    return Item("bench", f"uid-{n}", link, title, link, None, "text")


def fill(store: Store, subscribers: int, fanout: bool) -> None:
    """One pending outbox row per subscriber."""
    chats = range(FIRST_CHAT, FIRST_CHAT + subscribers)
    with store.transaction() as db:
        db.conn.executemany(
            "INSERT INTO subscribers (chat_id, created) VALUES (?, 0)", [(c,) for c in chats]
        )
        db.conn.executemany(
            "INSERT INTO subscriptions (chat_id, rule_id, created) VALUES (?, ?, 0)",
            [(c, "bench" if fanout else f"bench-{c}") for c in chats],
        )
    if fanout:
        store.record_item(report(0), [match("bench")], [match("bench")])
        return
    for chat in chats:
        found = [match(f"bench-{chat}")]
        store.record_item(report(chat), found, found)


def tally(api: FakeBotAPI, chats: range) -> tuple[int, int, int]:
    """(messages, lost, duplicates) over the benchmark's chats."""
    counts = [len(api.messages(c)) for c in chats]
    return sum(counts), sum(1 for n in counts if n == 0), sum(max(n - 1, 0) for n in counts)


async def deliver(api: FakeBotAPI, store: Store, limit: float) -> float:
    """Work the outbox until nothing is pending; returns the seconds it took."""
    request = HTTPXRequest(connection_pool_size=64, read_timeout=10)
    bot = ExtBot(TOKEN, base_url=api.base_url, request=request, rate_limiter=rate_limiter(limit))
    async with bot:
        deliverer = Deliverer(bot, store, policy=Policy(concurrency=48, batch=2000))
        started = time.perf_counter()
        while store.outbox_counts()["pending"]:
            await deliverer.deliver_due()
        return time.perf_counter() - started


async def baseline(api: FakeBotAPI, count: int) -> float:
    """Naive: one message after another, sleeping as each 429 says; returns messages/s."""
    async with Bot(TOKEN, base_url=api.base_url) as bot:
        started = time.perf_counter()
        for n in range(count):
            while True:
                try:
                    await bot.send_message(1 + n, f"Report {n}", parse_mode="HTML")
                    break
                except RetryAfter as exc:
                    await asyncio.sleep(float(exc.retry_after))
        return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--fanout", action="store_true", help="one report to every subscriber")
    parser.add_argument("--limit", type=float, default=30.0, help="the server's messages/s")
    parser.add_argument("--baseline", type=int, default=150, help="messages for the baseline")
    args = parser.parse_args()
    api = FakeBotAPI().start()
    api.enforce_rate(args.limit)
    try:
        if args.baseline:
            rate = asyncio.run(baseline(api, args.baseline))
            print(f"baseline (sequential, waits on 429): rate_per_s={rate:.1f}")
        api.enforce_rate(args.limit)  # a full bucket again
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as store:
            fill(store, args.subscribers, args.fanout)
            seconds = asyncio.run(deliver(api, store, args.limit))
            counts = store.outbox_counts()
        chats = range(FIRST_CHAT, FIRST_CHAT + args.subscribers)
        messages, lost, duplicates = tally(api, chats)
    finally:
        api.stop()
    rate = messages / seconds
    kind = "one report fanned out" if args.fanout else "one report per subscriber"
    print(f"{kind}: outbox {counts}, 429 answers {api.rejected.get('rate', 0)}")
    print(
        f"messages={messages} seconds={seconds:.1f} rate_per_s={rate:.1f} "
        f"limit_per_s={args.limit:g} efficiency={rate / args.limit:.2f} "
        f"lost={lost} duplicates={duplicates}"
    )
    return 0 if lost == 0 and duplicates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
