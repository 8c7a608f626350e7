"""Admin side of the bot: /status, /feeds, /reload, and unprompted notices to admins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import status
from bot.durations import approximate
from bot.logs import redact
from bot.telegram.handlers import command_word, reply, reply_lines
from bot.telegram.messages import esc

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE


async def _refuse(update: Update) -> None:
    await reply(update, f"{esc(command_word(update))} is for the bot's admins.")


def _is_admin(update: Update, context: Context) -> bool:
    user = update.effective_user
    return bool(user and user.id in context.bot_data["options"].admin_ids)


def _facts(context: Context) -> status.StatusFacts:
    bot_data = context.bot_data
    topics = [rule.id for rule in bot_data["rulebook"].rules]
    return status.gather(bot_data["store"], time.time(), bot_data["options"].feeds, topics)


async def status_command(update: Update, context: Context) -> None:
    """Admins: last cycle, feeds' health, outbox backlog and failures, subscribers per topic."""
    if not _is_admin(update, context):
        await _refuse(update)
        return
    await reply_lines(update, status.status_lines(_facts(context), status.HTML))


async def feeds(update: Update, context: Context) -> None:
    """Admins: every feed with its address, state, last success and error, next fetch."""
    if not _is_admin(update, context):
        await _refuse(update)
        return
    await reply_lines(update, status.feed_lines(_facts(context), status.HTML))


async def reload(update: Update, context: Context) -> None:
    """Admins: reload the rules; on errors keep the old ones and list every problem."""
    if not _is_admin(update, context):
        await _refuse(update)
        return
    reloader = context.bot_data["options"].reloader
    if reloader is None:
        await update.effective_message.reply_text("No rules path is configured.")
        return
    outcome = await reloader.reload("/reload", notify=False)
    await reply_lines(update, [esc(line) for line in outcome.message().splitlines()])


ADMIN_COMMANDS: dict[str, Callable[[Update, Context], Awaitable[None]]] = {
    "status": status_command,
    "feeds": feeds,
    "reload": reload,
}


def admin_notifier(bot: Any, admin_ids: set[int]) -> Callable[[str], Awaitable[None]]:
    """A function that tells every admin something (for deliver.Deliverer(notify=...))."""

    async def notify(text: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M UTC")
        for admin in sorted(admin_ids):
            try:  # HTML and no link previews come from the Application's Defaults
                await bot.send_message(admin, f"⚠️ {esc(redact(text))} ({stamp})")
            except TelegramError as exc:
                log.warning("could not notify admin %s: %s", admin, exc)

    return notify


FAILING_AFTER = 3600.0  # a feed failing this long is worth an admin's attention


def feed_notices(
    feeds: list[Any], now: float, failing_after: float = FAILING_AFTER
) -> list[tuple[str, str, str]]:
    """(feed, notice, text) for each feed whose state admins have not been told yet: disabled,
    failing for `failing_after` seconds, or working again after either (a recovery)."""
    out = []
    for feed in feeds:
        state = _notice_state(feed, now, failing_after)
        if state is None or state == feed.notice:
            continue
        why = (feed.last_error or "no reason recorded")[:200]
        if state == "disabled":
            text = f"Feed {feed.name} is disabled: {why}"
        elif state == "failing":
            since = feed.failing_since or now
            text = (
                f"Feed {feed.name} has been failing for {approximate(now - since)} "
                f"({feed.error_count} errors): {why}"
            )
        else:
            text = f"Feed {feed.name} works again."
        out.append((feed.name, state, text))
    return out


def _notice_state(feed: Any, now: float, failing_after: float) -> str | None:
    """disabled | failing | "" (healthy); None while a failure is younger than the bar."""
    if feed.disabled:
        return "disabled"
    if feed.error_count == 0:
        return ""
    since = feed.failing_since or feed.last_error_at or now
    return "failing" if now - since >= failing_after else None


async def watch_feeds(
    store: Any,
    notify: Callable[[str], Awaitable[None]],
    stop: asyncio.Event,
    every: float = 60,
    clock: Callable[[], float] = time.time,
) -> None:
    """Until `stop`: tell admins, once per incident (remembered in the store across restarts),
    when a feed is disabled or keeps failing, and when it works again."""
    while not stop.is_set():
        for name, state, text in feed_notices(store.feed_health(), clock()):
            await notify(text)
            store.set_feed_notice(name, state)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
