"""Benchmark one poll cycle against a local HTTP server, with a naive baseline in the same run.

    .venv/bin/python bench/poll.py [--feeds 1000] [--items 50] [--hosts 50] [--latency 0]
                                   [--workers N]

Serves FEEDS feeds of ITEMS items of about 3 KB from HOSTS sites (one server per loopback
address, 127.0.0.1 to 127.0.0.HOSTS, feeds dealt out in turn; one item in ten matches a rule;
every body generated before serving, as a real server sends stored files), each answer after
LATENCY seconds of simulated server time, then measures with alertbot's default limits (20
connections, 4 per host):
  cycle_s            a full cycle on a fresh database: every feed and item is new
  unchanged_cycle_s  the next cycle: every feed answers 304 to our conditional request
  baseline_s         `feedparser.parse(url)` feed after feed (no matching, no storing)
Last line: feeds=N cycle_s=X unchanged_cycle_s=Y baseline_s=Z speedup=Z/X peak_rss_mb=M

The default latency is 0, the issue's setup (a local server): it measures CPU, and the
speedup is then what two cores buy over a baseline that does less work per feed (no text
extraction, no fingerprints, no matching, no storing). A remote server is never instant;
`--latency 0.05` shows how concurrency hides that wait (for the baseline, 1,000 × 50 ms).
peak_rss_mb sums the peaks of this process and of its parser processes (--workers, default
one per CPU; 0 parses in a thread).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing import Event, Process, Queue
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import feedparser  # noqa: E402
from feedserver import Request, Response, running  # noqa: E402

from bot.feeds.fetch import Fetcher  # noqa: E402
from bot.feeds.parsepool import ParsePool, cpu_count  # noqa: E402
from bot.models import Feed  # noqa: E402
from bot.poll.cycle import Poller  # noqa: E402
from bot.rules.files import load_rules  # noqa: E402
from bot.store import Store  # noqa: E402

MATCHING = [
    "Russian forces continued assaults against Ukrainian positions in Kursk Oblast.",
    "Russian drones struck port infrastructure in Odesa overnight.",
    "China's PLA began live-fire drills encircling Taiwan on Monday.",
]
WORDS = (
    "officials reported power outages after the storm ministry published figures on exports "
    "for the quarter analysts expect parliament to vote budget next week city council approved "
    "plan repair schools before winter regional governor said residents volunteers delivered "
    "aid hospital opened new wing prices rose markets closed higher talks resumed"
).split()


def feed_body(feed: int, items: int) -> bytes:
    """About 3 KB per item; one item in ten carries a sentence that some rule matches."""
    rng = random.Random(feed)
    parts = []
    for n in range(items):
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(38)
        ]
        if rng.random() < 0.1:
            sentences[rng.randrange(len(sentences))] = rng.choice(MATCHING)
        text = " ".join(sentences)
        parts.append(
            f"<item><title>Feed {feed} report {n}</title>"
            f"<link>https://example.org/{feed}/{n}</link><guid>urn:{feed}:{n}</guid>"
            f"<pubDate>Mon, 14 Oct 2024 {n % 24:02d}:{n % 60:02d}:00 GMT</pubDate>"
            f"<description>{escape(text)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>https://example.org/{feed}</link>"
        + "".join(parts)
        + "</channel></rss>"
    ).encode()


def handler(body: bytes, etag: str, latency: float):  # type: ignore[no-untyped-def]
    def handle(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status=304, headers={"ETag": etag}, delay=latency)
        headers = {"Content-Type": "application/rss+xml", "ETag": etag}
        return Response(headers=headers, body=body, delay=latency)

    return handle


async def cycles(feeds: list[Feed], database: Path, workers: int | None) -> Cycles:
    rulebook = load_rules(ROOT / "rules")
    with Store(database) as store, ParsePool(workers) as parser:
        async with Fetcher() as fetcher:  # the default limits, as `alertbot run` has them
            poller = Poller(store, fetcher, rulebook, parser=parser)
            started = time.perf_counter()
            stats = await poller.run_cycle(feeds, force=True)
            full = time.perf_counter() - started
            started = time.perf_counter()
            again = await poller.run_cycle(feeds, force=True)
            unchanged = time.perf_counter() - started
        worker_mb = sum(peak_rss_mb(pid) for pid in parser.pids())
        processes = len(parser.pids()) if parser.processes else 0
    assert stats.failed == 0 and again.unchanged == len(feeds), (stats.errors, again.summary())
    return Cycles(full, unchanged, len(stats.alerts), processes, worker_mb)


@dataclass
class Cycles:
    full: float
    unchanged: float
    alerts: int
    workers: int  # parser processes (0: parsing in a thread of this process)
    worker_mb: float  # their peak memory, summed


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory of this process, or of `pid` (Linux /proc)."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines()
                 if line.startswith("VmHWM:")), 0.0)  # fmt: skip


def baseline(urls: list[str]) -> float:
    started = time.perf_counter()
    for url in urls:
        parsed = feedparser.parse(url)
        assert parsed.entries, url
    return time.perf_counter() - started


def serve(feeds: int, items: int, hosts: int, latency: float, urls: Queue, stop: Event) -> None:
    """The feed servers, in their own process: on a real network they are other machines."""
    with ExitStack() as stack:
        servers = [stack.enter_context(running(f"127.0.0.{n + 1}")) for n in range(hosts)]
        # generated before serving: the server shares our cores, and a real one sends stored files
        for n in range(feeds):
            server, path = servers[n % hosts], f"/feeds/{n}.xml"
            server.route(path, handler=handler(feed_body(n, items), f'"{n}"', latency))
        urls.put([servers[n % hosts].url(f"/feeds/{n}.xml") for n in range(feeds)])
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=50, help="sites serving the feeds (≤ 254)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per response")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parser processes (default: one per CPU; 0: a thread)",
    )
    args = parser.parse_args()
    served: Queue = Queue()
    stop = Event()
    server = Process(
        target=serve, args=(args.feeds, args.items, args.hosts, args.latency, served, stop)
    )
    server.start()
    try:
        urls = served.get(timeout=600)
        feeds = [Feed(name=f"feed-{n}", url=url, backfill=args.items) for n, url in enumerate(urls)]
        with tempfile.TemporaryDirectory() as tmp:
            run = asyncio.run(cycles(feeds, Path(tmp) / "bench.db", args.workers))
        base = baseline(urls)
    finally:
        stop.set()
        server.join(timeout=30)
    main_mb = peak_rss_mb()
    peak = main_mb + run.worker_mb  # each process's own peak, summed: an upper bound
    print(
        f"items={args.feeds * args.items} hosts={args.hosts} alerts={run.alerts} "
        f"latency_s={args.latency} "
        f"cpus={cpu_count()} parse_workers={run.workers} main_rss_mb={main_mb:.0f} "
        f"workers_rss_mb={run.worker_mb:.0f}"
    )
    print(
        f"feeds={args.feeds} cycle_s={run.full:.2f} unchanged_cycle_s={run.unchanged:.2f} "
        f"baseline_s={base:.2f} speedup={base / run.full:.2f} peak_rss_mb={peak:.0f}"
    )


if __name__ == "__main__":
    main()
