"""Stored items replayed through a Rulebook (backtests): read, the text once matched, compare.

The reading is bot.store.history's (read-only, short reads, no run lock), the comparison
bot.rules.backtest's (pure); this module only joins them, like the cycle joins fetch and match.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.models import Item
from bot.rules.backtest import Backtest, edited_rules, summary_line
from bot.rules.matcher import Rulebook
from bot.store.history import open_readonly, stored_items

RELOAD_PERIOD = 7 * 86400.0  # what the reload notice backtests


def run_backtest(
    database: Path, rulebook: Rulebook, since: float, only: frozenset[str] | None = None
) -> Backtest:
    """Every item stored since `since` matched with `rulebook`, against its stored matches."""
    backtest = Backtest(rulebook, only=only)
    conn = open_readonly(database)
    try:
        for stored in stored_items(conn, since):
            backtest.add(as_matched(stored.item, stored.article), stored.seen, stored.matches)
    finally:
        conn.close()
    return backtest


def as_matched(item: Item, article: str | None) -> Item:
    """The item as the poller matched it: with its article's text when that says more."""
    if article is None:
        return item
    from bot.feeds.fulltext import best_text  # imported here: trafilatura is slow to import

    return best_text(item, article)


def reload_summary(
    database: Path, old: Rulebook, new: Rulebook, now: float, period: float = RELOAD_PERIOD
) -> str | None:
    """One line for admins after a reload: each edited rule's change over the period.

    Only rules whose matching changed (terms, windows, fields, feeds, level; not examples or
    line numbers) are backtested, which keeps a reload's check quick; None when there are none.
    """
    edited = edited_rules(old, new)
    if not edited:
        return None
    wanted = set(edited)
    subset = Rulebook([r for r in new.rules if r.id in wanted])
    result = run_backtest(database, subset, now - period, only=frozenset(edited))
    untouched = len(new.rules) - len(subset.rules)
    return summary_line(result.diffs(edited), f"{period / 86400:g} days", untouched)


def reload_reporter(
    database: Path, clock: Callable[[], float] = time.time
) -> Callable[[Rulebook, Rulebook], Awaitable[str | None]]:
    """Reloader.report for the running bot: the summary, computed off the event loop."""

    async def report(old: Rulebook, new: Rulebook) -> str | None:
        # a thread: the scan is CPU-bound and reads with its own read-only connection
        return await asyncio.to_thread(reload_summary, database, old, new, clock())

    return report
