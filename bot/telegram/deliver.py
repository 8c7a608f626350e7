"""Outbox to Bot API: per-chat and global rate limits, RetryAfter, Forbidden, retries, digests.

The outbox is worked in id order (chats in parallel, each chat's rows in order). A row is
marked sent only after Telegram confirmed the message, with the message id it returned. A
crash (or a timeout whose answer never arrived) between Telegram's confirmation and the
database's commit leaves that row pending, so after a restart the message can be sent a
second time. Only messages in flight at that instant can repeat, each once: at most one per
chat, and at most `Policy.concurrency` (the chats served at once) in all; nothing is lost.
An alert too long for one message is sent in parts; if a later part fails, the retry resends
the earlier parts too.

Errors, and what happens to the row:

    RetryAfter(s)            wait s seconds (all chats pause: flood control is per bot), retry;
                             above `retry_after_cap` the row stays pending until then and the
                             admins are told: never a failure, never dropped
    Forbidden, chat not found  the subscriber is deactivated, its pending rows cancelled
    BadRequest (parse)       resent as plain text
    BadRequest (other)       marked failed (resending the same request cannot help)
    ChatMigrated             the subscriber moves to the new chat id, the row is resent there
    TimedOut, NetworkError   retried with exponential backoff; after max_attempts marked failed
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter
from telegram.warnings import PTBDeprecationWarning

from bot.telegram.feedback import alert_keyboard, digest_keyboard
from bot.telegram.messages import render_alert, render_digest, render_plain, split_lines, strip_tags

log = logging.getLogger(__name__)
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
Notify = Callable[[str], Awaitable[None]]
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass
class Policy:
    """Tunables of delivery."""

    max_attempts: int = 6  # network failures before a row is marked failed
    backoff_base: float = 30.0  # first retry after this, doubling each time
    backoff_max: float = 3600.0
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


class Stalled(Exception):
    """Telegram asked for a wait longer than the cap: the row stays pending until then."""

    def __init__(self, seconds: float):
        super().__init__(f"Telegram asked to wait {seconds:.0f}s")
        self.seconds = seconds


def rate_limiter(per_second: float = 30.0) -> AIORateLimiter:
    """The global limiter for ApplicationBuilder().rate_limiter(...): ~30/s, 20/min per group."""
    # With max_retries=0 it logs every RetryAfter as an error with a traceback; the Deliverer
    # handles (and logs) RetryAfter itself, so that logger only adds noise.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    return AIORateLimiter(overall_max_rate=per_second, max_retries=0)


class ChatLimiter:
    """At most 1 message per second to a private chat and 20 per minute to a group or channel."""

    def __init__(self, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep):
        self.clock, self.sleep = clock, sleep
        self.recent: dict[int | str, deque[float]] = defaultdict(deque)

    @staticmethod
    def window(chat_id: int | str) -> tuple[int, float]:
        """(messages, seconds) allowed for this kind of chat."""
        private = isinstance(chat_id, int) and chat_id > 0
        return (1, 1.0) if private else (20, 60.0)

    async def wait(self, chat_id: int | str) -> None:
        """Return when one more message to `chat_id` keeps within its limit (and count it)."""
        count, period = self.window(chat_id)
        if len(self.recent) > 10_000:  # forget chats not written to for a minute
            cutoff = self.clock() - 60
            self.recent = defaultdict(
                deque, {k: v for k, v in self.recent.items() if v and v[-1] > cutoff}
            )
        recent = self.recent[chat_id]
        while True:
            now = self.clock()
            while recent and recent[0] <= now - period:
                recent.popleft()
            if len(recent) < count:
                recent.append(now)
                return
            await self.sleep(recent[0] + period - now)


def digest_slot(after: float, digest_time: str, tz: str) -> float:
    """The first digest moment (HH:MM in zone `tz`) at or after the timestamp `after`."""
    zone = _zone(tz)
    hour, minute = (int(x) for x in digest_time.split(":"))
    local = datetime.fromtimestamp(after, zone)
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot.timestamp() < after:
        slot = (local + timedelta(days=1)).replace(
            hour=hour, minute=minute, second=0, microsecond=0
        )
    return slot.timestamp()


def _zone(tz: str | None) -> Any:
    try:
        return ZoneInfo(tz or "UTC")
    except (ValueError, KeyError, OSError):
        return UTC


class Deliverer:
    """Works the outbox through a Bot (use an ExtBot with `rate_limiter()` for the global limit)."""

    def __init__(
        self,
        bot: Any,
        store: Any,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        policy: Policy | None = None,
        notify: Notify | None = None,
    ):
        self.bot, self.store, self.clock, self.sleep = bot, store, clock, sleep
        self.policy = policy or Policy()
        self.limiter = ChatLimiter(clock, sleep)
        self.notify = notify
        self.paused_until = 0.0
        self.stalled_until = 0.0
        self.halt = asyncio.Event()  # set: finish the messages in flight, start no others
        self.on_pass: Callable[[Stats], None] | None = None  # e.g. Metrics.observe_delivery

    # -- the loop -----------------------------------------------------------------
    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Deliver until `stop` is set; `wake()` starts a pass at once."""
        self.halt = stop  # a stop mid-pass leaves the remaining rows pending for next time
        while not stop.is_set():
            try:
                stats = await self.deliver_due()
                if self.on_pass is not None:
                    self.on_pass(stats)
            except Exception:  # one bad pass must not end delivery for good
                log.exception("delivery pass failed; trying again in %ss", interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def deliver_due(self) -> Stats:
        """One pass over every due row; returns what happened."""
        stats = Stats()
        rows = self.store.due_outbox(self.clock(), self.policy.batch)
        by_chat: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_chat[row.chat_id].append(row)
        gate = asyncio.Semaphore(self.policy.concurrency)

        async def serve(chat_rows: list[Any]) -> None:
            async with gate:
                if not self.halt.is_set():
                    await self._serve_chat(chat_rows, stats)

        try:  # a TaskGroup: if one chat fails unexpectedly, the others stop before the next pass
            async with asyncio.TaskGroup() as group:
                for chat_rows in by_chat.values():
                    group.create_task(serve(chat_rows))
        except* Exception as errors:
            raise errors.exceptions[0] from None
        if rows:
            log.info("delivery pass: %s", stats)
        return stats

    async def _serve_chat(self, rows: list[Any], stats: Stats) -> None:
        sub = self.store.get_subscriber(rows[0].chat_id)
        if sub is None or not sub.active:
            for row in rows:
                self.store.mark_failed(row.id, "subscriber gone")
            stats.failed += len(rows)
            return
        now = self.clock()
        if sub.muted_until and sub.muted_until > now:
            self._postpone(rows, sub.muted_until, stats)
        elif sub.mode == "digest":
            await self._serve_digest(sub, rows, stats)
        else:
            for row in rows:
                if self.halt.is_set() or not await self._deliver(row, stats):
                    break  # keep this chat's order: the rest waits for the next pass

    def _postpone(self, rows: Sequence[Any], until: float, stats: Stats) -> None:
        for row in rows:
            self.store.postpone(row.id, until)
        stats.postponed += len(rows)

    # -- one row (or one digest) ------------------------------------------------------
    async def _deliver(self, row: Any, stats: Stats) -> bool:
        """Send one row; True when the chat can go on to its next row."""

        def texts(plain: bool) -> list[str]:
            if plain:
                return split_lines(render_plain(row.alert).split("\n"))
            return render_alert(row.alert)

        markup = alert_keyboard(row.id, row.alert)
        return await self._attempt([row], row.chat_id, texts, stats, markup)

    async def _attempt(
        self,
        rows: list[Any],
        chat_id: int,
        texts: Callable[[bool], list[str]],
        stats: Stats,
        markup: Any = None,
    ) -> bool:
        """Send what `rows` owe (as one message or one series); settle every row's state."""
        plain = False
        while True:
            try:
                message_id = await self._send_all(chat_id, texts(plain), plain, stats, markup)
            except ChatMigrated as exc:
                log.info("chat %s moved to %s", chat_id, exc.new_chat_id)
                self.store.migrate_chat(chat_id, int(exc.new_chat_id))
                chat_id = int(exc.new_chat_id)
                continue
            except BadRequest as exc:
                if _parse_error(exc) and not plain:
                    log.warning(
                        "chat %s: Telegram could not parse HTML; sending plain text", chat_id
                    )
                    stats.plain_fallbacks += 1
                    plain = True
                    continue
                return await self._bad_request(rows, chat_id, exc, stats)
            except Forbidden as exc:
                await self._gone(chat_id, str(exc), stats)
                return False
            except Stalled as exc:
                await self._stalled(rows, exc, stats)
                return False
            except NetworkError as exc:
                return all([self._retry(row, exc, stats) for row in rows])
            for row in rows:
                self.store.mark_sent(row.id, message_id)
            stats.sent += len(rows)
            return True

    async def _bad_request(
        self, rows: list[Any], chat_id: int, exc: BadRequest, stats: Stats
    ) -> bool:
        if "chat not found" in str(exc).lower():
            await self._gone(chat_id, str(exc), stats)
            return False
        log.error("chat %s refused rows %s: %s", chat_id, [r.id for r in rows], exc)
        for row in rows:
            self.store.mark_failed(row.id, f"refused: {exc}")
        stats.failed += len(rows)
        return True

    async def _gone(self, chat_id: int, reason: str, stats: Stats) -> None:
        log.warning("chat %s is gone (%s): deactivated", chat_id, reason)
        self.store.deactivate(chat_id, reason)
        stats.deactivated += 1
        await self._tell_admins(f"Subscriber {chat_id} deactivated: {reason}")

    def _retry(self, row: Any, exc: Exception, stats: Stats) -> bool:
        attempts = row.attempts + 1
        error = f"{type(exc).__name__}: {exc}"
        if attempts >= self.policy.max_attempts:
            log.error("row %s failed after %s attempts: %s", row.id, attempts, error)
            self.store.mark_failed(row.id, error)
            stats.failed += 1
            return True
        delay = min(self.policy.backoff_base * 2 ** (attempts - 1), self.policy.backoff_max)
        log.warning("row %s: %s; retrying in %.0fs", row.id, error, delay)
        self.store.mark_retry(row.id, error, self.clock() + delay)
        stats.retried += 1
        return False

    async def _stalled(self, rows: list[Any], exc: Stalled, stats: Stats) -> None:
        until = self.clock() + exc.seconds
        self._postpone(rows, until, stats)
        if until > self.stalled_until + 60:  # one notice per stall, not one per row
            self.stalled_until = until
            when = datetime.fromtimestamp(until, UTC).strftime("%H:%M UTC")
            await self._tell_admins(f"Delivery stalled: {exc}; pending messages resume at {when}.")

    async def _tell_admins(self, text: str) -> None:
        if self.notify is None:
            return
        try:
            await self.notify(text)
        except Exception:  # telling admins must never break delivery
            log.exception("could not notify admins")

    # -- sending --------------------------------------------------------------------
    async def _send_all(
        self, chat_id: int, texts: list[str], plain: bool, stats: Stats, markup: Any = None
    ) -> int:
        first = 0
        for n, text in enumerate(texts, 1):  # the buttons go under the last part
            message_id = await self.send(
                chat_id, text, plain, stats, markup if n == len(texts) else None
            )
            first = first or message_id
        return first

    async def send(
        self,
        chat_id: int | str,
        text: str,
        plain: bool = False,
        stats: Stats | None = None,
        markup: Any = None,
    ) -> int:
        """One message, honouring the limits and RetryAfter; returns Telegram's message id."""
        await self.limiter.wait(chat_id)
        while True:
            await self._pause()
            try:
                message = await self.bot.send_message(
                    chat_id,
                    text,
                    parse_mode=None if plain else ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    reply_markup=markup,
                )
                return message.message_id
            except RetryAfter as exc:
                seconds = _seconds(exc)
                if stats:
                    stats.rate_limited += 1
                if seconds > self.policy.retry_after_cap:
                    raise Stalled(seconds) from exc
                log.info("flood control: Telegram asks to wait %.0fs; all chats pause", seconds)
                self.paused_until = max(self.paused_until, self.clock() + seconds)

    async def _pause(self) -> None:
        while (left := self.paused_until - self.clock()) > 0:
            await self.sleep(left)

    # -- digests --------------------------------------------------------------------
    async def _serve_digest(self, sub: Any, rows: list[Any], stats: Stats) -> None:
        """Rows of a digest chat wait for its slot; at the slot they go out as one digest."""
        now = self.clock()
        ready, waiting = [], defaultdict(list)
        for row in rows:
            slot = digest_slot(row.next_attempt, sub.digest_time or "08:00", sub.timezone)
            if slot <= now or row.last_error:  # a digest whose sending failed retries now
                ready.append(row)
            else:
                waiting[slot].append(row)
        for slot, later in waiting.items():
            self._postpone(later, slot, stats)
        if ready:
            await self._send_digest(sub, ready, stats)

    async def _send_digest(self, sub: Any, rows: list[Any], stats: Stats) -> None:
        day = digest_day(self.clock(), sub.timezone)
        html_texts = render_digest([r.alert for r in rows], day)

        def texts(plain: bool) -> list[str]:
            return [html.unescape(strip_tags(t)) for t in html_texts] if plain else html_texts

        await self._attempt(rows, sub.chat_id, texts, stats, digest_keyboard(rows[0].id))


def digest_day(now: float, tz: str | None) -> date:
    """Today's date in the subscriber's zone."""
    return datetime.fromtimestamp(now, _zone(tz)).date()


def _parse_error(exc: BadRequest) -> bool:
    return "parse entities" in str(exc).lower()


def _seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int will become a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
