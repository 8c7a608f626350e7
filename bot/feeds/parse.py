"""Feed bytes → Items: feedparser, stable uids, story keys, plain text from HTML.

`parse_feed` is CPU-bound and synchronous: callers on the event loop run it as
``await asyncio.to_thread(parse_feed, body, headers, name, url)``.

Identity rules:
- uid: the entry's guid/id, else its link, else ``sha256:`` of title, date and text. When one
  document repeats a guid for entries with *different* links (or, without links, different
  text), each later one gets ``guid#<12 hex of sha256(link)>``, so two stories never collapse
  into one; a repeat with the same link is the same entry listed twice and is dropped.
- story_key: `normalize_link(link)`, else ``text:`` + `text_fingerprint(title, text)`.

A body that is not a feed at all (an HTML page, JSON, garbage, nothing) gives a ParsedFeed with
no items whose `problem` says so; a malformed feed still yields its entries, with `bozo` set.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import feedparser

from bot.identity import normalize_link, sha256_hex, text_fingerprint
from bot.models import Item
from bot.rules.text import strip_invisible

_BLOCK = frozenset(
    "p div br li ul ol dl dt dd h1 h2 h3 h4 h5 h6 blockquote pre table tr hr section article "
    "header footer aside main figure figcaption address details summary".split()
)
# never words of the report; all of these have a required end tag, so skipping is balanced
_SKIP = frozenset(
    "script style iframe form nav noscript template svg math object button select textarea "
    "title audio video canvas".split()
)
_CELL = frozenset({"td", "th"})
_INTERNAL_DTD = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.DOTALL)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z]")


@dataclass
class ParsedFeed:
    """What one document held: its title, its items in document order, what was wrong with it."""

    title: str
    items: list[Item] = field(default_factory=list)
    bozo: str | None = None  # why the document is malformed; entries may still have been read
    version: str = ""  # feedparser's name for the format (rss20, atom10 …); "" when not a feed

    @property
    def problem(self) -> str | None:
        """The error to record on the feed: set only when the body was not a feed at all."""
        if self.items or self.version:
            return None
        return self.bozo or "not a feed"


def parse_feed(body: bytes, headers: dict[str, str], feed_name: str, url: str) -> ParsedFeed:
    """Parse one downloaded document into Items (see the module docstring for the rules)."""
    response_headers = {k.lower(): v for k, v in headers.items()}
    # with a base, feedparser also "resolves" guids like "item-7" into URLs: uids would change
    # whenever the feed moves, so relative links are joined to `url` here instead
    response_headers.pop("content-location", None)
    parsed = feedparser.parse(
        io.BytesIO(_defuse(body)),
        response_headers=response_headers,
        sanitize_html=False,  # html_to_text keeps only text, and is cheaper than sanitising
        resolve_relative_uris=False,
    )
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    exc = parsed.get("bozo_exception")
    bozo = f"malformed feed: {_describe(exc)}" if parsed.get("bozo") and exc else None
    if not version and not entries:
        bozo = _not_a_feed(body, response_headers, exc)
    feed = parsed.get("feed") or {}
    return ParsedFeed(
        title=_title(feed),
        items=_items(entries, feed_name, url),
        bozo=bozo,
        version=version,
    )


def _defuse(body: bytes) -> bytes:
    """Drop an internal DTD that declares entities (billion laughs); real feeds have none."""
    first = _FIRST_ELEMENT.search(body)
    prolog = body[: first.start()] if first else body
    if b"<!ENTITY" not in prolog:
        return body
    return _INTERNAL_DTD.sub(b"", prolog, count=1) + body[len(prolog) :]


def _not_a_feed(body: bytes, headers: dict[str, str], exc: object) -> str:
    start = body[:512].lstrip().lower()
    if not start:
        what = "an empty body"
    elif b"<html" in start or b"<!doctype html" in start:
        what = "an HTML page (a home, error or login page?); check the feed's address"
    elif start.startswith((b"{", b"[")):
        what = "JSON, not RSS or Atom"
    else:
        what = f"something unreadable ({_describe(exc) if exc else 'no RSS or Atom element'})"
    content_type = headers.get("content-type", "none")
    return f"not a feed: the server sent {what} (content-type: {content_type})"


def _describe(exc: object) -> str:
    """feedparser's complaint without the '<unknown>:2:0:' prefix of SAX errors."""
    if isinstance(exc, SAXParseException):
        return exc.getMessage()  # its line numbers count a declaration feedparser added
    return str(exc) or "unreadable"


def _items(entries: list[Any], feed_name: str, url: str) -> list[Item]:
    items: list[Item] = []
    seen: dict[str, set[str]] = {}  # uid → the links (or texts) already given that uid
    for entry in entries:
        item = entry_to_item(entry, feed_name, url)
        mark = item.link or item.content_hash
        if item.uid not in seen:
            seen[item.uid] = {mark}
        elif mark in seen[item.uid]:
            continue  # the same entry listed twice
        else:
            seen[item.uid].add(mark)
            item = replace(item, uid=f"{item.uid}#{sha256_hex(mark)[:12]}")
        items.append(item)
    return items


def entry_to_item(entry: Any, feed_name: str, url: str) -> Item:
    """One feedparser entry as an Item (uid before de-duplication within the document)."""
    title = _title(entry)
    link = _absolute(entry.get("link") or "", url)
    text = strip_invisible(_richest_text(entry))  # bidi overrides, zero-width spaces: not shown
    date = entry.get("published") or entry.get("updated") or ""
    uid = (entry.get("id") or "").strip() or link
    if not uid:
        uid = "sha256:" + sha256_hex(f"{title}\n{date}\n{text}")
    story_key = normalize_link(link) if link else "text:" + text_fingerprint(title, text)
    return Item(
        feed=feed_name,
        uid=uid,
        story_key=story_key,
        title=title,
        link=link,
        published=_published(entry),
        text=text,
        content_hash=sha256_hex(f"{title}\n{text}"),
    )


def _title(node: Any) -> str:
    title = node.get("title") or ""
    kind = (node.get("title_detail") or {}).get("type", "")
    if "html" in kind:
        title = html_to_text(title)
    return " ".join(strip_invisible(title).split())


def _absolute(link: str, base: str) -> str:
    link = urljoin(base, link.strip()) if link.strip() else ""
    return link if urlsplit(link).scheme.lower() in ("http", "https") else ""


def _richest_text(entry: Any) -> str:
    """Plain text of content, else summary (RSS description is feedparser's summary)."""
    candidates = [c for c in entry.get("content") or [] if (c.get("value") or "").strip()]
    if candidates:
        best = max(candidates, key=lambda c: len(c.get("value") or ""))
        return _to_text(best.get("value") or "", best.get("type", "text/html"))
    detail = entry.get("summary_detail") or {}
    return _to_text(entry.get("summary") or "", detail.get("type", "text/html"))


def _to_text(value: str, kind: str) -> str:
    if "html" in kind:
        return html_to_text(value)
    blocks = (" ".join(block.split()) for block in re.split(r"\n\s*\n", value))
    return "\n\n".join(block for block in blocks if block)


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


class _TextExtractor(HTMLParser):
    """Collects text blocks; block tags end a paragraph, skipped tags drop their content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._skipping: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping[tag] = self._skipping.get(tag, 0) + 1
        elif tag in _BLOCK:
            self.flush()
        elif tag in _CELL:
            self._current.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:  # <br/>, <hr/>; a self-closed <iframe/> has nothing to skip
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if self._skipping.get(tag):
            self._skipping[tag] -= 1
        elif tag in _BLOCK:
            self.flush()
        elif tag in _CELL:
            self._current.append(" ")

    def handle_data(self, data: str) -> None:
        if not any(self._skipping.values()):
            self._current.append(data)

    def flush(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.blocks.append(text)
        self._current.clear()


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or page: paragraphs separated by "\\n\\n", no markup."""
    if "<" not in html and "&" not in html:
        return _to_text(html, "text/plain")
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    extractor.flush()
    return "\n\n".join(extractor.blocks)
