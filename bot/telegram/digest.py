"""Digests (pure): when the next one is due, and its text: the day's stories once each, most
severe first, in the reader's time."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta

from bot.models import Alert
from bot.telegram.messages import (
    LEVEL_ORDER,
    LIMIT,
    MAX_FEED,
    esc,
    local_time,
    mark,
    ordered,
    shorten,
    zone,
    zone_label,
)

MAX_HEADLINE = 200


def render_digest(
    alerts: Sequence[Alert],
    day: date,
    tz: str | None = None,
    feed_titles: Mapping[str, str] | None = None,
) -> list[str]:
    """One day's alerts as a digest: a local-date header, then one line per story (level
    marker, local time, linked headline, source, topics); split into messages at the limit."""
    count = len(alerts)
    now_label = zone_label(datetime.combine(day, time(12), zone(tz)))
    heading = (
        f"📋 <b>Digest · {day.strftime('%a %-d %b %Y')}</b> · {count} report"
        f"{'s' if count != 1 else ''} · times in {esc(now_label)}"
    )
    lines = [heading, ""]
    if not alerts:
        lines.append("Nothing matched your topics today.")
    for alert in sorted(alerts, key=_severity_then_time):
        lines.append(story_line(alert, day, tz, feed_titles or {}))
    return _pack(lines)


def _severity_then_time(alert: Alert) -> tuple[int, float]:
    levels = [LEVEL_ORDER.get(m.level, 9) for m in alert.matches] or [9]
    published = alert.item.published
    return min(levels), published.timestamp() if published else float("inf")


def story_line(alert: Alert, day: date, tz: str | None, feed_titles: Mapping[str, str]) -> str:
    """'🟠 21:30 Headline — Source · Topic, Topic' (the weekday too when not `day`)."""
    item, matches = alert.item, ordered(alert.matches)
    title = esc(shorten(item.title or item.link or "(untitled)", MAX_HEADLINE))
    link = f'<a href="{html.escape(item.link, quote=True)}">{title}</a>' if item.link else title
    source = shorten(feed_titles.get(item.feed) or item.feed, MAX_FEED)
    topics = ", ".join(shorten(m.title, 60) for m in matches[:3])
    topics += f" +{len(matches) - 3}" if len(matches) > 3 else ""
    level = mark(matches[0].level) if matches else "⚪"
    return f"{level} {_local(item.published, day, tz)}{link} — <i>{esc(source)}</i> · {esc(topics)}"


def _local(published: datetime | None, day: date, tz: str | None) -> str:
    if published is None:
        return ""
    local = local_time(published, tz)
    return local.strftime("%H:%M " if local.date() == day else "%a %H:%M ")


def _pack(lines: list[str]) -> list[str]:
    """Lines packed into messages under the limit; a later message says it continues."""
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if chunks[-1] and size + len(line) + 1 > LIMIT:
            chunks.append(["📋 (continued)"])
            size = len(chunks[-1][0])
        chunks[-1].append(line)
        size += len(line) + 1
    return ["\n".join(c).strip("\n") for c in chunks if c]


def digest_slot(after: float, digest_time: str, tz: str | None) -> float:
    """The first digest moment (HH:MM in zone `tz`) at or after the timestamp `after`."""
    hour, minute = (int(x) for x in digest_time.split(":"))
    local = datetime.fromtimestamp(after, zone(tz))
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot.timestamp() < after:
        slot = (local + timedelta(days=1)).replace(
            hour=hour, minute=minute, second=0, microsecond=0
        )
    return slot.timestamp()


def digest_day(now: float, tz: str | None) -> date:
    """Today's date in the subscriber's zone."""
    return datetime.fromtimestamp(now, zone(tz)).date()
