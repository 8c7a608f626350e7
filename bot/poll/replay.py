"""Stored items replayed through a Rulebook (backtests): read, the text once matched, compare.

The reading is bot.store.history's (read-only, short reads, no run lock), the comparison
bot.rules.backtest's (pure); this module only joins them, like the cycle joins fetch and match.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bot.models import Item
from bot.rules.backtest import Backtest, edited_rules, summary_line
from bot.rules.language import Rule
from bot.rules.matcher import Rulebook
from bot.store.history import id_bounds, open_readonly, stored_items, stored_snippet

RELOAD_PERIOD = 7 * 86400.0  # what the reload notice backtests


def run_backtest(
    database: Path,
    rulebook: Rulebook,
    since: float,
    only: frozenset[str] | None = None,
    jobs: int = 1,
    least_per_job: int = 10_000,
) -> Backtest:
    """Every item stored since `since` matched with `rulebook`, against its stored matches.

    With `jobs` > 1 the items are split by row id between that many worker processes (spawned,
    not forked: the caller may have threads), each with its own read-only connection.
    """
    if jobs <= 1:
        return _scan(database, rulebook, since, only, 0, None)
    conn = open_readonly(database)
    try:
        cuts = id_bounds(conn, since, jobs, least_per_job)
    finally:
        conn.close()
    ranges = list(zip(cuts, [*cuts[1:], None], strict=True))
    if len(ranges) == 1:
        return _scan(database, rulebook, since, only, 0, None)
    rules = list(rulebook.rules)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(ranges), mp_context=context) as pool:
        futures = [
            pool.submit(_scan_part, database, rules, since, only, lo, hi) for lo, hi in ranges
        ]
        result = Backtest(rulebook, only=only, render=stored_snippet)
        for future in futures:
            result.merge_parts(future.result())
    return result


def _scan(
    database: Path,
    rulebook: Rulebook,
    since: float,
    only: frozenset[str] | None,
    after_id: int,
    until_id: int | None,
) -> Backtest:
    backtest = Backtest(rulebook, only=only, render=stored_snippet)
    conn = open_readonly(database)
    try:
        for stored in stored_items(conn, since, after_id=after_id, until_id=until_id):
            backtest.add(as_matched(stored.item, stored.article), stored.seen, stored.matches)
    finally:
        conn.close()
    return backtest


def _scan_part(
    database: Path,
    rules: list[Rule],
    since: float,
    only: frozenset[str] | None,
    after_id: int,
    until_id: int | None,
) -> tuple[Any, Any, Any]:
    """One worker's share: the Rulebook compiled here (compiled automata do not pickle)."""
    return _scan(database, Rulebook(rules), since, only, after_id, until_id).parts()


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
