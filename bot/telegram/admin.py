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

from bot.durations import approximate
from bot.telegram.messages import esc, split_lines

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE


def _is_admin(update: Update, context: Context) -> bool:
    user = update.effective_user
    return bool(user and user.id in context.bot_data["options"].admin_ids)


async def _reply_lines(update: Update, lines: list[str]) -> None:
    for part in split_lines(lines):
        await update.effective_message.reply_text(part, parse_mode=ParseMode.HTML)


def _ago(ts: float | None, now: float) -> str:
    return f"{approximate(now - ts)} ago" if ts else "never"


def status_lines(store: Any, rulebook: Any, now: float) -> list[str]:
    """The /status report: feeds' health, last cycle, outbox and subscribers per topic."""
    feeds = store.feed_health()
    failing = [f for f in feeds if f.error_count and not f.disabled]
    disabled = [f for f in feeds if f.disabled]
    lines = [
        "<b>Status</b>",
        f"Feeds: {len(feeds)}, failing {len(failing)}, disabled {len(disabled)}",
    ]
    cycle = store.last_cycle()
    if cycle:
        finished = cycle.get("finished")
        lines.append(f"Last poll cycle: finished {_ago(finished, now)}")
    else:
        lines.append("Last poll cycle: none yet")
    counts = store.outbox_counts()
    lines.append("Outbox: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    failed = [r for r in store.outbox_rows("failed", limit=5)]
    lines += [f"  ✖ row {r.id} → {r.chat_id}: {esc(r.last_error or '')[:200]}" for r in failed]
    subs = store.subscriber_counts()
    lines.append("<b>Subscribers per topic</b>")
    lines += [f"• <code>{esc(r.id)}</code>: {subs.get(r.id, 0)}" for r in rulebook.rules]
    marks = store.feedback_counts()
    lines.append("<b>Marked not relevant by readers</b> (alertbot rules feedback)")
    lines += [
        f"• <code>{esc(rule)}</code>: {count} mark{'s' if count != 1 else ''} on {stories} "
        f"stor{'ies' if stories != 1 else 'y'}"
        for rule, (count, stories) in marks.items()
    ] or ["• none yet"]
    return lines


async def status(update: Update, context: Context) -> None:
    """Admins: feeds' health, last cycle, outbox backlog and failures, subscribers per topic."""
    if not _is_admin(update, context):
        await update.effective_message.reply_text("That command is for the bot's admins.")
        return
    bot_data = context.bot_data
    await _reply_lines(update, status_lines(bot_data["store"], bot_data["rulebook"], time.time()))


async def feeds(update: Update, context: Context) -> None:
    """Admins: every feed with its last success and error."""
    if not _is_admin(update, context):
        await update.effective_message.reply_text("That command is for the bot's admins.")
        return
    now, lines = time.time(), ["<b>Feeds</b>"]
    for f in context.bot_data["store"].feed_health():
        state = "⛔ disabled" if f.disabled else ("⚠️" if f.error_count else "✅")
        line = f"{state} <b>{esc(f.name)}</b> ok {_ago(f.last_success, now)}, {f.items} items"
        if f.error_count:
            line += f"; {f.error_count} errors, last: {esc((f.last_error or '')[:150])}"
        lines.append(line)
    if len(lines) == 1:
        lines.append("No feeds recorded yet.")
    await _reply_lines(update, lines)


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
    "status": status,
    "feeds": feeds,
    "reload": reload,
}


def admin_notifier(bot: Any, admin_ids: set[int]) -> Callable[[str], Awaitable[None]]:
    """A function that tells every admin something (for deliver.Deliverer(notify=...))."""

    async def notify(text: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M UTC")
        for admin in sorted(admin_ids):
            try:
                await bot.send_message(admin, f"⚠️ {esc(text)} ({stamp})", parse_mode=ParseMode.HTML)
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
