"""Operations commands: `alertbot health` (for Docker's HEALTHCHECK) and `alertbot status`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bot import status
from bot.config import Settings, add_config_option, settings_from_args
from bot.durations import approximate
from bot.errors import AlertbotError

# A cycle older than this many shortest intervals means the poller is stuck or gone.
STALE_AFTER_INTERVALS = 3


def register(commands: argparse._SubParsersAction) -> None:
    """Add `health` and `status` to the command tree."""
    health = commands.add_parser(
        "health",
        help="exit 0 when the bot is polling and its database is writable (Docker HEALTHCHECK)",
        description="Exit 0 when the last poll cycle finished within about three of the "
        "shortest feed interval, the database is writable, and the running bot reports no "
        "trouble with it (a full disk, a deleted file); otherwise print why and exit 1.",
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
    from bot.store.guard import reported_problem  # imported here so `--help` stays fast

    if reported := reported_problem(database):  # what the running bot sees
        pid, state = reported
        return f"{state} (reported by alertbot, pid {pid})"
    if not database.exists():
        return f"no database at {database} yet: has `alertbot run` started?"
    from bot.store import Store

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
            facts = status.gather(
                store, clock(), settings.feeds, _topics(settings), str(settings.database)
            )
    except (AlertbotError, OSError) as exc:
        print(f"alertbot status: {exc}", file=sys.stderr)
        return 1
    lines = status.status_lines(facts)
    from bot.store.guard import reported_problem

    if reported := reported_problem(settings.database):  # what it cannot write down
        pid, state = reported
        lines.insert(0, f"alertbot (pid {pid}) reports: {state}")
    print("\n".join(lines))
    return 0


def _topics(settings: Settings) -> list[str]:
    """The rule ids, so topics nobody follows show 0; none when the rules do not load."""
    from bot.rules.files import read_rule_set

    try:
        rules, _problems = read_rule_set(settings.rules_path)
    except OSError:
        return []
    return [rule.id for rule in rules]
