"""Bot commands that change how a chat gets alerts: /digest, /timezone, /instant, /mute."""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cache
from zoneinfo import available_timezones

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.durations import format_duration, parse_duration
from bot.telegram.handlers import Context, _store, known_subscriber, may_change, reply
from bot.telegram.messages import esc, zone, zone_label

HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


async def digest(update: Update, context: Context) -> None:
    """Switch to one daily digest at HH:MM (/digest 08:00)."""
    arg = context.args[0] if context.args else ""
    m = HHMM.fullmatch(arg)
    if not m:
        await reply(update, "Write the time as HH:MM, e.g. <code>/digest 08:00</code>.")
        return
    if not await may_change(update, context) or not await known_subscriber(update, context):
        return
    at = f"{int(m[1]):02d}:{m[2]}"
    _store(context).set_delivery_mode(update.effective_chat.id, "digest", at)
    _resume(context, update.effective_chat.id)  # held stories wait for the new slot
    sub = _store(context).get_subscriber(update.effective_chat.id)
    await reply(
        update,
        f"You will get one digest a day at {at} ({esc(sub.timezone or 'UTC')})."
        " /timezone changes the zone, /instant switches back.",
    )


async def timezone(update: Update, context: Context) -> None:
    """Set the time zone digests are timed in (/timezone Europe/Kyiv)."""
    name = context.args[0] if context.args else ""
    if not name:
        sub = _store(context).get_subscriber(update.effective_chat.id)
        await reply(update, f"Your time zone is {_zone_now(sub.timezone if sub else 'UTC')}. "
                    "Change it with <code>/timezone Area/City</code>, e.g. "
                    "<code>/timezone Europe/Kyiv</code>.")  # fmt: skip
        return
    if name not in zone_names():
        guesses = suggest_zone(name)
        buttons = [[InlineKeyboardButton(f"Use {g}", callback_data=f"tz:{g}")] for g in guesses]
        await reply(
            update, _unknown_zone(name, guesses), InlineKeyboardMarkup(buttons) if buttons else None
        )
        return
    if await _set_zone(update, context, name):
        await reply(update, f"Time zone set to {_zone_now(name)}.")


async def zone_button(update: Update, context: Context) -> None:
    """A "Use Europe/Kyiv" button under a did-you-mean: set that zone."""
    query = update.callback_query
    name = (query.data or "")[3:]
    if name not in zone_names():
        await query.answer("Unknown time zone.", show_alert=True)
        return
    if await _set_zone(update, context, name):
        await query.answer()
        await query.edit_message_text(f"Time zone set to {_zone_now(name)}.")


async def _set_zone(update: Update, context: Context, name: str) -> bool:
    """Store the zone for a known subscriber; held digests move to the new local time."""
    if not await may_change(update, context) or not await known_subscriber(update, context):
        return False
    _store(context).set_timezone(update.effective_chat.id, name)
    _resume(context, update.effective_chat.id)
    return True


@cache
def zone_names() -> frozenset[str]:
    """Every IANA zone name this system knows."""
    return frozenset(available_timezones())


def suggest_zone(name: str) -> list[str]:
    """Zones the user probably meant: the same name in other case, a city alone, close ones."""
    wanted = name.strip().replace(" ", "_").casefold()
    names = sorted(zone_names())
    exact = [z for z in names if z.casefold() == wanted]
    city = [z for z in names if z.rsplit("/", 1)[-1].casefold() == wanted]
    if exact or city:
        return (exact + city)[:3]
    folded = {z.casefold(): z for z in names}
    close = difflib.get_close_matches(wanted, list(folded), n=3, cutoff=0.75)
    cities = {z.rsplit("/", 1)[-1].casefold(): z for z in names}
    close += difflib.get_close_matches(wanted, list(cities), n=3, cutoff=0.75)
    found = [folded.get(c) or cities[c] for c in close]
    return list(dict.fromkeys(found))[:3]


def _unknown_zone(name: str, guesses: list[str]) -> str:
    if guesses:
        options = " or ".join(f"<code>{esc(g)}</code>" for g in guesses)
        return (
            f"Unknown time zone <code>{esc(name)}</code>. Did you mean {options}? "
            f"Send <code>/timezone {esc(guesses[0])}</code>."
        )
    return (
        f"Unknown time zone <code>{esc(name)}</code>; write Area/City,"
        " e.g. <code>/timezone Europe/Kyiv</code>."
    )


def _zone_now(name: str) -> str:
    """'Europe/Kyiv (EEST, now 21:30)'."""
    local = datetime.now(zone(name))
    return f"{esc(name)} ({esc(zone_label(local))}, now {local:%H:%M})"


async def instant(update: Update, context: Context) -> None:
    """Switch back to instant alerts."""
    if not await may_change(update, context) or not await known_subscriber(update, context):
        return
    _store(context).set_delivery_mode(update.effective_chat.id, "instant")
    _resume(context, update.effective_chat.id)
    await reply(update, "Alerts will come as they are found.")


def _resume(context: Context, chat_id: int) -> None:
    """Held rows (digest, mute) become due now: delivery then holds them again for the slot
    the new settings give (so a changed zone or time never leaves them a day late)."""
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
    if not await may_change(update, context) or not await known_subscriber(update, context):
        return
    _store(context).mute(update.effective_chat.id, time.time() + seconds)
    await reply(
        update,
        f"Muted for {format_duration(seconds)}. Alerts found meanwhile arrive afterwards;"
        " /unmute ends it now.",
    )


async def unmute(update: Update, context: Context) -> None:
    """End a mute now."""
    if not await may_change(update, context) or not await known_subscriber(update, context):
        return
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
