"""Operations commands: `alertbot health` (for Docker's HEALTHCHECK) and `alertbot status`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.config import Settings, add_config_option, settings_from_args
from bot.durations import approximate
from bot.errors import AlertbotError

if TYPE_CHECKING:
    from bot.store import FeedState, Store

# A cycle older than this many shortest intervals means the poller is stuck or gone.
STALE_AFTER_INTERVALS = 3


def register(commands: argparse._SubParsersAction) -> None:
    """Add `health` and `status` to the command tree."""
    health = commands.add_parser(
        "health",
        help="exit 0 when the bot is polling and its database is writable (Docker HEALTHCHECK)",
        description="Exit 0 when the last poll cycle finished within about three of the "
        "shortest feed interval and the database is writable; otherwise print why and exit 1.",
    )
    add_config_option(health)
    health.set_defaults(handler=run_health)
    status = commands.add_parser(
        "status",
        help="show feeds' health, the last cycle, the outbox and subscribers per topic",
        description="Print what Telegram's /status shows: feeds' health, the last poll cycle, "
        "the outbox backlog and failures, and subscribers per topic.",
    )
    add_config_option(status)
    status.set_defaults(handler=run_status)


def run_health(args: argparse.Namespace, clock: Callable[[], float] = time.time) -> int:
    """One line and exit 0 when healthy; one line saying why and exit 1 otherwise."""
    try:
        settings = settings_from_args(args)
        problem = health_problem(settings, clock())
    except (AlertbotError, OSError) as exc:
        problem = str(exc)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


def health_problem(settings: Settings, now: float) -> str | None:
    """Why the bot is unhealthy, or None: a recent finished cycle and a writable database."""
    database = settings.database
    if not database.exists():
        return f"no database at {database} yet: has `alertbot run` started?"
    from bot.store import Store  # imported here so `--help` stays fast

    with Store(database) as store:
        cycle = store.last_cycle()
        store.check_writable()
    if cycle is None or cycle.get("finished") is None:
        return f"no poll cycle has finished yet (database {database})"
    limit = STALE_AFTER_INTERVALS * settings.shortest_interval
    age = now - float(cycle["finished"])
    if age > limit:
        return (
            f"the last poll cycle finished {approximate(age)} ago, more than {approximate(limit)} "
            f"({STALE_AFTER_INTERVALS} x the shortest feed interval): is the poller stuck?"
        )
    return None


def run_status(args: argparse.Namespace, clock: Callable[[], float] = time.time) -> int:
    """Print the bot's state; exit 1 with one line when it cannot be read."""
    try:
        settings = settings_from_args(args)
        if not settings.database.exists():
            print(
                f"alertbot status: no database at {settings.database} yet: "
                "run `alertbot run` first",
                file=sys.stderr,
            )
            return 1
        from bot.store import Store

        with Store(settings.database) as store:
            lines = status_lines(store, settings, clock())
    except (AlertbotError, OSError) as exc:
        print(f"alertbot status: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def status_lines(store: Store, settings: Settings, now: float) -> list[str]:
    """The status report as plain lines (also what Telegram's /status can show)."""
    lines = [f"database: {settings.database}"]
    lines += _cycle_lines(store.last_cycle(), now)
    lines += _feed_lines(store, settings, now)
    counts = store.outbox_counts()
    lines.append(
        "outbox: "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("pending", "sent", "failed", "cancelled"))
    )
    failed = store.outbox_rows("failed")[-5:] if counts.get("failed") else []
    lines += [f"  failed: row {r.id} to chat {r.chat_id}: {r.last_error}" for r in failed]
    subscribers = store.subscriber_counts()
    lines.append("subscribers per topic:" + ("" if subscribers else " none yet"))
    lines += [f"  {topic}: {n}" for topic, n in sorted(subscribers.items())]
    marks = store.feedback_counts()  # readers' "Not relevant" taps (alertbot rules feedback)
    lines.append("marked not relevant per topic:" + ("" if marks else " none yet"))
    lines += [
        f"  {topic}: {n} mark{'s' if n != 1 else ''} on {s} stor{'ies' if s != 1 else 'y'}"
        for topic, (n, s) in marks.items()
    ]
    return lines


def _cycle_lines(cycle: dict[str, Any] | None, now: float) -> list[str]:
    if not cycle or cycle.get("finished") is None:
        return ["last cycle: none finished yet"]
    finished, started = float(cycle["finished"]), float(cycle.get("started") or cycle["finished"])
    stats = cycle.get("stats") or {}
    detail = ", ".join(f"{k} {v}" for k, v in stats.items() if not isinstance(v, dict | list))
    took = f" (took {finished - started:.1f}s)"
    return [
        f"last cycle: finished {approximate(now - finished)} ago{took}"
        + (f": {detail}" if detail else "")
    ]


def _feed_lines(store: Store, settings: Settings, now: float) -> list[str]:
    states = {state.name: state for state in store.feed_health()}
    lines = [f"feeds: {len(settings.feeds)} configured"]
    for feed in settings.feeds:
        lines.append(f"  {feed.name}: {_feed_health(feed.enabled, states.get(feed.name), now)}")
    return lines


def _feed_health(enabled: bool, state: FeedState | None, now: float) -> str:
    if not enabled:
        return "disabled in the configuration"
    if state is None or state.last_fetch is None:
        return "not fetched yet"
    if state.disabled:
        parts = [f"disabled: {state.last_error or 'gone'}"]
    elif state.error_count:
        parts = [f"failing ({state.error_count} errors in a row, last: {state.last_error})"]
    else:
        parts = ["ok"]
    if state.last_success:
        parts.append(f"last success {approximate(now - state.last_success)} ago")
    else:
        parts.append("never fetched successfully")
    if state.next_fetch and not state.disabled:
        parts.append(f"next fetch in {approximate(max(0.0, state.next_fetch - now))}")
    parts.append(f"{state.items} item{'' if state.items == 1 else 's'} seen")
    return ", ".join(parts)
