"""The topic pages of /start and /topics: paginated lists, toggle buttons with short stable keys.

Callback data is at most 64 bytes, so a button never carries a rule id: it carries a short
hash of it (stable across restarts and reloads) and where it was pressed:

    t:<view>:<page>:<key>   follow or unfollow the topic with that key
    p:<view>:<page>         show that page
    t:<rule id>             buttons sent before pagination (still answered)

`view` is "s" under /start (only the buttons change) or "l" under /topics (text and buttons).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.telegram.handlers import (
    Context,
    _rules,
    _store,
    ensure_subscriber,
    gone_lines,
    may_change,
    reply,
)
from bot.telegram.messages import esc, shorten

PAGE_SIZE = 8
WELCOME = (
    "I watch conflict and security reporting and alert you when a report matches your topics.\n"
    "Tap a topic to follow it (✅ = following); /help lists everything I can do."
)


def topic_key(rule_id: str) -> str:
    """A short stable key for a rule id (8 characters, whatever the id's length)."""
    digest = hashlib.blake2b(rule_id.encode(), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode()


def page_count(rules: Sequence[Any]) -> int:
    """How many pages the topics fill (at least one)."""
    return max(1, -(-len(rules) // PAGE_SIZE))


def _page_rules(rules: Sequence[Any], page: int) -> tuple[int, Sequence[Any]]:
    page = min(max(page, 0), page_count(rules) - 1)
    return page, rules[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]


def keyboard(rules: Sequence[Any], subscribed: set[str], view: str = "s", page: int = 0):
    """One toggle button per topic of the page (✅ marks those followed), then ◀ ▶."""
    page, shown = _page_rules(rules, page)
    rows = [
        [
            InlineKeyboardButton(
                shorten(f"{'✅ ' if rule.id in subscribed else ''}{rule.title}", 60),
                callback_data=f"t:{view}:{page}:{topic_key(rule.id)}",
            )
        ]
        for rule in shown
    ]
    last = page_count(rules) - 1
    nav = []
    if page > 0:
        label = f"◀ {page}/{last + 1}"
        nav.append(InlineKeyboardButton(label, callback_data=f"p:{view}:{page - 1}"))
    if page < last:
        label = f"{page + 2}/{last + 1} ▶"
        nav.append(InlineKeyboardButton(label, callback_data=f"p:{view}:{page + 1}"))
    return InlineKeyboardMarkup(rows + ([nav] if nav else []))


def topics_text(rules: Sequence[Any], page: int, gone: Sequence[str] = ()) -> str:
    """One page of the topic list, with descriptions (always under Telegram's limit)."""
    page, shown = _page_rules(rules, page)
    first = page * PAGE_SIZE + 1
    span = f"{first}–{first + len(shown) - 1} of {len(rules)}" if len(rules) > 1 else ""
    lines = [f"<b>Topics</b> {span} (tap to follow or unfollow):".replace("  ", " "), ""]
    for rule in shown:
        description = shorten((rule.description or "").strip().split("\n")[0], 200)
        title, rule_id = esc(shorten(rule.title, 100)), esc(shorten(rule.id, 120))
        lines.append(f"• <b>{title}</b> <code>{rule_id}</code> – {esc(description)}")
    if page == 0:
        lines += gone_lines(list(gone)[:10])
    return "\n".join(lines)


async def start(update: Update, context: Context) -> None:
    """Welcome the chat and show the first page of topic buttons."""
    subscribed = _store(context).subscriptions(update.effective_chat.id)
    await reply(update, esc(WELCOME), keyboard(_rules(context), subscribed, "s"))


async def topics(update: Update, context: Context) -> None:
    """List the topics, a page at a time, with their descriptions and toggle buttons."""
    rules = _rules(context)
    subscribed = _store(context).subscriptions(update.effective_chat.id)
    gone = sorted(subscribed - {r.id for r in rules})
    await reply(update, topics_text(rules, 0, gone), keyboard(rules, subscribed, "l"))


async def page(update: Update, context: Context) -> None:
    """Turn to another page of the topic list or buttons."""
    query = update.callback_query
    _, view, number = ((query.data or "") + "::").split(":")[:3]
    wanted = int(number) if number.isdigit() else 0
    rules = _rules(context)
    subscribed = _store(context).subscriptions(update.effective_chat.id)
    markup = keyboard(rules, subscribed, view, wanted)
    await query.answer()
    if view == "l":
        gone = sorted(subscribed - {r.id for r in rules})
        await query.edit_message_text(topics_text(rules, wanted, gone), reply_markup=markup)
    else:
        await query.edit_message_reply_markup(markup)


def _pressed(data: str, rules: Sequence[Any]) -> tuple[Any | None, str, int]:
    """(rule, view, page) of a toggle button; the rule is None when it no longer exists."""
    parts = data.split(":")
    if len(parts) == 4:
        _, view, number, key = parts
        rule = next((r for r in rules if topic_key(r.id) == key), None)
        return rule, view, int(number) if number.isdigit() else 0
    rule_id = data[2:]  # a button sent before pagination carries the rule id itself
    return next((r for r in rules if r.id == rule_id), None), "s", 0


async def toggle(update: Update, context: Context) -> None:
    """Follow or unfollow the topic on the tapped button."""
    query = update.callback_query
    rules = _rules(context)
    rule, view, number = _pressed(query.data or "", rules)
    if rule is None:
        await query.answer("That topic no longer exists.", show_alert=True)
        return
    if not await may_change(update, context):
        return
    chat_id, store = update.effective_chat.id, _store(context)
    ensure_subscriber(update, context)
    if rule.id in store.subscriptions(chat_id):
        store.unsubscribe(chat_id, [rule.id])
        await query.answer(f"Unfollowed: {rule.title}")
    else:
        store.subscribe(chat_id, [rule.id])
        await query.answer(f"Following: {rule.title}")
    await query.edit_message_reply_markup(
        keyboard(rules, store.subscriptions(chat_id), view, number)
    )
