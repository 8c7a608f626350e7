"""bot.feeds.fetch against a real HTTP server on 127.0.0.1 (tests/feedserver.py)."""

from __future__ import annotations

import asyncio
import gzip
import random
import socket
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from feedserver import FeedServer, Response, conditional, repeat

from bot import __version__
from bot.errors import FeedError, FeedGone, FeedThrottled
from bot.feeds.fetch import (
    DEFAULT_RETRY_AFTER,
    MAX_BACKOFF,
    Fetcher,
    backoff_delay,
    retry_after_seconds,
)
from bot.feeds.parse import parse_feed

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
RSS = (FEEDS / "rss20.xml").read_bytes()


async def fetch_error(url: str, **fetcher_options: object) -> FeedError:
    async with Fetcher(**fetcher_options) as fetcher:  # type: ignore[arg-type]
        with pytest.raises(FeedError) as caught:
            await fetcher.fetch(url)
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- conditional GET, headers -------------------------------------------------------------


async def test_second_fetch_sends_validators_and_gets_304(feed_server: FeedServer) -> None:
    modified = "Mon, 14 Oct 2024 06:00:00 GMT"
    feed_server.route("/feed", handler=conditional(RSS, etag='"abc"', last_modified=modified))
    async with Fetcher() as fetcher:
        first = await fetcher.fetch(feed_server.url("/feed"))
        second = await fetcher.fetch(first.url, etag=first.etag, last_modified=first.last_modified)
    assert (first.status, first.body, first.etag, first.last_modified) == (
        200,
        RSS,
        '"abc"',
        modified,
    )
    assert (second.status, second.body, second.etag) == (304, None, '"abc"')
    seen = feed_server.requests_for("/feed")
    assert "if-none-match" not in seen[0].headers
    assert seen[1].headers["if-none-match"] == '"abc"'
    assert seen[1].headers["if-modified-since"] == modified


async def test_304s_keep_the_connection_alive(feed_server: FeedServer) -> None:
    """An unchanged cycle is all 304s: each must not cost a new TCP connection."""
    feed_server.route("/feed", handler=conditional(RSS, etag='"abc"'))
    async with Fetcher() as fetcher:
        first = await fetcher.fetch(feed_server.url("/feed"))
        for _ in range(3):
            again = await fetcher.fetch(first.url, etag=first.etag)
            assert again.status == 304
    assert len(feed_server.requests_for("/feed")) == 4
    assert feed_server.connections == 1


async def test_304_without_validators_keeps_the_callers(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=304)
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(feed_server.url("/feed"), etag='"e"', last_modified="LM")
    assert (result.status, result.body, result.etag, result.last_modified) == (
        304,
        None,
        '"e"',
        "LM",
    )


async def test_user_agent_names_alertbot_and_version(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)
    async with Fetcher() as fetcher:
        await fetcher.fetch(feed_server.url("/feed"), headers={"X-Token": "t"})
    headers = feed_server.requests_for("/feed")[0].headers
    assert headers["user-agent"].startswith(f"alertbot/{__version__} (+https://")
    assert headers["x-token"] == "t"
    assert "gzip" in headers["accept-encoding"]


async def test_gzip_body_is_decompressed(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(feed_server.url("/feed"))
    assert result.body == RSS


# --- HTTP errors -------------------------------------------------------------------------


async def test_500_is_a_feed_error_with_status(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=500, body=b"oops")
    error = await fetch_error(feed_server.url("/feed"))
    assert type(error) is FeedError and error.status == 500
    assert str(error) == (
        f"{feed_server.url('/feed')}: answered 500 Internal Server Error: "
        "a server error, usually temporary"
    )


async def test_404_says_there_is_no_feed(feed_server: FeedServer) -> None:
    error = await fetch_error(feed_server.url("/missing"))
    assert type(error) is FeedError and error.status == 404
    assert "answered 404 Not Found: there is no feed at this address" in str(error)


async def test_410_is_feed_gone(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=410)
    error = await fetch_error(feed_server.url("/feed"))
    assert isinstance(error, FeedGone) and error.status == 410
    assert "removed for good" in str(error)


async def test_429_honours_retry_after_seconds(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=429, headers={"Retry-After": "120"})
    error = await fetch_error(feed_server.url("/feed"))
    assert isinstance(error, FeedThrottled)
    assert (error.retry_after, error.status) == (120.0, 429)
    assert "asks us to slow down; trying again in 120 s" in str(error)


async def test_503_with_http_date_retry_after(feed_server: FeedServer) -> None:
    when = datetime.now(UTC) + timedelta(hours=1)
    feed_server.route("/feed", status=503, headers={"Retry-After": format_datetime(when, True)})
    error = await fetch_error(feed_server.url("/feed"))
    assert isinstance(error, FeedThrottled) and error.status == 503
    assert 3500 < error.retry_after <= 3600


async def test_503_without_retry_after_uses_default(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=503)
    error = await fetch_error(feed_server.url("/feed"))
    assert isinstance(error, FeedThrottled) and error.retry_after == DEFAULT_RETRY_AFTER


# --- network failures --------------------------------------------------------------------


async def test_connection_refused_is_explained() -> None:
    port = closed_port()
    error = await fetch_error(f"http://127.0.0.1:{port}/feed")
    assert str(error) == (
        f"http://127.0.0.1:{port}/feed: 127.0.0.1:{port} refused the connection; "
        "nothing is listening there (is it up?)"
    )
    assert error.status is None


async def test_unknown_host_is_explained() -> None:
    error = await fetch_error("http://no-such-host.invalid/feed", timeout=10)
    assert "cannot find the host no-such-host.invalid; check the address" in str(error)


async def test_not_a_web_address() -> None:
    error = await fetch_error("example.com/feed")
    assert (
        str(error)
        == "example.com/feed: not a valid feed address (use http://, https:// or file://)"
    )


async def test_hanging_server_hits_the_read_timeout(feed_server: FeedServer) -> None:
    feed_server.route("/hang", hang=True)
    error = await fetch_error(feed_server.url("/hang"), timeout=10, read_timeout=0.3)
    assert str(error) == (
        f"{feed_server.url('/hang')}: 127.0.0.1 stopped sending data; "
        "the server is too slow or stuck"
    )


def trickle() -> Iterator[bytes]:
    for _ in range(100):
        time.sleep(0.1)  # each piece comes in time, the whole never does
        yield b"<!-- x -->"


async def test_trickling_server_hits_the_total_timeout(feed_server: FeedServer) -> None:
    feed_server.route("/slow", chunks=trickle)
    error = await fetch_error(feed_server.url("/slow"), timeout=0.5)
    assert str(error) == (
        f"{feed_server.url('/slow')}: no complete answer within 0.5 s; the server is too slow "
        "or not answering (if it is only slow, raise the timeout)"
    )


# --- size cap ----------------------------------------------------------------------------

TOO_BIG = "the feed is larger than the 10 MB size cap; if it really is that big, raise `max_bytes`"


async def test_50_mb_streamed_body_is_cut_off_at_the_cap(feed_server: FeedServer) -> None:
    feed_server.route("/big", chunks=repeat(b"x" * 65536, 50_000_000))
    tracemalloc.start()
    try:
        error = await fetch_error(feed_server.url("/big"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert TOO_BIG in str(error)
    assert peak < 40_000_000  # about the 10 MB cap, never the 50 MB body


async def test_declared_50_mb_is_refused_before_reading(feed_server: FeedServer) -> None:
    feed_server.route("/big", chunks=repeat(b"x" * 65536, 50_000_000), length=50_000_000)
    error = await fetch_error(feed_server.url("/big"))
    assert TOO_BIG in str(error)


async def test_gzip_bomb_hits_the_cap_on_decompressed_size(feed_server: FeedServer) -> None:
    bomb = gzip.compress(b"\0" * 30_000_000)
    feed_server.route("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    error = await fetch_error(feed_server.url("/bomb"), max_bytes=1_000_000)
    assert "larger than the 1 MB size cap" in str(error)
    assert "(now 1000000)" in str(error)


# --- redirects ---------------------------------------------------------------------------


async def test_301_is_reported_as_the_new_address(feed_server: FeedServer) -> None:
    feed_server.redirect("/old", "/feed", status=301)
    feed_server.route("/feed", body=RSS)
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(feed_server.url("/old"))
    assert (result.url, result.body) == (feed_server.url("/feed"), RSS)
    assert result.permanent_redirect == feed_server.url("/feed")


@pytest.mark.parametrize(
    ("hops", "permanent"),
    [
        ([302], None),
        ([307], None),
        ([308], "/1"),
        ([301, 308], "/2"),
        ([301, 302], "/1"),  # the feed moved to /1, which redirects for now
        ([302, 301], None),
    ],
)
async def test_only_leading_permanent_hops_count(
    feed_server: FeedServer, hops: list[int], permanent: str | None
) -> None:
    for number, status in enumerate(hops):
        feed_server.redirect(f"/{number}", f"/{number + 1}", status=status)
    feed_server.route(f"/{len(hops)}", body=RSS)
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(feed_server.url("/0"))
    assert result.body == RSS
    assert result.permanent_redirect == (feed_server.url(permanent) if permanent else None)


async def test_redirect_loop_is_named(feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b")
    feed_server.redirect("/b", feed_server.url("/a"))
    error = await fetch_error(feed_server.url("/a"))
    a, b = feed_server.url("/a"), feed_server.url("/b")
    assert str(error) == f"{a}: redirect loop ({a} → {b} → {a}); the site is misconfigured"


async def test_five_redirects_are_followed_six_are_not(feed_server: FeedServer) -> None:
    for number in range(6):
        feed_server.redirect(f"/{number}", f"/{number + 1}")
    feed_server.route("/6", body=RSS)
    async with Fetcher() as fetcher:
        assert (await fetcher.fetch(feed_server.url("/1"))).body == RSS
    error = await fetch_error(feed_server.url("/0"))
    assert "more than 5 redirects" in str(error)
    assert "configure the address it ends at" in str(error)


async def test_redirect_to_a_local_file_is_refused(feed_server: FeedServer) -> None:
    feed_server.redirect("/feed", "file:///etc/passwd")
    error = await fetch_error(feed_server.url("/feed"))
    assert "redirects to file:///etc/passwd, which is not a web address" in str(error)


async def test_redirect_without_location(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=302)
    error = await fetch_error(feed_server.url("/feed"))
    assert "answered 302 (a redirect) without saying where to" in str(error)


# --- content the parser must cope with ---------------------------------------------------


async def test_wrong_content_type_is_still_parsed(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS, headers={"Content-Type": "text/html; charset=utf-8"})
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(feed_server.url("/feed"))
    parsed = await asyncio.to_thread(parse_feed, result.body, result.headers, "f", result.url)
    assert len(parsed.items) == 5 and parsed.problem is None


async def test_non_utf8_feed_over_http(feed_server: FeedServer) -> None:
    body = (FEEDS / "koi8-r.xml").read_bytes()
    feed_server.route("/feed", body=body, headers={"Content-Type": "text/xml; charset=koi8-r"})
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(feed_server.url("/feed"))
    parsed = parse_feed(result.body or b"", result.headers, "f", result.url)
    assert parsed.items[0].title == "Учения Северного флота"


async def test_billion_laughs_over_http(feed_server: FeedServer) -> None:
    lol = b"".join(
        b'<!ENTITY lol%d "%s">' % (n, b"".join(b"&lol%d;" % (n - 1) for _ in range(10)))
        for n in range(2, 10)
    )
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol1 "lol">' + lol + b"]>"
        b'<rss version="2.0"><channel><title>&lol9;</title>'
        b"<item><title>&lol9;</title><description>&lol9;</description></item></channel></rss>"
    )
    feed_server.route("/feed", body=body, headers={"Content-Type": "application/rss+xml"})
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(feed_server.url("/feed"))
    parsed = await asyncio.to_thread(parse_feed, result.body, result.headers, "f", result.url)
    assert parsed.bozo is not None
    assert all(len(item.title) + len(item.text) < 100 for item in parsed.items)


# --- file:// -----------------------------------------------------------------------------


async def test_file_feed_and_its_304(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    async with Fetcher() as fetcher:
        first = await fetcher.fetch(path.as_uri())
        second = await fetcher.fetch(path.as_uri(), etag=first.etag)
    assert (first.status, first.body, first.url) == (200, RSS, path.as_uri())
    assert (second.status, second.body) == (304, None)


async def test_missing_file(tmp_path: Path) -> None:
    url = (tmp_path / "nope.xml").as_uri()
    error = await fetch_error(url)
    assert str(error) == f"{url}: there is no file {tmp_path / 'nope.xml'}"


async def test_file_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 2_000)
    error = await fetch_error(path.as_uri(), max_bytes=1_000)
    assert "larger than the 1000 bytes size cap" in str(error)


# --- concurrency -------------------------------------------------------------------------


async def test_per_host_bound_is_observed_by_the_server(feed_server: FeedServer) -> None:
    feed_server.route("/feed", delay=0.2, body=RSS)
    async with Fetcher(per_host=2) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(feed_server.url(f"/feed?n={n}")) for n in range(6))
        )
    assert all(r.body == RSS for r in results)
    assert feed_server.max_active == 2


async def test_overall_bound_is_observed_by_the_server(feed_server: FeedServer) -> None:
    feed_server.route("/feed", delay=0.2, body=RSS)
    hosts = ["127.0.0.1", "localhost"]
    async with Fetcher(max_connections=3, per_host=10) as fetcher:
        await asyncio.gather(
            *(
                fetcher.fetch(f"http://{hosts[n % 2]}:{feed_server.port}/feed?n={n}")
                for n in range(8)
            )
        )
    assert feed_server.max_active == 3


async def test_waiting_for_a_slot_does_not_count_against_the_timeout(
    feed_server: FeedServer,
) -> None:
    feed_server.route("/feed", delay=0.3, body=RSS)
    async with Fetcher(per_host=1, timeout=1.0) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(feed_server.url(f"/feed?n={n}")) for n in range(4))
        )
    assert [r.status for r in results] == [200] * 4  # 1.2 s in all, 0.3 s each


# --- pure helpers ------------------------------------------------------------------------

NOW = datetime(2024, 10, 14, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Mon, 14 Oct 2024 12:01:30 GMT", 90.0),
        ("Mon, 14 Oct 2024 11:00:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    assert backoff_delay(0, 600, rng) == 600
    delays = [backoff_delay(n, 600, rng) for n in range(1, 6)]
    for n, delay in enumerate(delays, start=1):
        assert 600 * 2**n * 0.8 <= delay <= 600 * 2**n * 1.2
    assert backoff_delay(50, 600, rng) <= MAX_BACKOFF
    assert backoff_delay(10_000, 600, rng) <= MAX_BACKOFF  # no overflow
    assert backoff_delay(3, 86_400, rng) == 86_400  # a daily feed is not retried sooner


def test_backoff_jitter_spreads_feeds() -> None:
    rng = random.Random(1)
    assert len({backoff_delay(2, 600, rng) for _ in range(20)}) > 10


def test_response_dataclass_defaults() -> None:
    assert Response().status == 200  # the helper other tests build on
