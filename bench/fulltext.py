"""Benchmark full_text: fetching and extracting article pages, against parsing their teasers.

    .venv/bin/python bench/fulltext.py [--pages 500] [--concurrency 8]

Generates PAGES article pages of 50 to 200 KB each (a site header with a mega-menu, a cookie
banner, inline styles, the article: 6 to 30 paragraphs of report-like text, a related-articles
list, comments, a footer, then a sitemap of nested lists and inline scripts up to the page's
size) and measures, each phase in its own process so
that every peak RSS is that phase's own:
  fulltext      what `full_text` costs the poller: every page fetched with the Fetcher from a
                local HTTP server (another process, as a real site is another machine) and its
                main text extracted in a worker thread, CONCURRENCY pages in flight
  extract_only  the CPU part alone: extract_main_text on the same pages held in memory, one by one
  feed_parse    the baseline: parse_feed of one RSS document carrying the pages' 500 teasers
Each line: `<phase>: pages=N seconds=S pages_per_s=R peak_rss_mb=M`; the last line compares.
The pages are served over HTTP rather than only extracted from memory because that is the
path the poller takes (sockets, size cap, decoding, threads); extract_only shows how much of it
is extraction.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import resource
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PLACES = "Kupiansk Pokrovsk Toretsk Kurakhove Vuhledar Sudzha Korenevo Izmail Odesa Kherson".split()
UNITS = [
    "the 47th Mechanized Brigade", "Russian airborne (VDV) elements", "North Korean units",
    "the 155th Naval Infantry Brigade", "Ukrainian border guards", "the 8th Combined Arms Army",
]  # fmt: skip
VERBS = ["advanced", "attacked", "recaptured positions", "conducted assaults", "withdrew"]
PHRASES = [
    "Geolocated footage published on {day} indicates that {unit} {verb} near {place}.",
    "The Ukrainian General Staff reported {n} combat engagements in the {place} direction.",
    "Russian milbloggers claimed that {unit} {verb} southeast of {place}, but ISW has not "
    "observed confirmation of these claims.",
    "Ukrainian officials reported that Russian forces launched {n} Shahed drones and {m} "
    "missiles overnight, of which air defences downed {k}.",
    "A spokesperson for {unit} stated that Russian forces {verb} in small infantry groups "
    "near {place}, supported by glide bomb strikes.",
    "Satellite imagery from {day} shows damage to a grain terminal and two berths at {place}.",
]
DAYS = ["October 12", "October 13", "October 14", "October 15"]


def sentence(rng: random.Random) -> str:
    return rng.choice(PHRASES).format(
        day=rng.choice(DAYS), unit=rng.choice(UNITS), verb=rng.choice(VERBS),
        place=rng.choice(PLACES), n=rng.randrange(5, 200), m=rng.randrange(1, 20),
        k=rng.randrange(1, 50),
    )  # fmt: skip


def paragraphs(n: int) -> list[str]:
    rng = random.Random(n)
    return [" ".join(sentence(rng) for _ in range(rng.randrange(3, 7)))
            for _ in range(rng.randrange(6, 31))]  # fmt: skip


def page(n: int) -> bytes:
    """Article page n, 50 to 200 KB, mostly boilerplate as real pages are."""
    rng = random.Random(-n - 1)
    target = rng.randrange(50_000, 200_001)
    menu = "".join(f'<li><a href="/topics/{i}">{rng.choice(PLACES)} updates {i}</a></li>'
                   for i in range(80))  # fmt: skip
    article = "".join(f"<p>{escape(p)}</p>" for p in paragraphs(n))
    related = "".join(f'<li><a href="/r/{i}">{escape(sentence(rng))}</a></li>' for i in range(12))
    comments = "".join(f'<div class="comment"><p>{escape(sentence(rng))}</p></div>'
                       for _ in range(rng.randrange(5, 30)))  # fmt: skip
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Assessment {n}"
            "</title><style>" + ".c{margin:0;padding:0}" * 400 + "</style></head><body>"
            "<div class='cookie-banner'>We use cookies. Accept all?</div>"
            f"<header><nav class='mega-menu'><ul>{menu}</ul></nav></header><main><article>"
            f"<h1>Russian Offensive Campaign Assessment {n}</h1>{article}</article>"
            f"<aside class='related'><h3>Related</h3><ul>{related}</ul></aside>"
            f"<section id='comments'>{comments}</section></main>"
            "<footer><p>© 2024 Example Institute. All rights reserved.</p></footer>")  # fmt: skip
    tail = "</body></html>"
    # the rest, as on real sites: half markup (a footer sitemap of nested lists), half scripts
    pad = max(0, target - len(head.encode()) - len(tail))
    link = (
        '<div class="col"><ul><li><a href="/s/{0}" class="nav-link">Section {0}</a></li></ul></div>'
    )
    sitemap = "".join(link.format(i) for i in range(pad // 2 // len(link.format(999))))
    rest = max(0, pad - len(sitemap) - 40)
    script = f"<div class='sitemap'>{sitemap}</div><script>window.__DATA__='{'x' * rest}';</script>"
    return (head + script + tail).encode()


def teaser(n: int) -> str:
    first = paragraphs(n)[0]
    return first[: first.rfind(" ", 0, 250)] + "…"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(pages: int, port: multiprocessing.Queue, stop: EventType) -> None:
    from feedserver import running

    with running() as server:
        for n in range(pages):  # made beforehand: a web server sends, it does not compose
            server.route(f"/a/{n}", headers={"Content-Type": "text/html; charset=utf-8"},
                         body=page(n))  # fmt: skip
        port.put(server.port)
        stop.wait()


def fulltext_phase(base_url: str, pages: int, concurrency: int) -> tuple[float, int, float]:
    from bot.feeds.fetch import Fetcher
    from bot.feeds.fulltext import fetch_article

    async def run() -> int:
        slots = asyncio.Semaphore(concurrency)
        # one local server stands in for many sites: its per-host limit is the overall one
        async with Fetcher(per_host=concurrency, max_connections=concurrency) as fetcher:

            async def one(n: int) -> int:
                async with slots:
                    article = await fetch_article(fetcher, f"{base_url}/a/{n}")
                assert article is not None and "Assessment" in article.text
                assert "updates" not in article.text and "Section" not in article.text
                return len(article.text)

            return sum(await asyncio.gather(*(one(n) for n in range(pages))))

    started = time.perf_counter()
    chars = asyncio.run(run())
    return time.perf_counter() - started, chars, peak_rss_mb()


def extract_phase(pages: int) -> tuple[float, int, float]:
    from bot.feeds.fulltext import extract_main_text

    total, chars = 0.0, 0
    for n in range(pages):
        body = page(n)
        started = time.perf_counter()
        chars += len(
            extract_main_text(body, f"https://example.org/a/{n}", content_type="text/html")
        )
        total += time.perf_counter() - started
    return total, chars, peak_rss_mb()


def parse_phase(pages: int) -> tuple[float, int, float]:
    from bot.feeds.parse import parse_feed

    items = "".join(
        f"<item><title>Assessment {n}</title><link>https://example.org/a/{n}</link>"
        f"<guid>urn:a:{n}</guid><description>{escape(teaser(n))}</description></item>"
        for n in range(pages)
    )
    body = (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
            f"{items}</channel></rss>").encode()  # fmt: skip
    started = time.perf_counter()
    parsed = parse_feed(body, {"content-type": "application/rss+xml"}, "bench", "https://x.org/")
    seconds = time.perf_counter() - started
    assert len(parsed.items) == pages
    return seconds, sum(len(i.text) for i in parsed.items), peak_rss_mb()


def _child(
    target: Callable[..., tuple[float, int, float]], args: tuple, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    out.put(target(*args))


def in_process(
    target: Callable[..., tuple[float, int, float]], *args: object
) -> tuple[float, int, float]:
    """Run one phase in a fresh process, so its peak RSS is its own."""
    out: multiprocessing.Queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=_child, args=(target, args, out))
    child.start()
    result = out.get(timeout=1800)
    child.join(timeout=60)
    return result


def line(name: str, pages: int, result: tuple[float, int, float]) -> str:
    seconds, _, peak = result
    return (f"{name}: pages={pages} seconds={seconds:.2f} pages_per_s={pages / seconds:.1f} "
            f"peak_rss_mb={peak:.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8, help="pages in flight")
    args = parser.parse_args()
    sizes = [len(page(n)) for n in range(args.pages)]
    print(f"page sizes: min={min(sizes) // 1000} KB max={max(sizes) // 1000} KB "
          f"total={sum(sizes) / 1e6:.1f} MB")  # fmt: skip
    port: multiprocessing.Queue = multiprocessing.Queue()
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(args.pages, port, stop))
    server.start()
    try:
        base_url = f"http://127.0.0.1:{port.get(timeout=60)}"
        full = in_process(fulltext_phase, base_url, args.pages, args.concurrency)
    finally:
        stop.set()
        server.join(timeout=30)
    extract = in_process(extract_phase, args.pages)
    parse = in_process(parse_phase, args.pages)
    print(line("fulltext", args.pages, full) + f" concurrency={args.concurrency}")
    print(line("extract_only", args.pages, extract))
    print(line("feed_parse", args.pages, parse))
    print(
        f"summary: full_text {full[0] / args.pages * 1000:.1f} ms/item "
        f"(extraction {extract[0] / args.pages * 1000:.1f} ms) vs feed parsing "
        f"{parse[0] / args.pages * 1000:.2f} ms/item: {full[0] / parse[0]:.0f}x the cost; "
        f"text per item {full[1] // args.pages} vs {parse[1] // args.pages} characters"
    )


if __name__ == "__main__":
    main()
