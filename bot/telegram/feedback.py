"""Readers' "Not relevant" buttons: the keyboards under alerts and digests, and their handler.

Callback data stays far below Telegram's 64 bytes and never goes stale with edits: it names the
outbox row the message was sent from (its alert is stored there, with the chat it went to) and
the index of the topic in that alert:

    nr:ROW:I   mark topic I of the alert in outbox row ROW not relevant (for the tapping reader)
    nu:ROW:I   undo that mark
    nd:ROW     under a digest: list the digest's stories, each with its own nr button

A tap records (chat, reader, story, rule, the sentence that fired), answers with a short thanks
and turns the button into its undo; the reader's subscriptions and alerts do not change.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.models import Alert
from bot.telegram.messages import shorten

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE

PATTERN = r"^n[rud]:"
MARK, UNDO = "👎 ", "↩ Undo: "
MAX_PICKER = 50  # stories offered under one digest (Telegram allows 100 buttons)
THANKS = "Thanks, noted: this helps the editors tune the topic. Your alerts stay as they are."


def alert_keyboard(row_id: int, alert: Alert) -> InlineKeyboardMarkup:
    """One "Not relevant" button, or one per topic when the story matched several."""
    if len(alert.matches) == 1:
        return _markup([(f"{MARK}Not relevant", f"nr:{row_id}:0")])
    return _markup(
        [
            (f"{MARK}Not relevant: {shorten(m.title, 40)}", f"nr:{row_id}:{i}")
            for i, m in enumerate(alert.matches)
        ]
    )


def digest_keyboard(first_row_id: int) -> InlineKeyboardMarkup:
    """Under a digest: one button that lists the digest's stories to mark."""
    return _markup([(f"{MARK}Mark a story not relevant…", f"nd:{first_row_id}")])


def _markup(buttons: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data)] for label, data in buttons]
    )


def _parse(data: str) -> tuple[str, int, int] | None:
    parts = data.split(":")
    try:
        numbers = [int(p) for p in parts[1:]]
    except ValueError:
        return None
    if parts[0] == "nd" and len(numbers) == 1:
        return "nd", numbers[0], 0
    if parts[0] in ("nr", "nu") and len(numbers) == 2:
        return parts[0], numbers[0], numbers[1]
    return None


async def on_button(update: Update, context: Context) -> None:
    """A reader tapped "Not relevant", its undo, or the digest's list button."""
    query = update.callback_query
    parsed = _parse(query.data or "")
    store = context.bot_data["store"]
    sent = store.sent_alert(parsed[1]) if parsed else None
    chat = update.effective_chat
    if parsed is None or sent is None or chat is None or sent.chat_id != chat.id:
        await query.answer("This button has expired.")
        return
    kind, _, index = parsed
    if kind == "nd":
        await _picker(update, store, sent)
        return
    if index >= len(sent.alert.matches):
        await query.answer("This button has expired.")
        return
    match, user = sent.alert.matches[index], update.effective_user.id
    if kind == "nr":
        store.add_feedback(sent, user, match)
        await query.answer(THANKS)
    elif store.remove_feedback(sent.chat_id, user, sent.alert.item.story_key, match.rule_id):
        await query.answer("Undone: your mark is removed.")
    else:  # in a group, another member's tap turned the button into an undo
        await query.answer("Nothing to undo: you had not marked this story.")
        return
    await _toggle(query, query.data or "")


async def _toggle(query: Any, data: str) -> None:
    """Turn the tapped button into its undo (or back); the message text stays as it is."""
    kind, rest = data.split(":", 1)
    flipped = ("nu" if kind == "nr" else "nr") + ":" + rest
    # an old message (over 48 hours) comes as InaccessibleMessage, without its keyboard
    markup = getattr(query.message, "reply_markup", None)
    if markup is None:
        return
    rows = []
    for row in markup.inline_keyboard:
        rows.append([_flip(b, flipped) if b.callback_data == data else b for b in row])
    with contextlib.suppress(BadRequest):  # "message is not modified" after a double tap
        await query.edit_message_reply_markup(InlineKeyboardMarkup(rows))


def _flip(button: InlineKeyboardButton, data: str) -> InlineKeyboardButton:
    label = button.text
    if data.startswith("nu:"):
        label = UNDO + label.removeprefix(MARK)
    else:
        label = MARK + label.removeprefix(UNDO)
    return InlineKeyboardButton(label, callback_data=data)


async def _picker(update: Update, store: Any, sent: Any) -> None:
    """Under a digest: a message listing its stories, one "Not relevant" button per topic."""
    query, user = update.callback_query, update.effective_user.id
    buttons = []
    # every row of a digest shares its chat, so one query answers all its buttons
    marks = store.feedback_marks(sent.chat_id, user)
    for row in store.digest_alerts(sent.chat_id, sent.id):
        item = row.alert.item
        for i, m in enumerate(row.alert.matches):
            marked = (item.story_key, m.rule_id) in marks
            label = f"{shorten(item.title or item.link, 40)} · {shorten(m.title, 20)}"
            data = f"{'nu' if marked else 'nr'}:{row.id}:{i}"
            buttons.append((f"{UNDO if marked else MARK}{label}", data))
    if not buttons:
        await query.answer("The stories of this digest are no longer stored.")
        return
    await query.answer()
    shown = buttons[:MAX_PICKER]
    more = f" (the first {MAX_PICKER} of {len(buttons)})" if len(buttons) > MAX_PICKER else ""
    await query.get_bot().send_message(
        sent.chat_id,
        f"Which story is not relevant to its topic?{more} Tap to mark, tap again to undo.",
        reply_markup=_markup(shown),
    )
