"""Telegram message text for alerts and digests: HTML escaped, trimmed and split at 4096."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from bot.models import Alert, Match, Snippet

LIMIT = 4096  # Telegram's maximum message length
LEVEL_MARK = {"low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}
LEVEL_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
ELLIPSIS = "…"
MAX_TITLE = 300
MAX_FEED = 100
MIN_SNIPPET = 60  # below this a snippet says nothing; split the message instead


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


def when(published: datetime | None) -> str:
    """A publication time as readers expect it, or '' when unknown."""
    return published.strftime("%-d %b %Y, %H:%M UTC") if published else ""


def snippet_html(snippet: Snippet, limit: int | None = None) -> str:
    """A snippet (trimmed to `limit` visible characters) with its matched terms in bold."""
    return _snippet(snippet, limit, "<b>", "</b>", esc)


def snippet_plain(snippet: Snippet, limit: int | None = None) -> str:
    """A snippet with its matched terms marked **like this**."""
    return _snippet(snippet, limit, "**", "**", lambda s: s)


def _snippet(snippet: Snippet, limit: int | None, on: str, off: str, escape) -> str:
    text, spans = snippet.text, _clean_spans(snippet.highlights, len(snippet.text))
    cut = ""
    if limit is not None and len(text) > limit:
        end = max(limit - 1, 0)
        space = text.rfind(" ", 0, end)
        end = space if space > end * 0.6 else end
        text, cut = text[:end].rstrip(), ELLIPSIS
        spans = [(s, min(e, len(text))) for s, e in spans if s < len(text)]
    out, pos = [], 0
    for start, end in spans:
        out += [escape(text[pos:start]), on, escape(text[start:end]), off]
        pos = end
    out.append(escape(text[pos:]))
    return " ".join("".join(out).split()) + cut


def _clean_spans(spans: Iterable[tuple[int, int]], size: int) -> list[tuple[int, int]]:
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


def _ordered(matches: Iterable[Match]) -> list[Match]:
    return sorted(matches, key=lambda m: (LEVEL_ORDER.get(m.level, 9), m.title))


def _head_lines(alert: Alert, feed_title: str | None) -> list[str]:
    item = alert.item
    lines = [
        f"{mark(m.level)} <b>{esc(shorten(m.title, MAX_TITLE))}</b>"
        for m in _ordered(alert.matches)
    ]
    title = esc(shorten(item.title or item.link or "(untitled)", MAX_TITLE))
    link = html.escape(item.link, quote=True)
    lines.append(f'<a href="{link}"><b>{title}</b></a>' if item.link else f"<b>{title}</b>")
    source = shorten(feed_title or item.feed, MAX_FEED)
    lines.append(" · ".join(p for p in (f"<i>{esc(source)}</i>", when(item.published)) if p))
    return lines


def _snippet_lines(alert: Alert, limit: int | None) -> list[str]:
    matches = _ordered(alert.matches)
    lines: list[str] = []
    for m in matches:
        if not m.snippets:
            continue
        lines.append("")
        if len(matches) > 1:
            lines.append(f"<u>{esc(shorten(m.title, MAX_TITLE))}</u>")
        lines += [f"» {snippet_html(s, limit)}" for s in m.snippets[:3]]
    return lines


def render_alert(alert: Alert, feed_title: str | None = None) -> list[str]:
    """One alert as Telegram HTML messages (usually one); snippets trimmed before splitting."""
    head = _head_lines(alert, feed_title)
    count = sum(min(len(m.snippets), 3) for m in alert.matches)
    limit: int | None = None
    while True:
        text = "\n".join(head + _snippet_lines(alert, limit))
        if len(text) <= LIMIT or count == 0 or (limit is not None and limit <= MIN_SNIPPET):
            break
        longest = max(len(s.text) for m in alert.matches for s in m.snippets[:3])
        budget = (LIMIT - len("\n".join(head))) // max(count, 1) - 20
        limit = max(MIN_SNIPPET, min(budget, (limit or longest) * 3 // 4))
    return split_lines(text.split("\n"))


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
    plain = html.unescape(strip_tags(line))
    return esc(shorten(plain, limit // 5))


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


def render_plain(alert: Alert, feed_title: str | None = None) -> str:
    """The same alert as plain text for stdout (--dry-run): terms marked **like this**."""
    item = alert.item
    matches = _ordered(alert.matches)
    lines = [f"{mark(m.level)} {m.title}" for m in matches]
    lines.append(item.title or "(untitled)")
    if item.link:
        lines.append(item.link)
    lines.append(" · ".join(p for p in (feed_title or item.feed, when(item.published)) if p))
    for m in matches:
        if m.snippets:
            lines.append("")
            if len(matches) > 1:
                lines.append(f"[{m.title}]")
            lines += [f"» {snippet_plain(s)}" for s in m.snippets[:3]]
    return "\n".join(lines)


def render_digest(alerts: Sequence[Alert], day: date) -> list[str]:
    """One day's alerts as a digest grouped by topic, split into messages at the limit."""
    groups: dict[str, tuple[Match, list[Alert]]] = {}
    for alert in alerts:
        for m in alert.matches:
            groups.setdefault(m.rule_id, (m, []))[1].append(alert)
    count = len(alerts)
    heading = f"📋 <b>Digest for {day.strftime('%-d %b %Y')}</b> · {count} report"
    lines: list[tuple[str, str]] = [(heading + ("s" if count != 1 else ""), "")]
    if not alerts:
        lines.append(("Nothing matched your topics today.", ""))
    for m, items in sorted(
        groups.values(), key=lambda g: (LEVEL_ORDER.get(g[0].level, 9), g[0].title)
    ):
        header = f"{mark(m.level)} <b>{esc(shorten(m.title, MAX_TITLE))}</b>"
        lines += [("", ""), (header, "")]
        lines += [(_digest_line(a), header) for a in _by_time(items)]
    return _split_with_headers(lines)


def _by_time(alerts: list[Alert]) -> list[Alert]:
    return sorted(
        alerts, key=lambda a: (a.item.published is None, a.item.published or datetime.min)
    )


def _digest_line(alert: Alert) -> str:
    item = alert.item
    title = esc(shorten(item.title or item.link or "(untitled)", 200))
    link = f'<a href="{html.escape(item.link, quote=True)}">{title}</a>' if item.link else title
    time = item.published.strftime(", %H:%M") if item.published else ""
    return f"• {link} <i>({esc(shorten(item.feed, MAX_FEED))}{time})</i>"


def _split_with_headers(lines: list[tuple[str, str]]) -> list[str]:
    """Like split_lines, but a topic cut in two repeats its header in the next message."""
    chunks: list[list[str]] = [[]]
    for line, header in lines:
        size = sum(len(x) + 1 for x in chunks[-1])
        if chunks[-1] and size + len(line) > LIMIT:
            chunks.append([f"{header} (continued)"] if header else [])
        if chunks[-1] or line:
            chunks[-1].append(line)
    return ["\n".join(c).strip("\n") for c in chunks if c]


def render_matches(matches: Sequence[Match]) -> list[str]:
    """What /test shows: each topic that fired and its snippets (HTML)."""
    if not matches:
        return ["No topic would fire on that text."]
    lines = [f"{len(matches)} topic{'s' if len(matches) != 1 else ''} would fire:"]
    for m in _ordered(matches):
        lines += ["", f"{mark(m.level)} <b>{esc(m.title)}</b> <code>{esc(m.rule_id)}</code>"]
        lines += [f"» {snippet_html(s, 500)}" for s in m.snippets[:3]]
    return split_lines(lines)
