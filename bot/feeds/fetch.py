"""Feed HTTP: conditional GET, timeouts, size cap, redirects, Retry-After, backoff, file:// feeds.

    async with Fetcher() as fetcher:
        result = await fetcher.fetch(url, etag=feed.etag, last_modified=feed.last_modified)
        if result.status == 304: ...            # nothing changed, nothing to parse
        parsed = await asyncio.to_thread(parse_feed, result.body, result.headers, name, result.url)

Every failure is a `FeedError` whose message a person can act on; `FeedThrottled` carries the
delay the server asked for, `FeedGone` means the feed was removed. The total timeout starts when
the request gets its connection slot, so time spent queueing behind other feeds on the same host
does not count against a feed. gzip and deflate bodies (in any number of layers up to three)
are decoded here, not by httpx, with the size cap applied while decoding (bot.feeds.decode): a
compression bomb stops at the cap instead of filling memory.
Parsing is CPU work: callers run it with `asyncio.to_thread`, never on the event loop.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpx

from bot import __version__
from bot.errors import FeedError, FeedGone, FeedThrottled
from bot.feeds.decode import ACCEPT_ENCODING, BodyDecoder, DecodeFailed, TooLarge
from bot.feeds.guard import AddressPolicy, guard
from bot.feeds.hostpools import HostPools

USER_AGENT = f"alertbot/{__version__} (+https://github.com/alertbot/alertbot)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
MAX_REDIRECTS = 5
# hosts whose connections are kept for reuse, each at most `per_host` sockets (400 in all)
POOLED_HOSTS = 100
DEFAULT_RETRY_AFTER = 300.0  # a 429/503 without Retry-After: wait five minutes
MAX_RETRY_AFTER = 86_400.0  # a server asking for more than a day is asking too much
MAX_BACKOFF = 6 * 3600.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_HINTS = {
    401: "the feed needs a login; add the credentials under the feed's `headers`",
    403: "the server refuses us; the feed may need a login (`headers`) or block bots",
    404: "there is no feed at this address; check the URL (the feed may have moved)",
}


@dataclass
class FetchResult:
    """A successful fetch: 200 with a body, or 304 (unchanged) with body None."""

    url: str  # the final address, after redirects
    status: int
    body: bytes | None
    headers: dict[str, str]  # lowercase names
    etag: str | None
    last_modified: str | None
    permanent_redirect: str | None = None  # the feed's new address after 301/308 (only)
    elapsed: float = 0.0  # seconds


@dataclass(frozen=True)
class _Redirect:
    status: int
    target: str


class Fetcher:
    """An httpx client with alertbot's manners; use as `async with Fetcher() as f:`."""

    def __init__(
        self,
        user_agent: str | None = None,
        max_bytes: int = 10_000_000,
        timeout: float = 30.0,
        max_connections: int = 20,
        per_host: int = 4,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 20.0,
        allow_addresses: tuple[str, ...] = (),
    ) -> None:
        self.max_bytes = max_bytes
        self.policy = AddressPolicy.allowing(allow_addresses)  # for links from feed content
        self.timeout = timeout
        self.per_host = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._slots = asyncio.Semaphore(max_connections)
        options = dict(
            max_hosts=POOLED_HOSTS,
            headers={
                "User-Agent": user_agent or USER_AGENT,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,  # what BodyDecoder decodes with a bound
            },
            timeout=httpx.Timeout(
                timeout, connect=min(connect_timeout, timeout), read=min(read_timeout, timeout)
            ),
            follow_redirects=False,  # followed by hand, to see which hops are permanent
        )
        self._pools = HostPools(per_host, **options)  # type: ignore[arg-type]
        # untrusted links get pools of their own: each of their connections was checked when
        # it was opened, and none can be one a configured feed opened to an internal host
        self._untrusted_pools = HostPools(per_host, **options)  # type: ignore[arg-type]

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._pools.aclose()
        await self._untrusted_pools.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: dict[str, str] | None = None,
        untrusted: bool = False,
    ) -> FetchResult:
        """Fetch one feed; raises FeedError (FeedThrottled, FeedGone) on any failure.

        `untrusted`: the address came from feed content (an article link), so it and every
        redirect are refused on internal addresses (bot.feeds.guard) and file:// is refused.
        """
        started = time.monotonic()
        scheme = urlsplit(url).scheme.lower()
        if untrusted and scheme not in ("http", "https"):
            raise FeedError(f"{url}: not a web address; only http(s) links are followed")
        if scheme == "file":
            result = await asyncio.to_thread(read_file, url, self.max_bytes, etag)
        else:
            request_headers = dict(headers or {})
            if etag:
                request_headers["If-None-Match"] = etag
            if last_modified:
                request_headers["If-Modified-Since"] = last_modified
            result = await self._fetch_http(url, request_headers, untrusted)
        if result.status == 304:
            result.etag = result.etag or etag
            result.last_modified = result.last_modified or last_modified
        result.elapsed = time.monotonic() - started
        return result

    async def _fetch_http(self, url: str, headers: dict[str, str], untrusted: bool) -> FetchResult:
        try:
            async with asyncio.timeout(None) as budget:
                return await self._follow(url, headers, budget, untrusted)
        except TimeoutError:
            raise FeedError(
                f"{url}: no complete answer within {self.timeout:g} s; the server is too slow "
                "or not answering (if it is only slow, raise the timeout)"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FeedError(describe_network_error(exc, url)) from exc

    async def _follow(
        self, url: str, headers: dict[str, str], budget: asyncio.Timeout, untrusted: bool
    ) -> FetchResult:
        chain = [url]
        permanent: str | None = None
        all_permanent = True  # a permanent hop counts only after permanent hops
        for _ in range(MAX_REDIRECTS + 1):
            outcome = await self._hop(chain[-1], headers, budget, untrusted)
            if isinstance(outcome, FetchResult):
                outcome.permanent_redirect = permanent
                return outcome
            if outcome.target in chain:
                loop = " → ".join([*chain[chain.index(outcome.target) :], outcome.target])
                raise FeedError(f"{url}: redirect loop ({loop}); the site is misconfigured")
            all_permanent = all_permanent and outcome.status in _PERMANENT
            if all_permanent:
                permanent = outcome.target
            chain.append(outcome.target)
        raise FeedError(
            f"{url}: more than {MAX_REDIRECTS} redirects ({' → '.join(chain)}); "
            "open it in a browser and configure the address it ends at"
        )

    async def _hop(
        self, url: str, headers: dict[str, str], budget: asyncio.Timeout, untrusted: bool
    ) -> FetchResult | _Redirect:
        pools, extensions = self._pools, None
        if untrusted:  # every hop is checked on the address it connects to
            pools, extensions = self._untrusted_pools, {"trace": guard(self.policy, url)}
        async with (
            self._slot(url, budget),
            pools.stream("GET", url, headers=headers, extensions=extensions) as response,
        ):
            return await self._handle(response)

    @asynccontextmanager
    async def _slot(self, url: str, budget: asyncio.Timeout) -> AsyncIterator[None]:
        host = urlsplit(url).netloc.lower()
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with per_host, self._slots:
            if budget.when() is None:  # the clock starts once we may talk to the server
                budget.reschedule(asyncio.get_running_loop().time() + self.timeout)
            yield

    async def _handle(self, response: httpx.Response) -> FetchResult | _Redirect:
        status = response.status_code
        if status in _REDIRECTS:
            return _redirect(response)
        if status == 304:
            # a 304 has no body, but httpx returns the connection to its pool only once the
            # (empty) body is read: unread, each unchanged feed would cost a new connection
            await response.aread()
            return _result(response, None)
        if 200 <= status < 300:
            return _result(response, await self._read_capped(response))
        raise status_error(response, datetime.now(UTC))

    async def _read_capped(self, response: httpx.Response) -> bytes:
        url = str(response.url)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big(url, self.max_bytes)
        encoding = response.headers.get("content-encoding", "")
        try:
            body = BodyDecoder(encoding, self.max_bytes)
            # raw: httpx would inflate each network chunk whole, with no limit
            async for chunk in response.aiter_raw():
                body.feed(chunk)
            return body.finish()
        except TooLarge:
            raise too_big(url, self.max_bytes, decoded=body.encodings) from None
        except DecodeFailed as exc:
            raise FeedError(f"{url}: the server sent a corrupt compressed body: {exc}") from None


def _result(response: httpx.Response, body: bytes | None) -> FetchResult:
    headers = dict(response.headers)
    return FetchResult(
        url=str(response.url),
        status=response.status_code,
        body=body,
        headers=headers,
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
    )


def _redirect(response: httpx.Response) -> _Redirect:
    url, status = str(response.url), response.status_code
    location = response.headers.get("location", "").strip()
    if not location:
        raise FeedError(
            f"{url}: answered {status} (a redirect) without saying where to", status=status
        )
    target = urljoin(url, location)
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        raise FeedError(f"{url}: redirects to {target}, which is not a web address", status=status)
    return _Redirect(status, target)


def status_error(response: httpx.Response, now: datetime) -> FeedError:
    """The FeedError for an HTTP error status (FeedThrottled for 429/503, FeedGone for 410)."""
    status, url = response.status_code, str(response.url)
    said = f"{url}: answered {status} {response.reason_phrase}".rstrip()
    if status in (429, 503):
        delay = retry_after_seconds(response.headers.get("retry-after"), now)
        delay = DEFAULT_RETRY_AFTER if delay is None else min(delay, MAX_RETRY_AFTER)
        return FeedThrottled(
            f"{said}: the server asks us to slow down; trying again in {delay:.0f} s",
            delay,
            status=status,
        )
    if status == 410:
        return FeedGone(
            f"{said}: the feed was removed for good; find its new address or remove it",
            status=status,
        )
    hint = _HINTS.get(status)
    if hint is None:
        hint = "a server error, usually temporary" if status >= 500 else "an unexpected answer"
    return FeedError(f"{said}: {hint}", status=status)


def too_big(url: str, max_bytes: int, decoded: str = "") -> FeedError:
    cap = f"{max_bytes / 1e6:g} MB" if max_bytes >= 1e6 else f"{max_bytes} bytes"
    if decoded:  # a compression bomb, most likely: stopped at the cap, nothing more kept
        cap += f" size cap once decompressed (Content-Encoding: {decoded})"
    else:
        cap += " size cap"
    return FeedError(
        f"{url}: the feed is larger than the {cap}; if it really is that big, "
        f"raise `max_bytes` (now {max_bytes}) in the configuration"
    )


def describe_network_error(exc: Exception, url: str) -> str:
    """A sentence about a transport failure, for a person (no class names, no traceback)."""
    parts = urlsplit(url)
    host = parts.hostname or url
    cause = _root_cause(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return f"{url}: timed out connecting to {host}; the site may be down or blocking us"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url}: {host} stopped sending data; the server is too slow or stuck"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"{url}: not a valid feed address (use http://, https:// or file://)"
    if isinstance(cause, socket.gaierror):
        return f"{url}: cannot find the host {host}; check the address for typos, or the network"
    if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
        where = f"{host}:{parts.port}" if parts.port else host
        return f"{url}: {where} refused the connection; nothing is listening there (is it up?)"
    if isinstance(cause, ssl.SSLError):
        why = getattr(cause, "verify_message", None) or cause.reason or "TLS error"
        why = why.replace("_", " ").lower()
        return f"{url}: secure connection to {host} failed ({why})"
    if isinstance(exc, httpx.DecodingError):
        return f"{url}: the server sent a corrupt compressed body"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{url}: {host} broke off the connection or sent an invalid HTTP answer"
    detail = str(cause) or str(exc) or "no details"
    return f"{url}: network error talking to {host} ({detail})"


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while (nxt := exc.__cause__ or exc.__context__) is not None and id(nxt) not in seen:
        seen.add(id(exc))
        exc = nxt
    return exc


def read_file(url: str, max_bytes: int, etag: str | None = None) -> FetchResult:
    """A file:// feed, with the same size cap; the ETag is the file's mtime and size."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise FeedError(f"{url}: only local files can be read (file:///path/to/feed.xml)")
    path = Path(url2pathname(parts.path))
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            tag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
            modified = formatdate(stat.st_mtime, usegmt=True)
            # a local file has no server to declare its type; feedparser flags its absence
            headers = {"etag": tag, "last-modified": modified, "content-type": _guess_type(path)}
            if etag == tag:
                return FetchResult(url, 304, None, headers, tag, modified)
            body = handle.read(max_bytes + 1)  # not st_size: special files lie about it
    except FileNotFoundError:
        raise FeedError(f"{url}: there is no file {path}") from None
    except IsADirectoryError:
        raise FeedError(f"{url}: {path} is a directory, not a feed file") from None
    except PermissionError:
        raise FeedError(f"{url}: alertbot is not allowed to read {path}") from None
    except OSError as exc:
        raise FeedError(f"{url}: cannot read {path} ({exc.strerror or exc})") from None
    if len(body) > max_bytes:
        raise too_big(url, max_bytes)
    return FetchResult(url, 200, body, headers, tag, modified)


def _guess_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed if guessed and "xml" in guessed else "application/xml"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (seconds or an HTTP date); None if unusable."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value)) if value[0].isdigit() else _seconds_until(value, now)
    except (TypeError, ValueError, OverflowError):
        return None


def _seconds_until(http_date: str, now: datetime) -> float:
    when = parsedate_to_datetime(http_date)  # ValueError/TypeError when it is not a date
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(consecutive_errors: int, interval: float, rng: random.Random) -> float:
    """Seconds until the next try after `consecutive_errors` failures in a row.

    Doubles per error from the feed's interval, with ±20 % jitter so that feeds failing
    together spread out, never below the interval and never above MAX_BACKOFF (6 h) unless
    the interval itself is longer.
    """
    if consecutive_errors <= 0:
        return interval
    cap = max(interval, MAX_BACKOFF)
    raw = interval * 2.0 ** min(consecutive_errors, 64)
    return max(interval, min(cap, raw * rng.uniform(0.8, 1.2)))
