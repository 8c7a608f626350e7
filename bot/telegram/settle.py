"""Settling outbox rows whose message did not go out: retries, backoff, failure, notices.

A mixin of the Deliverer: every failure is the row's own (it counts an attempt and backs
off); rows that end as failed, and answers that could not be read, reach admins once a pass.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram.error import BadRequest, Forbidden, NetworkError

from bot.errors import StoreUnwritable
from bot.logs import redact
from bot.telegram.limits import Stalled

log = logging.getLogger("bot.telegram.deliver")


@dataclass
class Policy:
    """Tunables of delivery."""

    max_attempts: int = 6  # failed attempts before a row is marked failed
    backoff_base: float = 30.0  # first retry after this, doubling each time
    backoff_max: float = 3600.0
    unsure_backoff: float = 3600.0  # after an answer that may mean "delivered"
    retry_after_cap: float = 60.0  # the longest one RetryAfter may stall delivery
    concurrency: int = 32  # chats served at once (needed to reach ~30 msg/s)
    batch: int = 1000  # rows read per pass


@dataclass
class Stats:
    """What one delivery pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    deactivated: int = 0
    plain_fallbacks: int = 0
    postponed: int = 0
    rate_limited: int = 0
    unreadable: int = 0  # accepted by Telegram, answer unreadable: recorded as sent


class Settler:
    """Row bookkeeping after a failed send; mixed into Deliverer, which has the rest."""

    store: Any
    policy: Policy
    clock: Callable[[], float]
    notify: Callable[[str], Awaitable[None]] | None
    stalled_until: float
    _failures: list[str]
    unwritten: deque[tuple[frozenset[int], Callable[[], None]]]
    told_problem: str | None
    _unread: list[str]

    async def _store_ready(self) -> bool:
        """Write what could not be written before; True when sending may go on."""
        while self.unwritten:
            _, write = self.unwritten[0]
            try:
                write()
            except StoreUnwritable:
                break
            self.unwritten.popleft()
        problem = self.store.problem()
        if problem and not self.unwritten and not self.store.moved_problem:
            with contextlib.suppress(StoreUnwritable):  # space may have come back
                self.store.probe_write()
            problem = self.store.problem()
        if problem != self.told_problem:
            if problem and self.store.moved_problem:
                await self._tell_admins(
                    f"{problem}: nothing is sent or recorded; restore the file and restart."
                )
            elif problem:
                await self._tell_admins(f"{problem}: nothing is sent until it can be written.")
            else:
                await self._tell_admins("The database is writable again; sending resumed.")
            self.told_problem = problem
        return problem is None and not self.unwritten

    def _record(self, rows: Sequence[Any], write: Callable[[], None]) -> None:
        """Record what Telegram confirmed; if the database refuses, keep it for later."""
        if not self.unwritten:
            try:
                write()
                return
            except StoreUnwritable:
                log.error("rows %s were sent but cannot be marked yet", [r.id for r in rows])
        self.unwritten.append((frozenset(r.id for r in rows), write))

    def _mark_sent(self, rows: Sequence[Any], message_id: int | None, note: str | None) -> None:
        with self.store.transaction():
            for row in rows:
                self.store.mark_sent(row.id, message_id, note)

    def _postpone(self, rows: Sequence[Any], until: float, stats: Stats) -> None:
        with self.store.transaction():  # one commit for all, as _mark_sent does
            for row in rows:
                self.store.postpone(row.id, until)
        stats.postponed += len(rows)

    async def _not_sent(self, rows: list[Any], chat_id: int, exc: Exception, stats: Stats) -> bool:
        """Settle rows whose message Telegram did not (or may not have) take."""
        if isinstance(exc, Forbidden):
            await self._gone(chat_id, str(exc), stats)
            return False
        if isinstance(exc, Stalled):
            await self._stalled(rows, exc, stats)
            return False
        # TimedOut and other network errors: the usual backoff; any other answer (InvalidToken
        # from a 404, a body that is not JSON) may hide a delivery: one more try, much later
        return self._retry(rows, exc, stats, unsure=not isinstance(exc, NetworkError))

    async def _bad_request(
        self, rows: list[Any], chat_id: int, exc: BadRequest, stats: Stats
    ) -> bool:
        if "chat not found" in str(exc).lower():
            await self._gone(chat_id, str(exc), stats)
            return False
        log.error("chat %s refused rows %s: %s", chat_id, [r.id for r in rows], exc)
        for row in rows:
            self._fail(row, f"refused: {exc}", stats)
        return True

    async def _gone(self, chat_id: int, reason: str, stats: Stats) -> None:
        log.warning("chat %s is gone (%s): deactivated", chat_id, reason)
        self.store.deactivate(chat_id, reason)
        stats.deactivated += 1
        await self._tell_admins(f"Subscriber {chat_id} deactivated: {reason}")

    def _retry(
        self, rows: Sequence[Any], exc: Exception, stats: Stats, unsure: bool = False
    ) -> bool:
        """Count a failed attempt of each row; True when they all ended as failed."""
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        done = True
        for row in rows:
            attempts = row.attempts + 1
            if unsure:  # whatever happens next time is the last try
                attempts = max(attempts, self.policy.max_attempts - 1)
            if attempts >= self.policy.max_attempts:
                self._fail(row, error, stats)
                continue
            delay = min(self.policy.backoff_base * 2 ** (attempts - 1), self.policy.backoff_max)
            delay = self.policy.unsure_backoff if unsure else delay
            log.warning("row %s: %s; retrying in %.0fs", row.id, redact(error), delay)
            self.store.mark_retry(row.id, error, self.clock() + delay, attempts=attempts)
            stats.retried += 1
            done = False
        return done

    def _fail(self, row: Any, error: str, stats: Stats) -> None:
        log.error("row %s to chat %s failed for good: %s", row.id, row.chat_id, redact(error))
        self.store.mark_failed(row.id, error)
        stats.failed += 1
        self._failures.append(f"row {row.id} to chat {row.chat_id}: {error}")

    async def _stalled(self, rows: list[Any], exc: Stalled, stats: Stats) -> None:
        until = self.clock() + exc.seconds
        self._postpone(rows, until, stats)
        if until > self.stalled_until + 60:  # one notice per stall, not one per row
            self.stalled_until = until
            when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M UTC")
            await self._tell_admins(f"Delivery stalled: {exc}; pending messages resume at {when}.")

    async def _report(self) -> None:
        """One notice per pass for rows that failed for good or whose answer was unreadable."""
        for items, what in (
            (self._failures, "failed for good (see /status)"),
            (self._unread, "were accepted by Telegram, but its answer could not be read; "
                           "recorded as sent"),
        ):  # fmt: skip
            if items:
                more = f" (and {len(items) - 3} more)" if len(items) > 3 else ""
                await self._tell_admins(
                    f"{len(items)} message(s) {what}: " + "; ".join(items[:3]) + more
                )
                items.clear()

    async def _tell_admins(self, text: str) -> None:
        if self.notify is None:
            return
        try:
            await self.notify(redact(text))
        except Exception:  # telling admins must never break delivery
            log.exception("could not notify admins")
