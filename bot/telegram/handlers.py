"""The command handlers people talk to, and what they share (topics.py has the topic pages)."""

from __future__ import annotations

import contextlib
import difflib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.durations import format_duration
from bot.models import Feed, Item
from bot.rules.emphasis import emphasis_of
from bot.rules.reload import Reloader
from bot.telegram.messages import esc, render_matches, split_lines


@dataclass
class BotOptions:
    """What the handlers need besides the store and the rulebook."""

    admin_ids: set[int] = field(default_factory=set)
    access: str | list[int] = "open"
    rules_path: Path | None = None  # where /reload reads rules when no reloader is given
    reloader: Reloader | None = None  # shared with the file watcher and SIGHUP
    feeds: tuple[Feed, ...] = ()  # as configured, for /status and /feeds


log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
HELP = """<b>Topics</b>
/topics – every topic, with buttons to follow it
/subscribe ID… or all – follow topics by id
/unsubscribe ID… or all – stop following
/list – what you follow and how you get it
<b>Delivery</b>
/digest HH:MM – one digest a day at that time
/timezone Area/City – your time zone (default UTC); alone, shows it
/instant – every alert as it comes
/mute 2h – quiet for a while · /unmute
<b>Other</b>
/test TEXT – the alert a report with TEXT would bring
/stop – unfollow everything and forget this chat (asks first)
/help – this message"""
ADMIN_HELP = "\n<b>Admin</b>\n/status – health · /feeds – feeds · /reload – reload rules"


# -- helpers -------------------------------------------------------------------------
def _store(context: Context) -> Any:
    return context.bot_data["store"]


def _options(context: Context) -> BotOptions:
    return context.bot_data["options"]


def _rules(context: Context) -> list[Any]:
    return list(context.bot_data["rulebook"].rules)


async def reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer in the chat the update came from (HTML, no previews: the Application's Defaults)."""
    await update.effective_message.reply_text(text, reply_markup=markup)


async def reply_lines(update: Update, lines: list[str]) -> None:
    """Answer with these lines, in as few messages as Telegram's length limit allows."""
    for part in split_lines(lines):
        await reply(update, part)


def command_word(update: Update) -> str:
    """The command the user sent, without the bot's @name ('/subscribe')."""
    text = update.effective_message.text if update.effective_message else ""
    return (text or "").split()[0].split("@")[0] if (text or "").startswith("/") else ""


def allowed(context: Context, chat_id: int, user_id: int | None) -> bool:
    """Whether the configured access lets this chat use the bot."""
    options = _options(context)
    if options.access == "open" or user_id in options.admin_ids:
        return True
    return chat_id in options.access


async def may_change(update: Update, context: Context) -> bool:
    """In groups only an admin may change subscriptions; tells the user when not allowed."""
    chat, user = update.effective_chat, update.effective_user
    if not allowed(context, chat.id, user.id if user else None):
        await _say(update, f"This bot is private. Ask its operator to allow chat id {chat.id}.")
        return False
    if chat.type == "private":
        return True
    member = await context.bot.get_chat_member(chat.id, user.id)
    if member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        return True
    what = f"use {command_word(update)}" if update.message else "change its topics"
    await _say(update, f"Only an admin of this group can {what} here.")
    return False


async def _say(update: Update, text: str) -> None:
    if update.callback_query:
        await update.callback_query.answer(text, show_alert=True)
    else:
        await reply(update, esc(text))


async def known_subscriber(update: Update, context: Context) -> Any | None:
    """The chat's subscriber; when there is none, says how to start (settings never create
    one: a chat that sent /stop stays forgotten)."""
    sub = _store(context).get_subscriber(update.effective_chat.id)
    if sub is None:
        await reply(
            update,
            "This chat follows no topics, so there is nothing to deliver yet. "
            "/topics to choose some; then this setting applies to them.",
        )
    return sub


def ensure_subscriber(update: Update, context: Context) -> None:
    """Register the chat (again) as an active subscriber."""
    chat = update.effective_chat
    store = _store(context)
    sub = store.get_subscriber(chat.id)
    if sub is None or not sub.active:
        title = chat.title or chat.username or chat.first_name or ""
        store.add_subscriber(chat.id, kind=chat.type, title=title)


def resolve(words: list[str], rules: list[Any]) -> tuple[list[str], list[str]]:
    """Topic ids named by `words` ('all' means every one) and the words that name none."""
    ids = [r.id for r in rules]
    words = [w for word in words for w in word.split(",") if w]  # "kursk, port-strikes"
    if any(w.lower() == "all" for w in words):
        return ids, []
    known = {i.lower(): i for i in ids}
    found = [known[w.lower()] for w in words if w.lower() in known]
    return found, [w for w in words if w.lower() not in known]


def did_you_mean(word: str, rules: list[Any]) -> str:
    """'unknown topic' with the closest topic ids, if any are close."""
    close = difflib.get_close_matches(word.lower(), [r.id for r in rules], n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(f'<code>{esc(c)}</code>' for c in close)}?" if close else ""
    return f"Unknown topic <code>{esc(word)}</code>.{hint}"


def gone_lines(rule_ids: list[str]) -> list[str]:
    """Topics a chat follows whose rule was removed: they no longer alert; say so."""
    return [
        f"• <code>{esc(i)}</code> – this topic is gone (its rule was removed) and no longer "
        f"alerts; /unsubscribe {esc(i)} to drop it"
        for i in rule_ids
    ]


async def _change(update: Update, context: Context, follow: bool) -> None:
    """Shared body of /subscribe and /unsubscribe."""
    rules, verb = _rules(context), "subscribe" if follow else "unsubscribe"
    if not context.args:
        await reply(
            update,
            f"Write topic ids, e.g. <code>/{verb} {rules[0].id if rules else 'kursk'}</code>"
            f" or <code>/{verb} all</code>. /topics lists them.",
        )
        return
    if not follow:  # topics whose rule was removed can still be dropped
        followed = _store(context).subscriptions(update.effective_chat.id)
        rules = rules + [SimpleNamespace(id=i) for i in sorted(followed - {r.id for r in rules})]
    found, unknown = resolve(context.args, rules)
    if found and not await may_change(update, context):
        return
    chat_id, store = update.effective_chat.id, _store(context)
    lines = [did_you_mean(w, rules) for w in unknown]
    found = list(dict.fromkeys(found))
    if found:
        if follow:  # unfollowing never creates a subscriber (no ghosts after /stop)
            ensure_subscriber(update, context)
        (store.subscribe if follow else store.unsubscribe)(chat_id, found)
        done = "Following" if follow else "No longer following"
        named = ", ".join(f"<code>{esc(i)}</code>" for i in found)
        lines.insert(0, f"{done}: {named}." if len(found) <= 20 else f"{done} {len(found)} topics.")
    await reply_lines(update, lines)


async def subscribe(update: Update, context: Context) -> None:
    """Follow topics by id (/subscribe kursk port-strikes, or all)."""
    await _change(update, context, follow=True)


async def unsubscribe(update: Update, context: Context) -> None:
    """Stop following topics by id (/unsubscribe kursk, or all)."""
    await _change(update, context, follow=False)


async def list_topics(update: Update, context: Context) -> None:
    """Show the topics this chat follows and how alerts are delivered."""
    chat_id, store = update.effective_chat.id, _store(context)
    sub, ids = store.get_subscriber(chat_id), sorted(store.subscriptions(chat_id))
    names = {r.id: r.title for r in _rules(context)}
    lines = ["You follow no topics yet. /topics shows them."] if not ids else ["<b>You follow:</b>"]
    lines += [f"• {esc(names[i])} <code>{esc(i)}</code>" for i in ids if i in names]
    lines += gone_lines([i for i in ids if i not in names])
    lines += ["", f"Delivery: {esc(delivery_mode(sub, time.time()))}"]
    await reply_lines(update, lines)


def delivery_mode(sub: Any, now: float | None = None) -> str:
    """How a subscriber gets alerts, in words."""
    if sub is None:
        return "instant"
    text = (
        "instant"
        if sub.mode != "digest"
        else f"daily digest at {sub.digest_time} ({sub.timezone or 'UTC'})"
    )
    now = time.time() if now is None else now
    if sub.muted_until and sub.muted_until > now:
        text += f"; muted for {format_duration(round((sub.muted_until - now) / 60) * 60 or 60)}"
    return text


async def test_text(update: Update, context: Context) -> None:
    """Show which topics would fire on the given text, with snippets."""
    parts = (update.effective_message.text or "").split(maxsplit=1)
    text = parts[1].strip() if len(parts) > 1 else ""
    if not text:
        await reply(
            update,
            "Send the text after the command, e.g. <code>/test PLA drills near Taiwan</code>.",
        )
        return
    rulebook = context.bot_data["rulebook"]
    item = Item("test", "test", "test", "", "", None, text)
    sub = _store(context).get_subscriber(update.effective_chat.id)
    tz = sub.timezone if sub else None
    for part in render_matches(rulebook.match(item), text, tz, emphasis_of(rulebook)):
        await reply(update, part)


COME_BACK = "To come back: /start and tap topics, or /subscribe ID."


async def stop(update: Update, context: Context) -> None:
    """Ask to confirm, with a button, before forgetting this chat."""
    if not await may_change(update, context):
        return
    if _store(context).get_subscriber(update.effective_chat.id) is None:
        await reply(update, f"This chat follows nothing; there is nothing to stop. {COME_BACK}")
        return
    buttons = [
        InlineKeyboardButton("Yes, stop everything", callback_data="stop:yes"),
        InlineKeyboardButton("Cancel", callback_data="stop:no"),
    ]
    await reply(
        update,
        "Stop every alert and forget this chat's topics and settings?",
        InlineKeyboardMarkup([buttons]),
    )


async def stop_answer(update: Update, context: Context) -> None:
    """The /stop buttons: forget the chat, or leave everything as it was."""
    query = update.callback_query
    if query.data != "stop:yes":
        await query.answer()
        await query.edit_message_text("Nothing changed. /list shows what you follow.")
        return
    if not await may_change(update, context):
        return
    _store(context).delete_subscriber(update.effective_chat.id)
    await query.answer("Stopped.")
    await query.edit_message_text(
        f"Done: you follow nothing and I have forgotten this chat. {COME_BACK}"
    )


async def help_(update: Update, context: Context) -> None:
    """List the commands."""
    user = update.effective_user
    extra = ADMIN_HELP if user and user.id in _options(context).admin_ids else ""
    await reply(update, HELP + extra)


async def unknown_command(update: Update, context: Context) -> None:
    """Answer a command the bot does not know."""
    await reply(update, f"I don't know {esc(command_word(update))}. /help lists what I can do.")


async def plain_text(update: Update, context: Context) -> None:
    """Answer plain text with a pointer to the useful commands."""
    await reply(
        update,
        "I only understand commands. /topics to choose topics,"
        " <code>/test TEXT</code> to try the rules, /help for all.",
    )


async def on_error(update: object, context: Context) -> None:
    """Log handler errors (without the update's content) and tell the user something went wrong."""
    log.error("handler failed: %s", context.error, exc_info=context.error)
    if isinstance(update, Update) and update.effective_message:
        with contextlib.suppress(TelegramError):
            await update.effective_message.reply_text("Sorry, something went wrong; try again.")
