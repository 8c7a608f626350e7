"""Feed bytes → Items: feedparser (RSS, Atom, RDF) or JSON Feed, plain text, identities.

`parse_feed` is CPU-bound and synchronous: callers on the event loop run it as
``await asyncio.to_thread(parse_feed, body, headers, name, url)``.

Identity rules (uids, story keys, entries listed twice) live in bot/feeds/entries.py, shared
by every format. Text: the entry's own body (content:encoded or Atom content, else its
description or summary); feedparser would file a media caption (`media:description`) or a
podcast blurb (`itunes:summary`) as the body, so those are set aside here and used only when
an entry has nothing else. A body with no declared encoding that is not UTF-8 is decoded with
the encoding chardet detects (feedparser would fall back to windows-1252).

A body that is not a feed at all (an HTML page, JSON, garbage, nothing) gives a ParsedFeed with
no items whose `problem` says so; a malformed feed still yields its entries, with `bozo` set.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import feedparser
from feedparser.namespaces import itunes, mediarss

from bot.feeds.encoding import declare_utf8
from bot.feeds.entries import RawEntry, to_items, visible_line
from bot.feeds.htmltext import html_to_text, to_text
from bot.feeds.jsonfeed import looks_like_json, parse_json_feed
from bot.identity import body_fingerprints, clean_text
from bot.models import Item

__all__ = ["ParsedFeed", "html_to_text", "parse_feed"]

_INTERNAL_DTD = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.DOTALL)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z]")
_HTML_TAG = re.compile(
    rb"<(?:html|head|body|title|meta|h[1-6]|p|div|br|center|hr|table|pre|a\s)[\s>/]", re.I
)
_SECONDARY = ("media_description", "itunes_summary")  # feedparser keys, set aside below


def _set_aside(key: str) -> tuple[Any, Any]:
    def start(self: Any, attrs_d: dict[str, str]) -> None:
        self.push_content(key, attrs_d, "text/plain", 1)

    def end(self: Any) -> None:
        self.pop_content(key)

    return start, end


# feedparser files these as the entry's summary or content (whichever is free), so a photo
# caption would win over the description; give them keys of their own instead
mediarss.Namespace._start_media_description, mediarss.Namespace._end_media_description = _set_aside(
    "media_description"
)
itunes.Namespace._start_itunes_summary, itunes.Namespace._end_itunes_summary = _set_aside(
    "itunes_summary"
)


@dataclass
class ParsedFeed:
    """What one document held: its title, its items in document order, what was wrong with it."""

    title: str
    items: list[Item] = field(default_factory=list)
    bozo: str | None = None  # why the document is malformed; entries may still have been read
    version: str = ""  # the format (rss20, atom10, rss10, jsonfeed11 …); "" when not a feed
    bodies: list[str] = field(default_factory=list)  # body_fingerprints of the items

    def __post_init__(self) -> None:
        if len(self.bodies) != len(self.items):  # computed here, in the parser's process
            self.bodies = body_fingerprints([item.text for item in self.items])

    @property
    def problem(self) -> str | None:
        """The error to record on the feed: set only when the body was not a feed at all."""
        if self.items or self.version:
            return None
        return self.bozo or "not a feed"


def parse_feed(body: bytes, headers: dict[str, str], feed_name: str, url: str) -> ParsedFeed:
    """Parse one downloaded document into Items (see the module docstring for the rules)."""
    response_headers = {k.lower(): v for k, v in headers.items()}
    if looks_like_json(body):
        title, version, raw, problem = parse_json_feed(body, url)
        if not version:
            problem = _not_a_feed(body, response_headers, problem)
        return ParsedFeed(visible_line(title), to_items(raw, feed_name), problem, version)
    # with a base, feedparser also "resolves" guids like "item-7" into URLs: uids would change
    # whenever the feed moves, so relative links are joined to `url` here instead
    response_headers.pop("content-location", None)
    readable, as_utf8 = declare_utf8(_defuse(body), response_headers)
    parsed = feedparser.parse(
        io.BytesIO(readable),
        response_headers=as_utf8,
        sanitize_html=False,  # html_to_text keeps only text, and is cheaper than sanitising
        resolve_relative_uris=False,
    )
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    exc = parsed.get("bozo_exception")
    bozo = f"malformed feed: {_describe(exc)}" if parsed.get("bozo") and exc else None
    if not version and not entries:
        bozo = _not_a_feed(body, response_headers, _describe(exc) if exc else None)
    feed = parsed.get("feed") or {}
    raw = [_raw_entry(entry, url) for entry in entries]
    return ParsedFeed(
        title=visible_line(_title(feed)), items=to_items(raw, feed_name), bozo=bozo, version=version
    )


def _defuse(body: bytes) -> bytes:
    """Drop an internal DTD that declares entities (billion laughs); real feeds have none."""
    first = _FIRST_ELEMENT.search(body)
    prolog = body[: first.start()] if first else body
    if b"<!ENTITY" not in prolog:
        return body
    return _INTERNAL_DTD.sub(b"", prolog, count=1) + body[len(prolog) :]


def _not_a_feed(body: bytes, headers: dict[str, str], why: str | None) -> str:
    start = body[:2048].lstrip().lower()
    content_type = headers.get("content-type", "none")
    if not start:
        what = "an empty body"
    elif _HTML_TAG.search(start) or b"<!doctype html" in start or "html" in content_type:
        what = "an HTML page (a home, error or login page?); check the feed's address"
    elif start.startswith((b"{", b"[")):
        what = "JSON, not RSS, Atom or JSON Feed"
    else:
        what = f"something unreadable ({why or 'no RSS or Atom element'})"
    return f"not a feed: the server sent {what} (content-type: {content_type})"


def _describe(exc: object) -> str:
    """feedparser's complaint without the '<unknown>:2:0:' prefix of SAX errors."""
    if isinstance(exc, SAXParseException):
        return exc.getMessage()  # its line numbers count a declaration feedparser added
    return str(exc) or "unreadable"


def _raw_entry(entry: Any, url: str) -> RawEntry:
    """One feedparser entry, its text chosen and made plain (identities come later)."""
    enclosures = [link.get("href") or "" for link in entry.get("links") or []
                  if link.get("rel") == "enclosure"]  # fmt: skip
    return RawEntry(
        guid=clean_text((entry.get("id") or "").strip()),
        link=_absolute(entry.get("link") or "", url),
        title=_title(entry),
        text=_own_text(entry),
        date=entry.get("published") or entry.get("updated") or "",
        published=_published(entry),
        enclosure=_absolute(enclosures[0], url) if enclosures else "",
    )


def _title(node: Any) -> str:
    title = node.get("title") or ""
    kind = (node.get("title_detail") or {}).get("type", "")
    return html_to_text(title) if "html" in kind else clean_text(title)


def _absolute(link: str, base: str) -> str:
    link = urljoin(base, link.strip()) if link.strip() else ""
    return link if urlsplit(link).scheme.lower() in ("http", "https") else ""


def _own_text(entry: Any) -> str:
    """The entry's own body: content (content:encoded, Atom content), else its description or
    summary; a media caption or a podcast blurb only when the entry has nothing else."""
    candidates = [c for c in entry.get("content") or [] if (c.get("value") or "").strip()]
    if candidates:
        best = max(candidates, key=lambda c: len(c.get("value") or ""))
        return to_text(best.get("value") or "", best.get("type", "text/html"))
    for key in ("summary", *_SECONDARY):
        if (entry.get(key) or "").strip():
            detail = entry.get(f"{key}_detail") or {}
            return to_text(entry[key], detail.get("type", "text/html"))
    return ""


def _published(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        if key not in entry:  # read directly, a missing updated_parsed warns and falls back
            continue
        parsed = entry[key]
        if parsed:
            try:
                return datetime(*parsed[:6], tzinfo=UTC)  # feedparser gives UTC
            except (TypeError, ValueError, OverflowError):
                continue
    return None
