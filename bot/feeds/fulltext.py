"""Full text for teaser entries: when to fetch the linked article, fetching it, its main text.

    if needs_full_text(item, feed.full_text):
        article = await fetch_article(fetcher, item.link)   # FullTextError when unusable
        item = best_text(item, article.text)

When is an entry a teaser (`full_text: auto`)? When its own text, once a WordPress
"The post X appeared first on Y." footer is set aside (full-content feeds carry it too), is
- shorter than SHORT_TEXT characters (600: about three sentences or 90 English words; counted
  in characters, not words, so that Chinese and Japanese text without spaces is judged too), or
- ends in an ellipsis ("…", "...", "[…]", "[...]"), or
- ends with a link text such as "Read more", "Continue reading", "Читать далее", "Читати далі".
Entries without a link are never fetched; `always` fetches every linked entry, `never` none.

The page is fetched with the feeds' Fetcher (same timeouts, size cap, conditional GET,
per-host limits, Retry-After and User-Agent) and its main text is extracted by trafilatura in a
worker thread. Navigation, sidebars, footers, cookie banners, "related" lists and comments are
left out; paragraphs, headings, list items and table rows become blocks separated by a blank
line, so rules with `within: paragraph` or `sentence` see the article's own structure.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import trafilatura

from bot.errors import FeedError, FeedThrottled, FullTextError
from bot.feeds.fetch import Fetcher
from bot.models import Item

SHORT_TEXT = 600  # characters: below this an entry's text is a teaser
ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
MAX_BAD_CHARACTERS = 0.01  # share of undecodable bytes above which a page is not text

_ELLIPSIS = re.compile(r"(?:\.\.\.|…)\s*[\]\)»”\"']*\s*$")
_READ_MORE = re.compile(
    r"(?:read more|read the (?:full|whole|rest of the) (?:story|article|report|post)|"
    r"continue reading|keep reading|full story|more\s*»|читать далее|читать полностью|"
    r"подробнее|читати далі|читати повністю|детальніше|докладніше)\W*$",
    re.IGNORECASE,
)
_FOOTER = re.compile(
    r"(?:^|\n\n)(?:the post .{1,300} appeared first on .{1,200}|"
    r"запись .{1,300} впервые появилась .{1,200}|"
    r"допис .{1,300} спершу з'явився .{1,200})$",
    re.IGNORECASE | re.DOTALL,
)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SNIFFED_TYPES = ("", "text/plain", "application/xml", "text/xml", "application/octet-stream")
_KINDS = {"pdf": "a PDF document", "json": "JSON data", "image/": "an image",
          "video/": "a video", "audio/": "an audio file", "zip": "an archive"}  # fmt: skip
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|p|div)\b",
                         re.IGNORECASE | re.DOTALL)  # fmt: skip
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_WHATWG_ALIASES = {"iso-8859-1": "windows-1252", "latin1": "windows-1252",
                   "us-ascii": "windows-1252", "ascii": "windows-1252"}  # fmt: skip
_BLOCKISH = frozenset({"p", "head", "list", "item", "quote", "table", "row", "code", "div"})


@dataclass(frozen=True)
class Article:
    """An article page's main text, with the validators for a conditional GET next time."""

    url: str  # the final address, after redirects
    text: str  # paragraphs separated by blank lines
    etag: str | None = None
    last_modified: str | None = None


# -- when ------------------------------------------------------------------------------------


def needs_full_text(item: Item, mode: str) -> bool:
    """Whether to fetch the item's linked article: `always`, `never`, or `auto` for teasers."""
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"full_text must be auto, always or never, not {mode!r}")
    if mode == "never" or not item.link:
        return False
    return mode == "always" or is_teaser(item.text)


def is_teaser(text: str) -> bool:
    """Short, cut off with an ellipsis, or ending in "read more" (see the module docstring)."""
    text = _FOOTER.sub("", text.strip()).strip()
    if len(text) < SHORT_TEXT:
        return True
    tail = text[-200:]
    return bool(_ELLIPSIS.search(tail) or _READ_MORE.search(tail))


# -- fetch -----------------------------------------------------------------------------------


async def fetch_article(
    fetcher: Fetcher,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    untrusted: bool = True,
) -> Article | None:
    """The article at `url`; None when the server says it has not changed (304).

    `untrusted` (links from feed content): internal addresses are refused, see bot.feeds.guard.

    Raises FullTextError (with `retry_after` when the server asked us to wait) when the page
    cannot be fetched, is not HTML, cannot be decoded or has no main text.
    """
    try:
        result = await fetcher.fetch(
            url,
            etag=etag,
            last_modified=last_modified,
            headers={"Accept": ACCEPT_HTML},
            untrusted=untrusted,
        )
    except FeedThrottled as exc:
        raise FullTextError(_reword(exc), status=exc.status, retry_after=exc.retry_after) from exc
    except FeedError as exc:
        raise FullTextError(_reword(exc), status=exc.status) from exc
    if result.status == 304 or result.body is None:
        return None
    content_type = result.headers.get("content-type", "")
    check_html(result.body, content_type, result.url)
    text = await asyncio.to_thread(
        extract_main_text, result.body, result.url, content_type=content_type
    )
    return Article(result.url, text, result.etag, result.last_modified)


def _reword(exc: FeedError) -> str:
    """The Fetcher speaks of feeds; here the same failure concerns an article page."""
    message = str(exc)
    for feed_words, page_words in (
        ("the feed is larger", "the page is larger"),
        ("there is no feed at this address", "there is no page at this address"),
        ("the feed was removed for good; find its new address or remove it",
         "the page was removed for good"),
        ("not a valid feed address", "not a valid web address"),
    ):  # fmt: skip
        message = message.replace(feed_words, page_words)
    return f"article {message}"


def check_html(body: bytes, content_type: str, url: str) -> None:
    """Raise FullTextError unless the response is (or, when untyped, looks like) an HTML page."""
    media = content_type.split(";")[0].strip().lower()
    if media in _HTML_TYPES:
        return
    if media in _SNIFFED_TYPES and _HTML_START.match(body[:4096]):
        return
    kind = next((name for key, name in _KINDS.items() if key in media), None)
    what = f"{kind} ({media})" if kind else f"a {media or 'untyped'} file"
    raise FullTextError(f"article {url}: the link leads to {what}, not a web page")


# -- extract ---------------------------------------------------------------------------------


def extract_main_text(html: bytes | str, url: str, *, content_type: str = "") -> str:
    """The page's main text, paragraphs separated by blank lines; FullTextError if none.

    CPU-bound (tens of milliseconds for a large page): call it with `asyncio.to_thread`.
    Bytes are decoded with the charset the server or the page declares; undeclared ones are
    left to trafilatura's detection.
    """
    document = html if isinstance(html, str) else decode_html(html, content_type, url)
    try:
        result: Any = trafilatura.bare_extraction(
            document,
            url=url or None,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            favor_precision=True,  # boilerplate out, even at the cost of a marginal paragraph
            with_metadata=False,
        )
    except (ValueError, TypeError) as exc:  # lxml gives up on some malformed documents
        raise FullTextError(f"article {url}: the page cannot be read as HTML ({exc})") from exc
    body = getattr(result, "body", None)
    text = "\n\n".join(_blocks(body)) if body is not None else ""
    if not text:
        raise FullTextError(f"article {url}: no article text found on the page")
    return text


def decode_html(body: bytes, content_type: str, url: str) -> bytes | str:
    """Text of the page in its declared charset (header first, then <meta>), else the bytes."""
    if b"\x00" in body[:4096] and not body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FullTextError(f"article {url}: the page is binary data, not text")
    if body.startswith(b"\xef\xbb\xbf"):
        return body.decode("utf-8-sig", errors="replace")
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return body.decode("utf-16", errors="replace")
    for charset in _declared_charsets(body, content_type):
        try:
            text = body.decode(charset, errors="replace")
        except LookupError:
            continue  # an unknown name: try the next declaration
        if text.count("\ufffd") > MAX_BAD_CHARACTERS * max(len(text), 1):
            raise FullTextError(
                f"article {url}: the page is not valid {charset} text, as it declares"
            )
        return text
    return body  # trafilatura tries UTF-8, then guesses


def _declared_charsets(body: bytes, content_type: str) -> list[str]:
    found = re.findall(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type, re.IGNORECASE)
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        found.append(meta.group(1).decode("ascii", errors="replace"))
    return [_WHATWG_ALIASES.get(name.lower(), name.lower()) for name in found]


def _blocks(root: Any) -> Iterator[str]:
    """One string per paragraph, heading, list item or table row of trafilatura's tree."""
    for br in root.iter("lb"):
        br.tail = " " + (br.tail or "")  # a line break separates words
    yield from _walk(root, top=True)


def _walk(element: Any, top: bool = False) -> Iterator[str]:
    if element.tag == "row":
        cells = [_clean(cell.itertext()) for cell in element]
        yield " | ".join(c for c in cells if c)
        return
    if not top and not any(child.tag in _BLOCKISH for child in element):
        if text := _clean(element.itertext()):
            yield text
        return
    if text := _clean([element.text or ""]):
        yield text
    for child in element:
        yield from _walk(child)
        if tail := _clean([child.tail or ""]):
            yield tail


def _clean(parts: Any) -> str:
    return " ".join("".join(parts).split())


# -- choose ----------------------------------------------------------------------------------


def best_text(item: Item, article_text: str) -> Item:
    """The item with the article's text when that says more than the feed did; same link.

    `content_hash` stays the feed's: it tells whether the *entry* changed, and an article
    fetched for an unchanged entry must not make it look edited on the next poll.
    """
    blocks = article_text.strip().split("\n\n")
    if blocks and _same_words(blocks[0], item.title):
        blocks = blocks[1:]  # the page repeats its headline, which is already the title
    text = "\n\n".join(blocks).strip()
    if len(text) <= len(item.text.strip()):
        return item
    return replace(item, text=text)


def _same_words(a: str, b: str) -> bool:
    return bool(b) and a.casefold().split() == b.casefold().split()
