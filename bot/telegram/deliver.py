"""Outbox to Bot API: per-chat and global rate limits, RetryAfter, Forbidden, retries, digests.

The outbox is worked in id order (chats in parallel, each chat's rows in order; one chat's
failure never stops or delays another's). A row is marked sent only after Telegram confirmed
the message. A crash (or a timeout whose answer never arrived) between Telegram's
confirmation and the database's commit leaves that row pending, so after a restart that one
message can be sent a second time: at most one per chat, and at most `Policy.concurrency` (the
chats served at once) in all; nothing is lost. A message too long for one message (a long
alert, a digest) goes out as a series whose progress is recorded part by part, so a crash
repeats at most the part in flight.

Errors, and what happens to the row (every failure counts an attempt of that row only):

    RetryAfter(s)            wait s seconds (all chats pause: flood control is per bot), retry;
                             above `retry_after_cap` the row stays pending until then and the
                             admins are told (with the date): never a failure, never dropped
    Forbidden, chat not found  the subscriber is deactivated, its pending rows cancelled
    BadRequest (parse)       resent as plain text
    BadRequest (other)       marked failed (resending the same request cannot help)
    ChatMigrated             the subscriber moves to the new chat id, the row is resent there
    TimedOut, NetworkError   retried with exponential backoff; after max_attempts marked failed
    ok, but unreadable       (no result, not a message, a message PTB cannot read) Telegram
                             accepted it: marked sent with a warning; resending would repeat it
    other answers            (InvalidToken from a 404, an unparsable body) may mean "delivered":
                             one more try, `unsure_backoff` later, then failed; never at once
    database not writable    nothing more is sent until it is; a sent mark that could not be
                             written is kept in memory and written first (never sent twice)

Rows that end as failed are listed in /status and `alertbot status`; admins are told once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, NamedTuple

from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    RetryAfter,
    TelegramError,
)

from bot.errors import StoreCorrupt, StoreUnwritable
from bot.logs import add_secrets, redact
from bot.telegram.digest import digest_day, digest_slot, render_digest
from bot.telegram.feedback import alert_keyboard, digest_keyboard
from bot.telegram.limits import ChatLimiter, Stalled, rate_limiter, retry_after_seconds
from bot.telegram.messages import Decisive, render_alert, render_plain, split_lines, visible_text
from bot.telegram.settle import Policy, Settler, Stats

__all__ = ["ChatLimiter", "Deliverer", "Policy", "Stalled", "Stats", "rate_limiter"]

log = logging.getLogger(__name__)
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
Notify = Callable[[str], Awaitable[None]]


class _Sent(NamedTuple):
    """What went out: the first message id, a warning when an answer was unreadable, and the
    chat and form it finally went to."""

    message_id: int | None
    note: str
    chat_id: int
    plain: bool


class Unreadable(Exception):
    """Telegram answered ok, but not with a message we can read: it has the message."""


class Deliverer(Settler):
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
        self.decisive: Decisive | None = None  # which highlights are bold (rules' Emphasis)
        self.feed_titles: dict[str, str] = {}  # feed name -> its own title, for this pass
        # writes that must land before anything else is sent: (rows they settle, the write)
        self.unwritten: deque[tuple[frozenset[int], Callable[[], None]]] = deque()
        self.told_problem: str | None = None
        self.fatal: StoreCorrupt | None = None
        self._failures: list[str] = []  # rows failed for good in this pass, for one notice
        self._unread: list[str] = []  # answers accepted but unreadable in this pass
        add_secrets([getattr(bot, "token", None)])

    # -- the loop -----------------------------------------------------------------
    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Deliver until `stop` is set (or the database turns out corrupt: `fatal`)."""
        self.halt = stop  # a stop mid-pass leaves the remaining rows pending for next time
        while not stop.is_set():
            try:
                stats = await self.deliver_due()
                if self.on_pass is not None:
                    self.on_pass(stats)
            except StoreCorrupt as exc:  # nothing to do but stop: the caller says how to recover
                self.fatal = exc
                stop.set()
                return
            except Exception:  # one bad pass must not end delivery for good
                log.exception("delivery pass failed; trying again in %ss", interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def deliver_due(self) -> Stats:
        """One pass over every due row; returns what happened."""
        stats = Stats()
        if not await self._store_ready():
            return stats
        held = frozenset().union(*(ids for ids, _ in self.unwritten))
        rows = self.store.due_outbox(self.clock(), self.policy.batch)
        self.feed_titles = self.store.feed_titles() if rows else {}  # read once per pass
        by_chat: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            if row.id not in held:
                by_chat[row.chat_id].append(row)
        gate = asyncio.Semaphore(self.policy.concurrency)

        async def serve(chat_rows: list[Any]) -> None:
            async with gate:
                if not self._stopping():
                    await self._serve_chat(chat_rows, stats)

        # not a TaskGroup: one chat's failure must not cancel other chats' sends in flight
        results = await asyncio.gather(*map(serve, by_chat.values()), return_exceptions=True)
        for result in results:  # a corrupt file (or the process dying) ends the pass
            if isinstance(result, StoreCorrupt) or not isinstance(result, Exception | None):
                raise result
        await self._report()
        if rows:
            log.info("delivery pass: %s", stats)
        return stats

    def _stopping(self) -> bool:
        """Start nothing more: stopping, or the database cannot record what would be sent."""
        store_down = self.store.write_problem or self.store.moved_problem
        return self.halt.is_set() or bool(self.unwritten) or bool(store_down)

    async def _serve_chat(self, rows: list[Any], stats: Stats) -> None:
        """Serve one chat; whatever goes wrong stays this chat's."""
        try:
            await self._serve_rows(rows, stats)
        except (StoreUnwritable, StoreCorrupt, asyncio.CancelledError):
            raise  # the pass stops (said once by the store and the notice), or the bot ends
        except Exception as exc:
            log.exception("chat %s: delivery failed unexpectedly", rows[0].chat_id)
            self._retry(rows[:1], exc, stats, unsure=True)

    async def _serve_rows(self, rows: list[Any], stats: Stats) -> None:
        sub = self.store.get_subscriber(rows[0].chat_id)
        if sub is None or not sub.active:
            with self.store.transaction():  # one commit for the chat's rows, not one each
                for row in rows:
                    self.store.mark_failed(row.id, "subscriber gone")
            stats.failed += len(rows)
            return
        now = self.clock()
        if sub.muted_until and sub.muted_until > now:
            self._postpone(rows, sub.muted_until, stats)
            return
        series = self.store.open_series(sub.chat_id)
        if series is not None:  # a message in parts was cut short: finish it first
            mine = [r for r in rows if r.id in series.row_ids]
            if not mine or not await self._send_series(
                series, mine, stats, self._keyboard(sub, mine)
            ):
                return
            rows = [r for r in rows if r.id not in series.row_ids]
        if sub.mode == "digest":
            await self._serve_digest(sub, rows, stats)
            return
        for row in rows:
            if self._stopping() or not await self._deliver(row, sub, stats):
                break  # keep this chat's order: the rest waits for the next pass

    # -- one row (or one digest) ------------------------------------------------------
    async def _deliver(self, row: Any, sub: Any, stats: Stats) -> bool:
        """Send one row; True when the chat can go on to its next row."""
        title = self.feed_titles.get(row.alert.item.feed)

        def texts(plain: bool) -> list[str]:
            if plain:
                plain_text = render_plain(row.alert, title, sub.timezone, self.decisive)
                return split_lines(plain_text.split("\n"))
            return render_alert(row.alert, title, sub.timezone, self.decisive)

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
        html_texts = texts(False)
        if len(html_texts) > 1:
            series = self.store.start_series(chat_id, [r.id for r in rows], html_texts)
            return await self._send_series(series, rows, stats, markup)
        out = await self._send_settling(rows, chat_id, texts, False, stats, markup)
        if isinstance(out, bool):
            return out
        self._record(rows, partial(self._mark_sent, rows, out.message_id, out.note))
        stats.sent += len(rows)
        return True

    async def _send_series(
        self, series: Any, rows: list[Any], stats: Stats, markup: Any = None
    ) -> bool:
        """Send the parts not yet confirmed, recording each; True when all are out (the
        buttons go under the last part)."""
        chat_id, sent, first, note, plain = (
            series.chat_id,
            series.sent,
            series.message_id,
            "",
            False,
        )
        parts = len(series.texts)
        while sent < parts:
            if self._stopping():
                return False
            text = series.texts[sent]

            def part(plain: bool, text: str = text) -> list[str]:
                return [visible_text(text) if plain else text]

            last = markup if sent == parts - 1 else None
            out = await self._send_settling(rows, chat_id, part, plain, stats, last)
            if isinstance(out, bool):
                return out
            chat_id, plain = out.chat_id, out.plain
            sent, first, note = sent + 1, first or out.message_id, note or out.note
            if sent < parts:
                self._record(rows, partial(self.store.series_progress, series.id, sent, first))
        self._record(rows, partial(self.store.finish_series, series, first, note or None))
        stats.sent += len(rows)
        return True

    async def _send_settling(
        self,
        rows: list[Any],
        chat_id: int,
        texts: Callable[[bool], list[str]],
        plain: bool,
        stats: Stats,
        markup: Any,
    ) -> _Sent | bool:
        """Send `texts(plain)`: a chat that moved, or HTML Telegram could not parse, is tried
        again; any other refusal settles `rows` and gives whether the chat may go on."""
        while True:
            try:
                message_id, note = await self._send_all(chat_id, texts(plain), plain, stats, markup)
                return _Sent(message_id, note, chat_id, plain)
            except ChatMigrated as exc:
                chat_id = self._migrated(chat_id, exc)
            except BadRequest as exc:
                if plain or not _parse_error(exc):
                    return await self._bad_request(rows, chat_id, exc, stats)
                plain = self._plain_fallback(chat_id, stats)
            except (Forbidden, Stalled, TelegramError) as exc:
                return await self._not_sent(rows, chat_id, exc, stats)

    def _migrated(self, chat_id: int, exc: ChatMigrated) -> int:
        log.info("chat %s moved to %s", chat_id, exc.new_chat_id)
        self.store.migrate_chat(chat_id, int(exc.new_chat_id))
        return int(exc.new_chat_id)

    def _plain_fallback(self, chat_id: int, stats: Stats) -> bool:
        log.warning("chat %s: Telegram could not parse HTML; sending plain text", chat_id)
        stats.plain_fallbacks += 1
        return True

    # -- sending --------------------------------------------------------------------
    async def _send_all(
        self, chat_id: int, texts: list[str], plain: bool, stats: Stats, markup: Any = None
    ) -> tuple[int | None, str]:
        """Send the texts, the buttons under the last; (the first message id, a warning when
        an answer was unreadable)."""
        first, note = None, ""
        for n, text in enumerate(texts, 1):
            try:
                buttons = markup if n == len(texts) else None
                message_id = await self.send(chat_id, text, plain, stats, buttons)
            except Unreadable as exc:
                message_id, note = None, f"sent, but Telegram's answer could not be read: {exc}"
                stats.unreadable += 1
                self._unread.append(f"chat {chat_id}: {exc}")
                log.warning("chat %s: %s", chat_id, redact(note))
            first = first or message_id
        return first, note

    async def send(
        self,
        chat_id: int | str,
        text: str,
        plain: bool = False,
        stats: Stats | None = None,
        markup: Any = None,
    ) -> int:
        """One message, honouring the limits and RetryAfter; returns Telegram's message id.

        Raises Unreadable when Telegram took the message but its answer cannot be used.
        """
        await self.limiter.wait(chat_id)
        while True:
            await self._pause()
            try:
                # link previews follow the Application's Defaults; the parse mode is ours
                # because a refused HTML message is resent as plain text
                message = await self.bot.send_message(
                    chat_id,
                    text,
                    parse_mode=None if plain else ParseMode.HTML,
                    reply_markup=markup,
                )
            except RetryAfter as exc:
                seconds = retry_after_seconds(exc)
                if stats:
                    stats.rate_limited += 1
                if seconds > self.policy.retry_after_cap:
                    raise Stalled(seconds) from exc
                log.info("flood control: Telegram asks to wait %.0fs; all chats pause", seconds)
                self.paused_until = max(self.paused_until, self.clock() + seconds)
                continue
            except TelegramError:
                raise
            except Exception as exc:  # PTB raises only TelegramError before an ok answer
                raise Unreadable(f"{type(exc).__name__}: {exc}") from exc
            message_id = getattr(message, "message_id", None)
            if not isinstance(message_id, int):
                raise Unreadable(f"the result is not a message: {str(message)[:200]}")
            return message_id

    async def _pause(self) -> None:
        while (left := self.paused_until - self.clock()) > 0:
            await self.sleep(left)

    # -- digests --------------------------------------------------------------------
    async def _serve_digest(self, sub: Any, rows: list[Any], stats: Stats) -> None:
        """Rows of a digest chat wait for its slot; at the slot they go out as one digest."""
        now = self.clock()
        ready, waiting = [], defaultdict(list)
        for row in rows:
            # a story belongs to the first digest after it arrived, by the current settings:
            # a changed time or zone, or a mute over the slot, never makes it a day late
            slot = digest_slot(row.created, sub.digest_time or "08:00", sub.timezone)
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
        alerts = [r.alert for r in rows]
        html_texts = render_digest(alerts, day, sub.timezone, self.feed_titles)

        def texts(plain: bool) -> list[str]:
            return [visible_text(t) for t in html_texts] if plain else html_texts

        await self._attempt(rows, sub.chat_id, texts, stats, digest_keyboard(rows[0].id))

    @staticmethod
    def _keyboard(sub: Any, rows: list[Any]) -> Any:
        """The "Not relevant" buttons for what `rows` owe (a digest's, or one alert's)."""
        if sub.mode == "digest":
            return digest_keyboard(rows[0].id)
        return alert_keyboard(rows[0].id, rows[0].alert)


def _parse_error(exc: BadRequest) -> bool:
    return "parse entities" in str(exc).lower()
