"""JSON Feed 1.0 and 1.1 (jsonfeed.org) → RawEntry, which feedparser does not read.

Text follows the same rules as RSS and Atom: `content_html` (made plain), else `content_text`,
else `summary`; identities are given by bot/feeds/entries.py like any other format's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from bot.feeds.entries import RawEntry
from bot.feeds.htmltext import html_to_text, plain_to_text
from bot.identity import clean_text

_VERSIONS = {
    "https://jsonfeed.org/version/1": "jsonfeed10",
    "https://jsonfeed.org/version/1.1": "jsonfeed11",
}


def looks_like_json(body: bytes) -> bool:
    """A body that starts like a JSON object (after a BOM and whitespace)."""
    return body[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def parse_json_feed(body: bytes, url: str) -> tuple[str, str, list[RawEntry], str | None]:
    """(title, version, entries, problem); version "" and a problem when it is no JSON Feed."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return "", "", [], f"invalid JSON: {exc}"
    if not isinstance(document, dict):
        return "", "", [], "no JSON Feed object"
    version = str(document.get("version") or "").rstrip("/")
    name = _VERSIONS.get(version.replace("http://", "https://"))
    if name is None:
        return "", "", [], f"no JSON Feed version (version: {version or 'none'})"
    items = document.get("items")
    entries = (
        [_entry(i, url) for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    )
    return _line(document.get("title")), name, entries, None


def _entry(item: dict[str, Any], base: str) -> RawEntry:
    date = str(item.get("date_published") or item.get("date_modified") or "")
    attachments = item.get("attachments")
    first = attachments[0] if isinstance(attachments, list) and attachments else {}
    return RawEntry(
        guid=clean_text(str(item.get("id") or "").strip()),
        link=_absolute(item.get("url") or item.get("external_url"), base),
        title=_line(item.get("title")),
        text=_text(item),
        date=date,
        published=_date(date),
        enclosure=_absolute(first.get("url") if isinstance(first, dict) else None, base),
    )


def _text(item: dict[str, Any]) -> str:
    if isinstance(item.get("content_html"), str) and item["content_html"].strip():
        return html_to_text(item["content_html"])
    for key in ("content_text", "summary"):
        if isinstance(item.get(key), str) and item[key].strip():
            return plain_to_text(item[key])
    return ""


def _line(value: Any) -> str:
    return " ".join(clean_text(value).split()) if isinstance(value, str) else ""


def _absolute(link: Any, base: str) -> str:
    if not isinstance(link, str) or not link.strip():
        return ""
    link = urljoin(base, link.strip())
    return link if urlsplit(link).scheme.lower() in ("http", "https") else ""


def _date(value: str) -> datetime | None:
    """RFC 3339 as JSON Feed requires, in UTC; None when absent or unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
