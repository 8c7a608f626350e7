"""The bot's state, gathered once, rendered as plain text (CLI) or Telegram HTML (/status, /feeds).

`gather` reads the facts from the store; `status_lines` and `feed_lines` only format them, so
`alertbot status` and `/status`, `alertbot feeds` and `/feeds` can never tell different stories.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.durations import approximate
from bot.logs import redact
from bot.models import Feed

OUTBOX_STATES = ("pending", "sent", "failed", "cancelled")


class FeedHealth(Protocol):
    """What the store knows of one feed (bot.store.FeedState)."""

    name: str
    url: str
    last_fetch: float | None
    last_success: float | None
    error_count: int
    last_error: str | None
    last_error_at: float | None
    next_fetch: float | None
    disabled: bool
    throttled_until: float | None
    throttle_reason: str | None
    fulltext_failures: int
    fulltext_error: str | None
    fulltext_error_at: float | None
    items: int


@dataclass(frozen=True)
class FeedFacts:
    """One feed as configured (when known) beside what the store recorded of it."""

    name: str
    url: str
    configured: bool  # listed in the configuration (False: only the database knows it)
    enabled: bool
    state: FeedHealth | None


@dataclass(frozen=True)
class StatusFacts:
    """Everything the status report shows, read at one moment."""

    now: float
    database: str | None
    cycle: dict[str, Any] | None
    feeds: list[FeedFacts]
    outbox: dict[str, int]
    failed: list[Any]  # the latest failed outbox rows (bot.store.OutboxRow)
    subscribers: dict[str, int]  # rule id -> active subscribers
    topics: list[str]  # every rule id, so topics nobody follows show 0
    feedback: dict[str, tuple[int, int]] = field(default_factory=dict)  # rule -> marks, stories


def gather(
    store: Any,
    now: float,
    feeds: Sequence[Feed] = (),
    topics: Sequence[str] = (),
    database: str | None = None,
) -> StatusFacts:
    """Read the report's facts from the store; `feeds` are the configured ones, if known."""
    states = {state.name: state for state in store.feed_health()}
    facts = [FeedFacts(f.name, f.url, True, f.enabled, states.pop(f.name, None)) for f in feeds]
    facts += [FeedFacts(s.name, s.url, not feeds, True, s) for s in states.values()]
    outbox = store.outbox_counts()
    failed = store.outbox_rows("failed")[-5:] if outbox.get("failed") else []
    subscribers = store.subscriber_counts()
    return StatusFacts(
        now=now,
        database=database,
        cycle=store.last_cycle(),
        feeds=facts,
        outbox=outbox,
        failed=failed,
        subscribers=subscribers,
        topics=sorted(set(topics) | set(subscribers)),
        feedback=store.feedback_counts(),  # readers' "Not relevant" taps
    )


class Markup:
    """Plain text: no markup, nothing escaped (secrets redacted, as in the logs)."""

    def bold(self, text: str) -> str:
        return text

    def text(self, text: str) -> str:
        return redact(text)

    def heading(self, text: str) -> list[str]:
        """A report's title line: none in a terminal, where the command already names it."""
        return []


class HtmlMarkup(Markup):
    """Telegram HTML: bold as <b>, every piece of stored text escaped."""

    def bold(self, text: str) -> str:
        return f"<b>{html.escape(text, quote=False)}</b>"

    def text(self, text: str) -> str:
        return html.escape(redact(text), quote=False)

    def heading(self, text: str) -> list[str]:
        return [self.bold(text)]


PLAIN, HTML = Markup(), HtmlMarkup()


def status_lines(facts: StatusFacts, markup: Markup = PLAIN) -> list[str]:
    """The whole report: last cycle, feeds in one line each, outbox, subscribers per topic."""
    m = markup
    lines = m.heading("Status")
    if facts.database:
        lines.append(f"database: {m.text(facts.database)}")
    lines.append(_cycle_line(facts.cycle, facts.now))
    lines.append(_feeds_summary(facts.feeds))
    lines += [f"  {m.text(f.name)}: {m.text(feed_health(f, facts.now))}" for f in facts.feeds]
    counts = ", ".join(f"{facts.outbox.get(k, 0)} {k}" for k in OUTBOX_STATES)
    lines.append(f"outbox: {counts}")
    lines += [
        f"  failed: row {r.id} to chat {r.chat_id}: {m.text((r.last_error or '')[:200])}"
        for r in facts.failed
    ]
    lines.append("subscribers per topic:" + ("" if facts.topics else " no topics"))
    lines += [f"  {m.text(t)}: {facts.subscribers.get(t, 0)}" for t in facts.topics]
    lines.append("marked not relevant per topic:" + ("" if facts.feedback else " none yet"))
    lines += [
        f"  {m.text(topic)}: {_plural(marks, 'mark')} on {_plural(stories, 'story')}"
        for topic, (marks, stories) in facts.feedback.items()
    ]
    return lines


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


def _cycle_line(cycle: dict[str, Any] | None, now: float) -> str:
    if not cycle or cycle.get("finished") is None:
        return "last cycle: none finished yet"
    finished = float(cycle["finished"])
    started = float(cycle.get("started") or finished)
    stats = cycle.get("stats") or {}
    detail = ", ".join(f"{k} {v}" for k, v in stats.items() if not isinstance(v, dict | list))
    took = f" (took {finished - started:.1f}s)"
    return f"last cycle: finished {approximate(now - finished)} ago{took}" + (
        f": {detail}" if detail else ""
    )


def _feeds_summary(feeds: list[FeedFacts]) -> str:
    states = [f.state for f in feeds if f.state is not None]
    failing = sum(1 for s in states if s.error_count and not s.disabled)
    disabled = sum(1 for f in feeds if not f.enabled or (f.state and f.state.disabled))
    throttled = sum(1 for s in states if s.throttled_until and not s.disabled)
    fulltext = sum(1 for s in states if s.fulltext_failures)
    extra = f", throttled {throttled}" if throttled else ""
    extra += f", with full-text failures {fulltext}" if fulltext else ""
    return f"feeds: {len(feeds)}, failing {failing}, disabled {disabled}{extra}"


def _state_word(state: FeedHealth) -> str:
    if state.disabled:
        return "disabled"
    if state.error_count:
        return "failing"
    return "throttled" if state.throttled_until else "ok"


def feed_health(feed: FeedFacts, now: float) -> str:
    """One feed's health in a line: state, last success, next fetch, full text, items seen."""
    state = feed.state
    if not feed.enabled:
        return "disabled in the configuration"
    if state is None or state.last_fetch is None:
        return "not fetched yet" + _next_fetch_part(state, now)
    word = _state_word(state)
    if word == "disabled":
        parts = [f"disabled: {state.last_error or 'gone'}"]
    elif word == "failing":
        parts = [f"failing ({state.error_count} errors in a row, last: {state.last_error})"]
    elif word == "throttled":
        parts = [f"throttled: {state.throttle_reason or 'asked to wait'}"]
    else:
        parts = ["ok"]
    if state.last_success:
        parts.append(f"last success {approximate(now - state.last_success)} ago")
    else:
        parts.append("never fetched successfully")
    if state.next_fetch and not state.disabled:
        parts.append(f"next fetch in {approximate(max(0.0, state.next_fetch - now))}")
    if state.fulltext_failures:
        parts.append(
            f"full text failed {state.fulltext_failures}x (last "
            f"{approximate(max(0.0, now - (state.fulltext_error_at or now)))} ago: "
            f"{state.fulltext_error})"
        )
    parts.append(f"{state.items} item{'' if state.items == 1 else 's'} seen")
    return ", ".join(parts)


def _next_fetch_part(state: FeedHealth | None, now: float) -> str:
    if state is None or not state.next_fetch:
        return ": first fetch at the next poll cycle"
    return f": first fetch {_when(state.next_fetch, now)}"


def feed_lines(facts: StatusFacts, markup: Markup = PLAIN) -> list[str]:
    """Every feed as a block: address, status, last success and error, next fetch, items."""
    m, now = markup, facts.now
    lines = m.heading("Feeds")
    for feed in facts.feeds:
        state = feed.state
        lines.append(f"{m.bold(feed.name)}  {m.text(state.url if state else feed.url)}")
        if not feed.enabled:
            lines.append("  status: disabled in the configuration")
        if state is None or state.last_fetch is None:
            lines.append("  status: not fetched yet")
            lines.append(f"  next fetch: {_when(state.next_fetch if state else None, now, True)}")
            continue
        lines += [f"  {key}: {m.text(value)}" for key, value in _feed_details(state, now)]
    return lines if facts.feeds else [*lines, "no feeds configured"]


def _feed_details(state: FeedHealth, now: float) -> list[tuple[str, str]]:
    status = _state_word(state)
    details = [("status", status), ("last success", _when(state.last_success, now))]
    if status == "throttled":
        reason = state.throttle_reason or "asked to wait"
        details.append(("throttled", f"{reason}, until {_when(state.throttled_until, now, True)}"))
    if state.error_count or state.disabled:
        details.append(("consecutive errors", str(state.error_count)))
        if state.last_error:
            details.append(
                ("last error", f"{state.last_error} ({_when(state.last_error_at, now)})")
            )
    if state.fulltext_failures:
        details.append(("full-text failures", str(state.fulltext_failures)))
        details.append(
            (
                "last full-text failure",
                f"{state.fulltext_error} ({_when(state.fulltext_error_at, now)})",
            )
        )
    next_fetch = "never (disabled)" if state.disabled else _when(state.next_fetch, now, True)
    details += [("next fetch", next_fetch), ("items seen", str(state.items))]
    return details


def _when(moment: float | None, now: float, upcoming: bool = False) -> str:
    if moment is None:
        return "at the next poll cycle" if upcoming else "never"
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = moment - now
    if upcoming and delta <= 0:
        return f"{stamp} (due now)"
    span = approximate(abs(delta))
    return f"{stamp} ({'in ' + span if delta > 0 else span + ' ago'})"
