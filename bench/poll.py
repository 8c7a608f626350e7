"""Benchmark one poll cycle against a local HTTP server, with a naive baseline in the same run.

    .venv/bin/python bench/poll.py [--feeds 1000] [--items 50] [--hosts 50] [--latency 0]
                                   [--workers N] [--compare-neardup]

Serves FEEDS feeds of ITEMS items of about 3 KB from HOSTS sites (one server per loopback
address, 127.0.0.1 to 127.0.0.HOSTS, feeds dealt out in turn; one item in ten matches a rule;
every body generated before serving, as a real server sends stored files), each answer after
LATENCY seconds of simulated server time, then measures with alertbot's default limits (20
connections, 4 per host):
  cycle_s            a full cycle on a fresh database: every feed and item is new
  unchanged_cycle_s  the next cycle: every feed answers 304 to our conditional request
  news_cycle_s       the cycle after: every feed has published NEWS new items on top (its
                     oldest ones drop off), as busy feeds do between two polls
  baseline_s         `feedparser.parse(url)` feed after feed (no matching, no storing)
Last line: feeds=N cycle_s=X unchanged_cycle_s=Y news_cycle_s=W baseline_s=Z speedup=Z/X
peak_rss_mb=M

--compare-neardup measures the near-duplicate check's cost in the same run: four first cycles,
each on a fresh database, with the check as shipped (on) and switched off here (off: the
bench's Poller sketches nothing, so nothing is looked up or stored), in the order on, off,
off, on (drift and warm-up fall on both alike; the first "on" cycle also imports numpy, as
a bot's first cycle does). A line per cycle gives its wall time, the main process's CPU time
(where the check runs; steadier than wall time on a shared machine), what it wrote (the
database and its WAL), the news cycle's wall time, CPU time and alerts, and how many items
were sketched in the run (a body has about 450 words, of which the first 200 count: far more
than MIN_SHINGLES runs), too short to sketch, and looked up.
The last line's cycle_s and news_cycle_s are then the means of the "on" runs and
unchanged_cycle_s the mean of all four, followed by neardup_on_s, neardup_off_s,
neardup_cost_s (on - off) and the same three for the main process's CPU seconds, then the
same six for the news cycle (news_on_s ... news_cost_cpu_s).

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
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from multiprocessing import Event, Process, Queue, Value
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from statistics import fmean
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


def feed_body(feed: int, items: int, news: int = 0) -> bytes:
    """About 3 KB per item; one item in ten carries a sentence that some rule matches. With
    `news`, that many new items come first and as many of the oldest are gone."""
    rng, fresh = random.Random(feed), random.Random(f"news {feed}")
    old = [item_xml(feed, n, n, rng) for n in range(items)]
    new = [item_xml(feed, f"new{n}", items + n, fresh) for n in range(news)]
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>https://example.org/{feed}</link>"
        + "".join(new[::-1] + old[: items - news])
        + "</channel></rss>"
    ).encode()


def item_xml(feed: int, name: int | str, n: int, rng: random.Random) -> str:
    sentences = [
        " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(38)
    ]
    if rng.random() < 0.1:
        sentences[rng.randrange(len(sentences))] = rng.choice(MATCHING)
    return (
        f"<item><title>Feed {feed} report {name}</title>"
        f"<link>https://example.org/{feed}/{name}</link><guid>urn:{feed}:{name}</guid>"
        f"<pubDate>Mon, 14 Oct 2024 {n % 24:02d}:{n % 60:02d}:00 GMT</pubDate>"
        f"<description>{escape(' '.join(sentences))}</description></item>"
    )


def handler(editions: list[bytes], edition: Synchronized, latency: float):  # type: ignore[no-untyped-def,type-arg]
    """Serves the feed's current edition (`edition`, set by the bench between cycles)."""

    def handle(request: Request) -> Response:
        etag = f'"{edition.value}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status=304, headers={"ETag": etag}, delay=latency)
        headers = {"Content-Type": "application/rss+xml", "ETag": etag}
        return Response(headers=headers, body=editions[edition.value], delay=latency)

    return handle


NEWS = 2  # new items per feed between the unchanged cycle and the news cycle


async def cycles(
    feeds: list[Feed],
    database: Path,
    workers: int | None,
    edition: Synchronized,  # type: ignore[type-arg]
) -> Cycles:
    """A first, an unchanged and a news cycle on a fresh database (the feeds' first edition)."""
    rulebook = load_rules(ROOT / "rules")
    edition.value = 0
    with Store(database) as store, ParsePool(workers) as parser:
        async with Fetcher() as fetcher:  # the default limits, as `alertbot run` has them
            poller = Poller(store, fetcher, rulebook, parser=parser)
            started, cpu, written = time.perf_counter(), time.process_time(), written_mb()
            stats = await poller.run_cycle(feeds, force=True)
            full, full_cpu = time.perf_counter() - started, time.process_time() - cpu
            written = written_mb() - written
            started = time.perf_counter()
            again = await poller.run_cycle(feeds, force=True)
            unchanged = time.perf_counter() - started
            edition.value = 1
            started, cpu = time.perf_counter(), time.process_time()
            news = await poller.run_cycle(feeds, force=True)
            news_s, news_cpu = time.perf_counter() - started, time.process_time() - cpu
            edition.value = 0
        worker_mb = sum(peak_rss_mb(pid) for pid in parser.pids())
        processes = len(parser.pids()) if parser.processes else 0
    assert stats.failed == 0 and again.unchanged == len(feeds), (stats.errors, again.summary())
    assert news.failed == 0 and news.items_new == NEWS * len(feeds), news.summary()
    return Cycles(
        full, unchanged, len(stats.alerts), processes, worker_mb, full_cpu, written,
        news=news_s, news_cpu=news_cpu, news_alerts=len(news.alerts),
    )  # fmt: skip


def written_mb() -> float:
    """What this process has written so far (the database and its WAL; Linux /proc)."""
    try:
        io = Path("/proc/self/io").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1e6 for line in io.splitlines()
                 if line.startswith("wchar:")), 0.0)  # fmt: skip


CHECKS: Counter[str] = Counter()  # what the near-duplicate check did in the current cycle


@contextmanager
def neardup_check(on: bool) -> Iterator[None]:
    """The check as shipped but counted (on), or switched off: no item gets a sketch, so none
    is looked up or stored with one. Patched here only: the product has no such switch."""
    shipped_sketch, shipped_copies = Poller._sketch, Poller._copies

    def sketch(item, document):  # type: ignore[no-untyped-def]
        if not on:
            return None
        found = shipped_sketch(item, document)
        CHECKS["sketched" if found is not None else "too_short"] += 1
        return found

    def copies(self, sketch, decision, stored):  # type: ignore[no-untyped-def]
        CHECKS["looked_up"] += 1
        return shipped_copies(self, sketch, decision, stored)

    CHECKS.clear()
    Poller._sketch = staticmethod(sketch)  # type: ignore[method-assign,assignment]
    Poller._copies = copies  # type: ignore[method-assign]
    try:
        yield
    finally:
        Poller._sketch, Poller._copies = shipped_sketch, shipped_copies  # type: ignore[method-assign]


def compare_neardup(
    feeds: list[Feed],
    tmp: Path,
    workers: int | None,
    edition: Synchronized,  # type: ignore[type-arg]
) -> Cycles:
    """First cycles with the check on and off, in the order on, off, off, on."""
    runs: dict[bool, list[Cycles]] = {True: [], False: []}
    for n, on in enumerate((True, False, False, True)):
        database = tmp / f"bench{n}.db"
        with neardup_check(on):
            run = asyncio.run(cycles(feeds, database, workers, edition))
        for path in tmp.glob(f"{database.name}*"):  # a cycle's database is about 200 MB
            path.unlink()
        runs[on].append(run)
        print(
            f"neardup={'on' if on else 'off'} cycle_s={run.full:.2f} main_cpu_s={run.cpu:.2f} "
            f"written_mb={run.written:.0f} news_cycle_s={run.news:.2f} "
            f"news_main_cpu_s={run.news_cpu:.2f} news_alerts={run.news_alerts} "
            f"alerts={run.alerts} sketched={CHECKS['sketched']} "
            f"too_short={CHECKS['too_short']} looked_up={CHECKS['looked_up']}",
            flush=True,
        )
    on, off = runs[True], runs[False]
    alerts = {(r.alerts, r.news_alerts) for r in on + off}
    assert len(alerts) == 1, f"the check changed the alerts: {alerts}"
    return replace(
        on[0],
        full=fmean(r.full for r in on),
        unchanged=fmean(r.unchanged for r in on + off),
        worker_mb=max(r.worker_mb for r in on + off),
        cpu=fmean(r.cpu for r in on),
        off=fmean(r.full for r in off),
        off_cpu=fmean(r.cpu for r in off),
        news=fmean(r.news for r in on),
        news_cpu=fmean(r.news_cpu for r in on),
        news_off=fmean(r.news for r in off),
        news_off_cpu=fmean(r.news_cpu for r in off),
    )


@dataclass
class Cycles:
    full: float
    unchanged: float
    alerts: int
    workers: int  # parser processes (0: parsing in a thread of this process)
    worker_mb: float  # their peak memory, summed
    cpu: float = 0.0  # the first cycle's CPU time in this process
    written: float = 0.0  # MB the first cycle wrote (this process: the database)
    news: float = 0.0  # the news cycle: NEWS new items per feed
    news_cpu: float = 0.0
    news_alerts: int = 0
    off: float | None = None  # --compare-neardup: the first cycle without the check
    off_cpu: float | None = None
    news_off: float | None = None  # and the news cycle without it
    news_off_cpu: float | None = None


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


def serve(
    feeds: int,
    items: int,
    hosts: int,
    latency: float,
    urls: Queue,
    stop: Event,
    edition: Synchronized,  # type: ignore[type-arg]
) -> None:
    """The feed servers, in their own process: on a real network they are other machines."""
    with ExitStack() as stack:
        servers = [stack.enter_context(running(f"127.0.0.{n + 1}")) for n in range(hosts)]
        # generated before serving: the server shares our cores, and a real one sends stored files
        for n in range(feeds):
            server, path = servers[n % hosts], f"/feeds/{n}.xml"
            editions = [feed_body(n, items), feed_body(n, items, NEWS)]
            server.route(path, handler=handler(editions, edition, latency))
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
    parser.add_argument(
        "--compare-neardup",
        action="store_true",
        help="first cycles with the near-duplicate check on and off, in one run",
    )
    args = parser.parse_args()
    served: Queue = Queue()
    stop, edition = Event(), Value("i", 0)
    setup = (args.feeds, args.items, args.hosts, args.latency, served, stop, edition)
    server = Process(target=serve, args=setup)
    server.start()
    try:
        urls = served.get(timeout=600)
        feeds = [Feed(name=f"feed-{n}", url=url, backfill=args.items) for n, url in enumerate(urls)]
        with tempfile.TemporaryDirectory() as tmp:
            if args.compare_neardup:
                run = compare_neardup(feeds, Path(tmp), args.workers, edition)
            else:
                run = asyncio.run(cycles(feeds, Path(tmp) / "bench.db", args.workers, edition))
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
    last = (
        f"feeds={args.feeds} cycle_s={run.full:.2f} unchanged_cycle_s={run.unchanged:.2f} "
        f"news_cycle_s={run.news:.2f} "
        f"baseline_s={base:.2f} speedup={base / run.full:.2f} peak_rss_mb={peak:.0f}"
    )
    if run.off is not None and run.off_cpu is not None:
        last += (
            f" neardup_on_s={run.full:.2f} neardup_off_s={run.off:.2f} "
            f"neardup_cost_s={run.full - run.off:+.2f} neardup_on_cpu_s={run.cpu:.2f} "
            f"neardup_off_cpu_s={run.off_cpu:.2f} neardup_cost_cpu_s={run.cpu - run.off_cpu:+.2f}"
        )
    if run.news_off is not None and run.news_off_cpu is not None:
        last += (
            f" news_on_s={run.news:.2f} news_off_s={run.news_off:.2f} "
            f"news_cost_s={run.news - run.news_off:+.2f} news_on_cpu_s={run.news_cpu:.2f} "
            f"news_off_cpu_s={run.news_off_cpu:.2f} "
            f"news_cost_cpu_s={run.news_cpu - run.news_off_cpu:+.2f}"
        )
    print(last)


if __name__ == "__main__":
    main()
