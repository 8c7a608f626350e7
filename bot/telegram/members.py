"""Whether a chat can hear us: block, unblock, kick and re-add as they happen (my_chat_member),
and any message from a deactivated chat, reactivate or deactivate its subscriber."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatMemberStatus

from bot.telegram.handlers import Context, _store

log = logging.getLogger(__name__)
GONE = (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT)  # BANNED is "kicked": also a block


async def membership(update: Update, context: Context) -> None:
    """The bot's own membership changed: a block or kick deactivates, an unblock or re-add
    reactivates (settings and topics kept)."""
    change = update.my_chat_member
    chat, status = change.chat, change.new_chat_member.status
    store = _store(context)
    sub = store.get_subscriber(chat.id)
    if sub is None:
        return
    if status in GONE and sub.active:
        reason = "blocked the bot" if chat.type == "private" else f"bot {status}"
        cancelled = store.deactivate(chat.id, reason)
        log.info("chat %s %s: deactivated, %d pending cancelled", chat.id, reason, cancelled)
    elif status not in GONE and not sub.active:
        store.add_subscriber(chat.id, kind=chat.type, title=sub.title)
        log.info("chat %s can hear the bot again (%s): reactivated", chat.id, status)


async def reactivate(update: Update, context: Context) -> None:
    """Any message or button from a deactivated chat brings it back: it can hear us again."""
    chat = update.effective_chat
    if chat is None or update.my_chat_member is not None:
        return
    store = _store(context)
    sub = store.get_subscriber(chat.id)
    if sub is not None and not sub.active:
        store.add_subscriber(chat.id, kind=chat.type, title=sub.title)
        log.info("chat %s wrote again: reactivated", chat.id)
