"""The python-telegram-bot Application: built with our data and every handler; polling."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.rules.reload import Reloader
from bot.telegram.admin import ADMIN_COMMANDS
from bot.telegram.deliver import rate_limiter
from bot.telegram.feedback import PATTERN as FEEDBACK_PATTERN
from bot.telegram.feedback import on_button as feedback_button
from bot.telegram.handlers import (
    BotOptions,
    help_,
    list_topics,
    on_error,
    plain_text,
    stop,
    stop_answer,
    subscribe,
    test_text,
    unknown_command,
    unsubscribe,
)
from bot.telegram.members import membership, reactivate
from bot.telegram.settings import SETTINGS_COMMANDS, zone_button
from bot.telegram.topics import page, start, toggle, topics

log = logging.getLogger(__name__)
COMMANDS = [
    ("start", "welcome and topic buttons"),
    ("topics", "choose topics"),
    ("subscribe", "follow topics: /subscribe ID… or all"),
    ("unsubscribe", "stop following topics"),
    ("list", "my topics and delivery mode"),
    ("digest", "one daily digest: /digest 08:00"),
    ("timezone", "my time zone: /timezone Europe/Kyiv"),
    ("instant", "alerts as they come"),
    ("mute", "quiet for a while: /mute 2h"),
    ("unmute", "alerts again"),
    ("test", "see the alert a text would bring"),
    ("stop", "unfollow everything and forget me (asks first)"),
    ("help", "what I can do"),
]


def api_base_url(url: str) -> str:
    """A Bot API address as python-telegram-bot's base_url wants it (ending in /bot)."""
    url = url.rstrip("/")
    return url if url.endswith("/bot") else url + "/bot"


def quiet_token_loggers() -> None:
    """Silence the loggers that write request URLs, which hold the bot token."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # every request URL at INFO
    for name in ("telegram.Bot", "telegram.ext.ExtBot"):  # "Set Bot API URL" at DEBUG
        logging.getLogger(name).setLevel(logging.INFO)


def build_application(
    token: str,
    store: Any,
    rulebook: Any,
    options: BotOptions | None = None,
    base_url: str | None = None,
    per_second: float = 30.0,
) -> Application:
    """The Application with every handler, the global rate limiter and our data in bot_data.

    Every message is HTML without link previews (one Defaults for every call); the timed
    work (delivery, admin notices) runs as our own asyncio tasks, so no JobQueue."""
    quiet_token_loggers()
    defaults = Defaults(
        parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)
    )
    builder = ApplicationBuilder().token(token).defaults(defaults)
    builder = builder.rate_limiter(rate_limiter(per_second)).job_queue(None)
    if base_url:
        builder = builder.base_url(api_base_url(base_url))
    app = builder.build()
    options = options or BotOptions()
    if options.reloader is None and options.rules_path is not None:
        options.reloader = Reloader(options.rules_path, rulebook)
    if options.reloader is not None:  # handlers read bot_data["rulebook"] per update
        options.reloader.on_swap.append(lambda fresh: app.bot_data.update(rulebook=fresh))
    app.bot_data.update(store=store, rulebook=rulebook, options=options)
    add_handlers(app)
    return app


async def start_polling(app: Application, timeout: int = 10) -> None:
    """Initialize, publish the command menu and poll for updates in the background.

    The menu is published here, not in a post_init hook: those run only under
    run_polling/run_webhook, and we share the event loop with the poller instead."""
    await app.initialize()
    await publish_commands(app)
    await app.start()
    await app.updater.start_polling(
        timeout=timeout, poll_interval=0, allowed_updates=Update.ALL_TYPES
    )


async def stop_polling(app: Application) -> None:
    """Stop polling and the Application cleanly (confirms the updates already handled)."""
    if app.updater and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()


async def publish_commands(app: Application) -> None:
    """Publish the command menu."""
    try:
        await app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)


def add_handlers(app: Application) -> None:
    """Register every command, button, membership and fallback handler."""
    app.add_handler(TypeHandler(Update, reactivate), group=-1)  # first, for every update
    app.add_handler(ChatMemberHandler(membership, ChatMemberHandler.MY_CHAT_MEMBER))
    commands = {
        "start": start, "topics": topics, "subscribe": subscribe, "unsubscribe": unsubscribe,
        "list": list_topics, "test": test_text, "stop": stop, "help": help_,
    }  # fmt: skip
    for name, handler in (commands | SETTINGS_COMMANDS | ADMIN_COMMANDS).items():
        app.add_handler(CommandHandler(name, handler))
    app.add_handler(CallbackQueryHandler(toggle, pattern=r"^t:"))
    app.add_handler(CallbackQueryHandler(page, pattern=r"^p:"))
    app.add_handler(CallbackQueryHandler(stop_answer, pattern=r"^stop:"))
    app.add_handler(CallbackQueryHandler(zone_button, pattern=r"^tz:"))
    app.add_handler(CallbackQueryHandler(feedback_button, pattern=FEEDBACK_PATTERN))
    # in groups, commands meant for other bots are none of our business
    app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, unknown_command))
    app.add_handler(MessageHandler(filters.TEXT & filters.ChatType.PRIVATE, plain_text))
    app.add_error_handler(on_error)
