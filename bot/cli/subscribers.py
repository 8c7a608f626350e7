"""`alertbot subscribers add|list|remove`: manage chats (channels above all) from the shell."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import logging
import sys

from bot.config import Settings, add_config_option, settings_from_args
from bot.errors import AlertbotError
from bot.logs import add_secrets, redact


def register(commands: argparse._SubParsersAction) -> None:
    """Add `subscribers add|list|remove` to the command tree."""
    parser = commands.add_parser(
        "subscribers",
        help="add, list or remove subscribed chats (channels are subscribed this way)",
        description="Manage subscribers without Telegram: channels cannot talk to the bot, "
        "so they are subscribed here. The bot must be an admin of a channel to post in it.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="subscribe a chat to topics")
    add.add_argument("--chat", required=True, help="numeric chat id or @channelname")
    add.add_argument("--topic", action="append", required=True, help="topic id (repeatable)")
    remove = actions.add_parser("remove", help="unsubscribe a chat from topics, or forget it")
    remove.add_argument("--chat", required=True, help="numeric chat id or @channelname")
    remove.add_argument("--topic", action="append", help="topic id; without it, forget the chat")
    listing = actions.add_parser("list", help="every subscriber with its topics and state")
    for sub in (add, remove, listing):
        add_config_option(sub)
    add.set_defaults(handler=run_add)
    remove.set_defaults(handler=run_remove)
    listing.set_defaults(handler=run_list)


def _fail(message: str) -> int:
    print(f"alertbot subscribers: {message}", file=sys.stderr)
    return 1


def resolve_chat(chat: str, settings: Settings) -> tuple[int, str, str]:
    """(chat id, kind, title) for a numeric id or an @channel (asked of the Bot API)."""
    text = chat.strip()
    if text.lstrip("-").isdigit():
        chat_id = int(text)
        return chat_id, "private" if chat_id > 0 else "group", ""
    if not text.startswith("@"):
        raise AlertbotError(f"{chat!r} is neither a numeric chat id nor an @channel name")
    if not settings.telegram_token:
        raise AlertbotError(
            f"finding the id of {text} needs the bot token (TELEGRAM_BOT_TOKEN); "
            "or pass the numeric chat id"
        )
    return asyncio.run(_lookup(text, settings))


async def _lookup(name: str, settings: Settings) -> tuple[int, str, str]:
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    from bot.telegram.app import api_base_url, quiet_token_loggers

    quiet_token_loggers()
    base = api_base_url(settings.telegram_api_url) if settings.telegram_api_url else None
    kwargs = {"base_url": base} if base else {}
    token = settings.telegram_token or ""
    unexpected = (
        f"could not look up {name}: the Bot API gave an answer alertbot does not understand; "
        "check ALERTBOT_TELEGRAM_API_URL, or pass the numeric chat id instead"
    )
    # python-telegram-bot logs a garbled answer with a traceback before raising; here that
    # answer becomes one clear line below, so its records would only repeat it as noise
    library = logging.getLogger("telegram")
    level, library.level = library.level, logging.CRITICAL
    try:
        async with Bot(token, **kwargs) as bot:
            chat = await bot.get_chat(name)
    except InvalidToken:
        raise AlertbotError("Telegram refused the bot token (TELEGRAM_BOT_TOKEN)") from None
    except TelegramError as exc:
        add_secrets([token])
        reason = redact(str(exc))
        raise AlertbotError(f"Telegram could not look up {name}: {reason}") from None
    except Exception:  # a malformed answer breaks parsing anywhere in PTB: say so, no traceback
        raise AlertbotError(unexpected) from None
    finally:
        library.setLevel(level)
    if not isinstance(getattr(chat, "id", None), int) or not getattr(chat, "type", None):
        raise AlertbotError(unexpected)
    return chat.id, str(chat.type), chat.title or name


def _topics(settings: Settings, wanted: list[str]) -> list[str]:
    """The topic ids, checked against the rules; raises naming the unknown ones."""
    from bot.rules.files import load_rules

    known = [r.id for r in load_rules(settings.rules_path).rules]
    for topic in wanted:
        if topic not in known:
            close = difflib.get_close_matches(topic, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise AlertbotError(f"unknown topic {topic!r}{hint}; known: {', '.join(known)}")
    return wanted


def run_add(args: argparse.Namespace) -> int:
    """Subscribe a chat to topics (creating or reactivating it)."""
    from bot.store import Store

    try:
        settings = settings_from_args(args)
        topics = _topics(settings, args.topic)
        chat_id, kind, title = resolve_chat(args.chat, settings)
        with Store(settings.database) as store:
            store.add_subscriber(chat_id, kind=kind, title=title)
            store.subscribe(chat_id, topics)
            now = sorted(store.subscriptions(chat_id))
    except AlertbotError as exc:
        return _fail(str(exc))
    print(f"{chat_id} ({kind}{', ' + title if title else ''}) follows: {', '.join(now)}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Unsubscribe a chat from topics, or forget it entirely."""
    from bot.store import Store

    try:
        settings = settings_from_args(args)
        chat_id, _, _ = resolve_chat(args.chat, settings)
        with Store(settings.database) as store:
            if store.get_subscriber(chat_id) is None:
                return _fail(f"chat {chat_id} is not a subscriber")
            if args.topic:
                store.unsubscribe(chat_id, args.topic)
                print(
                    f"{chat_id} follows: {', '.join(sorted(store.subscriptions(chat_id))) or '-'}"
                )
            else:
                store.delete_subscriber(chat_id)
                print(f"{chat_id} forgotten")
    except AlertbotError as exc:
        return _fail(str(exc))
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print one line per subscriber: id, kind, state, mode, topics."""
    from bot.store import Store

    try:
        settings = settings_from_args(args)
        with Store(settings.database) as store:
            subscribers = store.subscribers()
            if not subscribers:
                print("No subscribers yet: people subscribe with /start in Telegram; "
                      "channels with `alertbot subscribers add`.")  # fmt: skip
                return 0
            print("CHAT\tKIND TITLE\tSTATE\tDELIVERY\tTOPICS")
            for sub in subscribers:
                state = "active" if sub.active else "inactive"
                mode = (
                    sub.mode if sub.mode != "digest" else f"digest {sub.digest_time} {sub.timezone}"
                )
                topics = ", ".join(sorted(store.subscriptions(sub.chat_id))) or "-"
                title = f" {sub.title}" if sub.title else ""
                print(f"{sub.chat_id}\t{sub.kind}{title}\t{state}\t{mode}\t{topics}")
    except AlertbotError as exc:
        return _fail(str(exc))
    return 0
