"""Telegram message text for alerts and /test: headline first, few snippets, sparing bold.

An alert reads top to bottom in the order a subscriber decides: the headline (linked), the
source and local time, the topics on one line, then at most three snippets for the whole
message, each sentence once, in report order, never the headline again. Bold marks only the
decisive terms (an `Emphasis` predicate says which) and stays under a quarter of the text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.models import Alert, Item, Match, Snippet
from bot.rules.text import sentence_spans

LIMIT = 4096  # Telegram's maximum message length
LEVEL_MARK = {"low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}
LEVEL_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
ELLIPSIS = "…"
MAX_TITLE = 300
MAX_FEED = 100
MAX_SNIPPETS = 3  # for the whole message, however many topics fired
SNIPPET_CHARS = 600  # three of these, the head and the topics line stay under LIMIT
TOPICS_CHARS = 1000  # the topics line names as many as fit, then "+N more"
BOLD_SHARE = 0.25  # bold stays under this share of the visible text
Decisive = Callable[[str], bool]  # is this highlighted text worth bold?


def esc(text: str) -> str:
    """Feed text made safe for Telegram HTML (only <, > and & matter outside attributes)."""
    return html.escape(text, quote=False)


def mark(level: str) -> str:
    """The emoji that stands for a rule level."""
    return LEVEL_MARK.get(level, "⚪")


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a word boundary when one is near."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


# -- time ------------------------------------------------------------------------------------
def zone(tz: str | None) -> ZoneInfo:
    """The subscriber's zone; UTC when unset or unknown."""
    try:
        return ZoneInfo(tz or "UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def zone_label(moment: datetime) -> str:
    """A local time's zone as people write it: EEST, CET, UTC, or UTC+03 (no abbreviation)."""
    name = moment.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


def local_time(moment: datetime, tz: str | None) -> datetime:
    """`moment` in the subscriber's zone; a naive one is taken as UTC (how items store it)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone(tz))


def when(published: datetime | None, tz: str | None = None) -> str:
    """A publication time in the subscriber's zone with its abbreviation
    ('14 Oct 2024, 21:30 EEST'), or '' when unknown."""
    if published is None:
        return ""
    local = local_time(published, tz)
    return f"{local.strftime('%-d %b %Y, %H:%M')} {zone_label(local)}"


# -- snippets: which, in what order, what in bold -------------------------------------------
def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _is_headline(snippet: Snippet, title: str) -> bool:
    core, head = _norm(snippet.text), _norm(title)
    if not core or not head:
        return False
    return core == head or core in head or (head in core and len(head) >= 0.6 * len(core))


def _locate(snippet: Snippet, item: Item) -> tuple[int, int] | None:
    """The sentence the snippet quotes, as a span over title + content (None: not found).

    A snippet is a slice of its sentence, with "…" where it was trimmed: two topics may quote
    different slices of one long sentence, and both locate to that sentence here."""
    core = snippet.text.strip(ELLIPSIS + " ")
    title = item.title or ""
    for offset, text in ((0, title), (len(title) + 1, item.text or "")):
        found = text.find(core) if core else -1
        if found >= 0:
            for start, end, _ in _sentences(text):
                if start <= found < end:
                    return offset + start, offset + end
            return offset + found, offset + found + len(core)
    return None


@lru_cache(maxsize=64)
def _sentences(text: str) -> list[tuple[int, int, int]]:
    """A report's sentence spans, split once for the many chats one alert goes to."""
    return sentence_spans(text)


def _same(a: tuple[str, tuple[int, int] | None], b: tuple[str, tuple[int, int] | None]) -> bool:
    """One sentence: the same words, or overlapping places in the report."""
    if a[0] == b[0]:
        return True
    return a[1] is not None and b[1] is not None and a[1][0] < b[1][1] and b[1][0] < a[1][1]


def ordered(matches: Iterable[Match]) -> list[Match]:
    """Most severe first, then by title."""
    return sorted(matches, key=lambda m: (LEVEL_ORDER.get(m.level, 9), m.title))


def pick_snippets(alert: Alert, limit: int = MAX_SNIPPETS) -> list[Snippet]:
    """Up to `limit` sentences for the whole alert: each topic's best first, each sentence
    once (its highlights merged across topics), never the headline, in report order."""
    ranked = [list(m.snippets) for m in ordered(alert.matches)]
    chosen: list[tuple[Snippet, tuple[str, tuple[int, int] | None]]] = []
    for depth in range(max((len(r) for r in ranked), default=0)):
        for snippets in ranked:
            if depth >= len(snippets) or _is_headline(snippets[depth], alert.item.title):
                continue
            snippet = snippets[depth]
            ident = (_norm(snippet.text), _locate(snippet, alert.item))
            twin = next((i for i, (_, other) in enumerate(chosen) if _same(ident, other)), None)
            if twin is not None and chosen[twin][1][0] == ident[0]:
                merged = chosen[twin][0].highlights + snippet.highlights
                chosen[twin] = (replace(chosen[twin][0], highlights=merged), ident)
            elif twin is None and len(chosen) < limit:
                chosen.append((snippet, ident))
    unknown = 1 << 30  # sentences not found in the report go last
    chosen.sort(key=lambda c: c[1][1][0] if c[1][1] is not None else unknown)
    return [snippet for snippet, _ in chosen]


def trim_snippet(snippet: Snippet, limit: int) -> Snippet:
    """The snippet cut to `limit` characters at a word boundary, highlights clipped."""
    spans = clean_spans(snippet.highlights, len(snippet.text))
    text = " ".join(snippet.text.split(" "))
    if len(text) <= limit:
        return Snippet(text, tuple(spans))
    end = max(limit - 1, 0)
    space = text.rfind(" ", 0, end)
    end = space if space > end * 0.6 else end
    cut = text[:end].rstrip()
    kept = tuple((s, min(e, len(cut))) for s, e in spans if s < len(cut))
    return Snippet(cut + ELLIPSIS, kept)


def clean_spans(spans: Iterable[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Highlights sorted, clipped to the text and merged where they overlap."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((max(s, 0), min(e, size)) for s, e in spans):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def choose_bold(
    snippets: Sequence[Snippet], visible: int, decisive: Decisive | None
) -> list[Snippet]:
    """The snippets with only the highlights worth bold: decisive terms, each term once per
    message, and in all under BOLD_SHARE of the `visible` characters (earlier ones win)."""
    seen: set[str] = set()
    kept: list[list[tuple[int, int]]] = []
    for snippet in snippets:
        spans = []
        for start, end in clean_spans(snippet.highlights, len(snippet.text)):
            term = _norm(snippet.text[start:end])
            if term in seen or (decisive is not None and not decisive(snippet.text[start:end])):
                continue
            seen.add(term)
            spans.append((start, end))
        kept.append(spans)
    budget = BOLD_SHARE * visible - 1
    while sum(e - s for spans in kept for s, e in spans) > budget:
        # drop the last bold of the snippet holding the most, so each keeps its first
        fullest = max(range(len(kept)), key=lambda i: (len(kept[i]), i))
        kept[fullest].pop()
    return [Snippet(s.text, tuple(k)) for s, k in zip(snippets, kept, strict=True)]


def snippet_html(snippet: Snippet) -> str:
    """A snippet with its highlights in bold (escaped)."""
    return _marked(snippet, "<b>", "</b>", esc)


def snippet_plain(snippet: Snippet) -> str:
    """A snippet with its highlights marked **like this**."""
    return _marked(snippet, "**", "**", lambda s: s)


def _marked(snippet: Snippet, on: str, off: str, escape: Callable[[str], str]) -> str:
    text, out, pos = snippet.text, [], 0
    for start, end in clean_spans(snippet.highlights, len(text)):
        out += [escape(text[pos:start]), on, escape(text[start:end]), off]
        pos = end
    out.append(escape(text[pos:]))
    return " ".join("".join(out).split())


# -- alerts ----------------------------------------------------------------------------------
def topics_line(matches: Iterable[Match], limit: int = TOPICS_CHARS) -> str:
    """Every topic with its level marker on one line, most severe first (+N more past limit)."""
    parts = [f"{mark(m.level)} {shorten(m.title, 80)}" for m in ordered(matches)]
    shown: list[str] = []
    for part in parts:
        if sum(len(p) + 3 for p in shown) + len(part) > limit:
            break
        shown.append(part)
    rest = len(parts) - len(shown)
    return " · ".join(shown) + (f" · +{rest} more" if rest else "")


def _head(alert: Alert, feed_title: str | None, tz: str | None) -> tuple[str, str, str, str]:
    """(headline, source, local time, topics) as plain text."""
    item = alert.item
    title = shorten(item.title or item.link or "(untitled)", MAX_TITLE)
    source = shorten(feed_title or item.feed, MAX_FEED)
    return title, source, when(item.published, tz), topics_line(alert.matches)


def _visible(head: tuple[str, ...], snippets: Sequence[Snippet]) -> int:
    """At most the visible length of the message (runs of spaces collapse when rendered)."""
    quoted = sum(len(" ".join(s.text.split())) + 3 for s in snippets)
    return sum(len(x) for x in head) + quoted


def render_alert(
    alert: Alert,
    feed_title: str | None = None,
    tz: str | None = None,
    decisive: Decisive | None = None,
) -> list[str]:
    """One alert as Telegram HTML (one message; split at lines only if it ever had to be)."""
    head = _head(alert, feed_title, tz)
    snippets = [trim_snippet(s, SNIPPET_CHARS) for s in pick_snippets(alert)]
    snippets = choose_bold(snippets, _visible(head, snippets), decisive)
    title, source, stamp, topics = head
    link = html.escape(alert.item.link, quote=True)
    lines = [f'<a href="{link}">{esc(title)}</a>' if alert.item.link else esc(title)]
    lines.append(" · ".join(p for p in (f"<i>{esc(source)}</i>", esc(stamp)) if p))
    lines.append(esc(topics))
    if snippets:
        lines.append("")
        lines += [f"» {snippet_html(s)}" for s in snippets]
    return split_lines(lines)


def render_plain(
    alert: Alert,
    feed_title: str | None = None,
    tz: str | None = None,
    decisive: Decisive | None = None,
) -> str:
    """The same alert as plain text for stdout (--dry-run): decisive terms marked **like this**
    under the same rules as bold in Telegram."""
    head = _head(alert, feed_title, tz)
    title, source, stamp, topics = head
    byline = " · ".join(p for p in (source, stamp) if p)
    lines = [title] + ([alert.item.link] if alert.item.link else []) + [byline, topics]
    snippets = [trim_snippet(s, SNIPPET_CHARS) for s in pick_snippets(alert)]
    snippets = choose_bold(snippets, _visible(head, snippets), decisive)
    if snippets:
        lines.append("")
        lines += [f"» {snippet_plain(s)}" for s in snippets]
    return "\n".join(lines)


def render_matches(
    matches: Sequence[Match], text: str, tz: str | None = None, decisive: Decisive | None = None
) -> list[str]:
    """What /test shows: the alert a report with this text would bring, and the topic ids."""
    if not matches:
        return ["No topic would fire on that text."]
    ids = ", ".join(f"<code>{esc(m.rule_id)}</code>" for m in ordered(matches))
    count = f"{len(matches)} topic{'s' if len(matches) != 1 else ''} would fire"
    item = Item("test", "test", "test", "Your text (/test)", "", datetime.now(UTC), text)
    alert = Alert(item, tuple(matches))
    body = render_alert(alert, feed_title="/test", tz=tz, decisive=decisive)
    return split_lines([f"{count} ({ids}). The alert would read:", "", *body])


# -- splitting -------------------------------------------------------------------------------
def split_lines(lines: Sequence[str], limit: int = LIMIT) -> list[str]:
    """Lines packed into messages of at most `limit` characters, never splitting a line."""
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        line = line if len(line) <= limit else _hard_cut(line, limit)
        if chunks[-1] and size + 1 + len(line) > limit:
            chunks.append([])
            size = 0
        if not chunks[-1] and not line.strip():
            continue  # a message never starts with a blank line
        size += len(line) + (1 if chunks[-1] else 0)
        chunks[-1].append(line)
    return ["\n".join(c).strip("\n") for c in chunks if any(x.strip() for x in c)]


def _hard_cut(line: str, limit: int) -> str:
    """Last resort for a line that cannot fit: its text without markup, cut."""
    return esc(shorten(visible_text(line), limit // 5))


def strip_tags(text: str) -> str:
    """The text of Telegram HTML without its tags (entities left escaped)."""
    out, inside = [], False
    for ch in text:
        if ch == "<":
            inside = True
        elif ch == ">" and inside:
            inside = False
        elif not inside:
            out.append(ch)
    return "".join(out)


def visible_text(text: str) -> str:
    """What a reader sees of Telegram HTML: the text without tags, entities decoded."""
    return html.unescape(strip_tags(text))
