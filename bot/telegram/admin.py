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
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import status
from bot.logs import redact
from bot.telegram.messages import esc, split_lines

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE


def _is_admin(update: Update, context: Context) -> bool:
    user = update.effective_user
    return bool(user and user.id in context.bot_data["options"].admin_ids)


async def _reply_lines(update: Update, lines: list[str]) -> None:
    for part in split_lines(lines):
        await update.effective_message.reply_text(part, parse_mode=ParseMode.HTML)


def _facts(context: Context) -> status.StatusFacts:
    bot_data = context.bot_data
    topics = [rule.id for rule in bot_data["rulebook"].rules]
    return status.gather(bot_data["store"], time.time(), bot_data["options"].feeds, topics)


async def status_command(update: Update, context: Context) -> None:
    """Admins: last cycle, feeds' health, outbox backlog and failures, subscribers per topic."""
    if not _is_admin(update, context):
        await update.effective_message.reply_text("That command is for the bot's admins.")
        return
    await _reply_lines(update, status.status_lines(_facts(context), status.HTML))


async def feeds(update: Update, context: Context) -> None:
    """Admins: every feed with its address, state, last success and error, next fetch."""
    if not _is_admin(update, context):
        await update.effective_message.reply_text("That command is for the bot's admins.")
        return
    await _reply_lines(update, status.feed_lines(_facts(context), status.HTML))


async def reload(update: Update, context: Context) -> None:
    """Admins: reload the rules; on errors keep the old ones and list every problem."""
    if not _is_admin(update, context):
        await update.effective_message.reply_text("That command is for the bot's admins.")
        return
    reloader = context.bot_data["options"].reloader
    if reloader is None:
        await update.effective_message.reply_text("No rules path is configured.")
        return
    outcome = await reloader.reload("/reload", notify=False)
    await _reply_lines(update, [esc(line) for line in outcome.message().splitlines()])


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
            try:
                await bot.send_message(
                    admin, f"⚠️ {esc(redact(text))} ({stamp})", parse_mode=ParseMode.HTML
                )
            except TelegramError as exc:
                log.warning("could not notify admin %s: %s", admin, exc)

    return notify


def feed_notices(feeds: list[Any], told: dict[str, str], failing_after: int = 5) -> list[str]:
    """What admins have not yet been told about feeds (updates `told`: name -> state)."""
    notices = []
    for feed in feeds:
        state = "disabled" if feed.disabled else ""
        state = state or ("failing" if feed.error_count >= failing_after else "")
        if state and told.get(feed.name) != state:
            why = (feed.last_error or "no reason recorded")[:200]
            if state == "disabled":
                notices.append(f"Feed {feed.name} is disabled: {why}")
            else:
                notices.append(f"Feed {feed.name} keeps failing ({feed.error_count} times): {why}")
        told[feed.name] = state
    return notices


async def watch_feeds(
    store: Any, notify: Callable[[str], Awaitable[None]], stop: asyncio.Event, every: float = 60
) -> None:
    """Until `stop`: tell admins, unprompted, when a feed is disabled or keeps failing."""
    told: dict[str, str] = {}
    while not stop.is_set():
        for notice in feed_notices(store.feed_health(), told):
            await notify(notice)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
