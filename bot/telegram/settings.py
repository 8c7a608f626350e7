"""Bot commands that change how a chat gets alerts: /digest, /timezone, /instant, /mute."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

from telegram import Update

from bot.durations import format_duration, parse_duration
from bot.telegram.handlers import Context, _store, ensure_subscriber, may_change, reply
from bot.telegram.messages import esc

HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


async def digest(update: Update, context: Context) -> None:
    """Switch to one daily digest at HH:MM (/digest 08:00)."""
    arg = context.args[0] if context.args else ""
    m = HHMM.fullmatch(arg)
    if not m:
        await reply(update, "Write the time as HH:MM, e.g. <code>/digest 08:00</code>.")
        return
    if not await may_change(update, context):
        return
    ensure_subscriber(update, context)
    at = f"{int(m[1]):02d}:{m[2]}"
    _store(context).set_delivery_mode(update.effective_chat.id, "digest", at)
    sub = _store(context).get_subscriber(update.effective_chat.id)
    await reply(
        update,
        f"You will get one digest a day at {at} ({esc(sub.timezone or 'UTC')})."
        " /timezone changes the zone, /instant switches back.",
    )


async def timezone(update: Update, context: Context) -> None:
    """Set the time zone digests are timed in (/timezone Europe/Kyiv)."""
    name = context.args[0] if context.args else ""
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        await reply(
            update,
            f"Unknown time zone <code>{esc(name) or '?'}</code>; write Area/City,"
            " e.g. <code>/timezone Europe/Kyiv</code>.",
        )
        return
    if not await may_change(update, context):
        return
    ensure_subscriber(update, context)
    _store(context).set_timezone(update.effective_chat.id, name)
    await reply(update, f"Time zone set to {esc(name)}.")


async def instant(update: Update, context: Context) -> None:
    """Switch back to instant alerts."""
    if not await may_change(update, context):
        return
    ensure_subscriber(update, context)
    _store(context).set_delivery_mode(update.effective_chat.id, "instant")
    _resume(context, update.effective_chat.id)
    await reply(update, "Alerts will come as they are found.")


def _resume(context: Context, chat_id: int) -> None:
    """Held rows (digest, mute) become due now."""
    _store(context).reschedule_chat(chat_id, time.time())


async def mute(update: Update, context: Context) -> None:
    """Hold alerts for a while (/mute 2h); they arrive when the mute ends."""
    try:
        seconds = parse_duration(context.args[0] if context.args else "")
    except ValueError:
        seconds = 0
    if seconds <= 0:
        await reply(update, "How long? e.g. <code>/mute 2h</code> (30m, 6h, 1d).")
        return
    if not await may_change(update, context):
        return
    ensure_subscriber(update, context)
    _store(context).mute(update.effective_chat.id, time.time() + seconds)
    await reply(
        update,
        f"Muted for {format_duration(seconds)}. Alerts found meanwhile arrive afterwards;"
        " /unmute ends it now.",
    )


async def unmute(update: Update, context: Context) -> None:
    """End a mute now."""
    if not await may_change(update, context):
        return
    ensure_subscriber(update, context)
    _store(context).mute(update.effective_chat.id, None)
    _resume(context, update.effective_chat.id)
    await reply(update, "Alerts are on again.")


SETTINGS_COMMANDS: dict[str, Callable[[Update, Context], Awaitable[None]]] = {
    "digest": digest,
    "timezone": timezone,
    "instant": instant,
    "mute": mute,
    "unmute": unmute,
}
