"""Conversations: the Application polls the fake Bot API over real HTTP while tests act as users."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from fakebotapi import FakeBotAPI, Sent
from telegram import Bot
from telegram.ext import Application

from bot.rules.files import load_rules
from bot.store import Store
from bot.telegram.app import (
    BotOptions,
    api_base_url,
    build_application,
    start_polling,
    stop_polling,
)
from bot.telegram.topics import topic_key

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
TOKEN = "654321:ANOTHER-secret-token"
RULES = Path(__file__).resolve().parents[2] / "rules"
ADMIN = 99
USER = 501
TAIWAN = "taiwan-exercises"


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "alertbot.db") as s:
        yield s


@pytest.fixture
def options() -> BotOptions:
    return BotOptions(admin_ids={ADMIN}, rules_path=RULES)


@pytest.fixture
async def app(bot_api: FakeBotAPI, store: Store, options: BotOptions) -> AsyncIterator[Application]:
    application = build_application(
        TOKEN, store, load_rules(RULES), options, base_url=bot_api.base_url
    )
    await start_polling(application, timeout=1)
    yield application
    await stop_polling(application)


async def say(api: FakeBotAPI, text: str, chat: int = USER, user: int | None = None) -> Sent:
    """A user writes; returns the bot's (first) answer."""
    before = len(api.messages(chat))
    api.user_sends(chat, text, user_id=user)
    return (await api.wait_for(chat, before + 1))[before]


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def test_fake_server_through_a_plain_bot(bot_api: FakeBotAPI):
    async with Bot(TOKEN, base_url=bot_api.base_url) as bot:
        assert (await bot.get_me()).username == "alertbot_test_bot"
        sent = await bot.send_message(7, "<b>x</b> &amp; y", parse_mode="HTML")
        bot_api.user_sends(7, "/start now")
        [update] = await bot.get_updates(timeout=1)
        assert (
            update.message.text == "/start now" and update.message.entities[0].type == "bot_command"
        )
        assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert bot_api.texts(7) == ["x & y"] and sent.message_id == 1


async def test_start_shows_topics_and_a_tap_subscribes(bot_api, app, store):
    welcome = await say(bot_api, "/start")
    assert welcome.plain.startswith("I watch conflict and security reporting")
    assert len(welcome.plain.split("\n")) == 2
    labels = dict((data, label) for label, data in welcome.buttons)
    button = f"t:s:0:{topic_key(TAIWAN)}"
    assert labels[button] == "PRC military exercises around Taiwan"
    bot_api.user_presses(USER, welcome.message_id, button)
    await until(lambda: bot_api.message(USER, welcome.message_id).edits == 1)
    assert store.subscriptions(USER) == {TAIWAN}
    labels = {d: lbl for lbl, d in bot_api.message(USER, welcome.message_id).buttons}
    assert labels[button] == "✅ PRC military exercises around Taiwan"
    assert bot_api.callback_answers[-1]["text"].startswith("Following: PRC")
    bot_api.user_presses(USER, welcome.message_id, f"t:{TAIWAN}")  # a button from before pages
    await until(lambda: bot_api.message(USER, welcome.message_id).edits == 2)
    assert store.subscriptions(USER) == set()
    assert [c["command"] for c in bot_api.commands][:2] == ["start", "topics"]


async def test_topics_lists_descriptions(bot_api, app):
    answer = await say(bot_api, "/topics")
    assert "kursk – Ground fighting" in answer.plain
    assert len(answer.buttons) == len(load_rules(RULES).rules)


async def test_subscribe_unsubscribe_and_did_you_mean(bot_api, app, store):
    answer = await say(bot_api, "/subscribe kursk port-strikes")
    assert answer.plain == "Following: kursk, port-strikes."
    assert store.subscriptions(USER) == {"kursk", "port-strikes"}
    answer = await say(bot_api, "/subscribe kursks")
    assert answer.plain == "Unknown topic kursks. Did you mean kursk?"
    answer = await say(bot_api, "/subscribe zzzz")
    assert answer.plain == "Unknown topic zzzz."
    answer = await say(bot_api, "/subscribe")
    assert "Write topic ids" in answer.plain
    answer = await say(bot_api, "/list")
    assert "Fighting in Kursk Oblast kursk" in answer.plain and "Delivery: instant" in answer.plain
    await say(bot_api, "/unsubscribe all")
    assert store.subscriptions(USER) == set()
    answer = await say(bot_api, "/list")
    assert answer.plain.startswith("You follow no topics yet")


async def test_delivery_settings(bot_api, app, store):
    await say(bot_api, "/subscribe kursk")
    assert "Write the time as HH:MM" in (await say(bot_api, "/digest 25:00")).plain
    assert "one digest a day at 08:30 (UTC)" in (await say(bot_api, "/digest 8:30")).plain
    assert store.get_subscriber(USER).mode == "digest"
    assert "Unknown time zone Mars/Base" in (await say(bot_api, "/timezone Mars/Base")).plain
    answer = (await say(bot_api, "/timezone Europe/Kyiv")).plain
    assert answer.startswith("Time zone set to Europe/Kyiv (EE")  # EET or EEST
    assert store.get_subscriber(USER).timezone == "Europe/Kyiv"
    assert "daily digest at 08:30 (Europe/Kyiv)" in (await say(bot_api, "/list")).plain
    await say(bot_api, "/instant")
    assert store.get_subscriber(USER).mode == "instant"
    assert "How long?" in (await say(bot_api, "/mute soon")).plain
    assert (await say(bot_api, "/mute 2h")).plain.startswith("Muted for 2h.")
    assert store.get_subscriber(USER).muted_until > time.time() + 7000
    await say(bot_api, "/unmute")
    assert store.get_subscriber(USER).muted_until is None


async def test_test_command_shows_topics_and_snippets(bot_api, app):
    answer = await say(bot_api, "/test China's PLA began live-fire drills encircling Taiwan.")
    assert "1 topic would fire" in answer.plain and TAIWAN in answer.plain
    assert "<b>PLA</b>" in answer.text and "<b>drills</b>" not in answer.text
    # the same layout as a real alert: headline, source and time, topics, snippets
    lines = answer.plain.split("\n")
    assert lines[2] == "Your text (/test)" and lines[3].startswith("/test · ")
    assert lines[4] == "🟠 PRC military exercises around Taiwan"
    assert (
        await say(bot_api, "/test the weather is fine")
    ).plain == "No topic would fire on that text."
    assert "Send the text after the command" in (await say(bot_api, "/test")).plain


async def test_stop_asks_first_then_forgets_the_chat(bot_api, app, store):
    await say(bot_api, "/subscribe kursk")
    question = await say(bot_api, "/stop")
    assert question.buttons == [("Yes, stop everything", "stop:yes"), ("Cancel", "stop:no")]
    bot_api.user_presses(USER, question.message_id, "stop:no")
    await until(lambda: bot_api.message(USER, question.message_id).edits == 1)
    assert bot_api.message(USER, question.message_id).plain.startswith("Nothing changed.")
    assert store.subscriptions(USER) == {"kursk"}
    question = await say(bot_api, "/stop")
    bot_api.user_presses(USER, question.message_id, "stop:yes")
    await until(lambda: bot_api.message(USER, question.message_id).edits == 1)
    done = bot_api.message(USER, question.message_id).plain
    assert done.startswith("Done: you follow nothing") and "To come back: /start" in done
    assert store.get_subscriber(USER) is None and store.subscriptions(USER) == set()
    assert "nothing to stop" in (await say(bot_api, "/stop")).plain


async def test_unknown_command_plain_text_and_help(bot_api, app):
    assert (await say(bot_api, "/frobnicate")).plain.startswith("I don't know /frobnicate.")
    assert (await say(bot_api, "hello?")).plain.startswith("I only understand commands.")
    help_text = (await say(bot_api, "/help")).plain
    assert "/digest HH:MM" in help_text and "/status" not in help_text
    assert "/status" in (await say(bot_api, "/help", chat=ADMIN)).plain


async def test_only_group_admins_subscribe_a_group(bot_api, app, store):
    bot_api.make_group(-50, "Analysts", admins={7})
    answer = await say(bot_api, "/subscribe kursk", chat=-50, user=8)
    assert answer.plain == "Only an admin of this group can use /subscribe here."
    assert store.subscriptions(-50) == set()
    answer = await say(bot_api, "/subscribe kursk", chat=-50, user=7)
    assert answer.plain == "Following: kursk."
    assert store.get_subscriber(-50).kind == "group"


async def test_allowlist_refuses_other_chats(bot_api, app, store, options):
    options.access = [USER]
    assert (await say(bot_api, "/subscribe kursk")).plain == "Following: kursk."
    answer = await say(bot_api, "/subscribe kursk", chat=777)
    assert answer.plain == "This bot is private. Ask its operator to allow chat id 777."
    assert store.get_subscriber(777) is None


async def test_admin_commands(bot_api, app, store, tmp_path):
    assert (await say(bot_api, "/status")).plain == "/status is for the bot's admins."
    status = (await say(bot_api, "/status", chat=ADMIN)).plain
    assert "outbox: 0 pending, 0 sent, 0 failed, 0 cancelled" in status
    assert "\n  kursk: 0" in status  # every topic, followed or not
    assert "no feeds configured" in (await say(bot_api, "/feeds", chat=ADMIN)).plain
    count = len(load_rules(RULES).rules)
    assert (
        await say(bot_api, "/reload", chat=ADMIN)
    ).plain == f"Rules reloaded (/reload): {count} rules"
    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "bad.yaml").write_text("id: bad\ntitle: Bad\nlevel: extreme\nmatch: {all: [x]}\n")
    app.bot_data["options"].reloader.path = broken
    answer = (await say(bot_api, "/reload", chat=ADMIN)).plain
    assert answer.startswith("Rules NOT reloaded (/reload); the previous rules keep running:")
    assert f"{broken / 'bad.yaml'}:3: 'level' must be one of" in answer
    assert len(app.bot_data["rulebook"].rules) == count


async def test_a_removed_topic_is_announced_when_its_followers_list_topics(
    bot_api, app, store, tmp_path
):
    await say(bot_api, "/subscribe kursk taiwan-exercises")
    trimmed = tmp_path / "rules"
    shutil.copytree(RULES, trimmed)
    (trimmed / "kursk.yaml").unlink()
    app.bot_data["options"].reloader.path = trimmed
    assert "gone: kursk" in (await say(bot_api, "/reload", chat=ADMIN)).plain
    listing = (await say(bot_api, "/list")).plain
    assert "kursk – this topic is gone (its rule was removed)" in listing
    assert "PRC military exercises around Taiwan" in listing
    assert "No longer following: kursk." in (await say(bot_api, "/unsubscribe kursk")).plain
    assert store.subscriptions(USER) == {TAIWAN}


async def test_token_never_logged(bot_api, store, options, caplog):
    caplog.set_level(logging.DEBUG)
    application = build_application(TOKEN, store, load_rules(RULES), options, bot_api.base_url)
    await start_polling(application, timeout=1)
    await say(bot_api, "/start")
    await stop_polling(application)
    assert caplog.records and TOKEN not in caplog.text


def test_api_base_url():
    assert api_base_url("http://127.0.0.1:8081") == "http://127.0.0.1:8081/bot"
    assert api_base_url("http://127.0.0.1:8081/bot/") == "http://127.0.0.1:8081/bot"


def test_feed_notices_by_time_failing_once_per_state_and_on_recovery():
    from bot.store import FeedState
    from bot.telegram.admin import feed_notices

    now = 1_000_000.0
    ok = FeedState("isw", "u", "u")
    young = FeedState("isw", "u", "u", error_count=9, failing_since=now - 600, last_error="500")
    old = FeedState("isw", "u", "u", error_count=2, failing_since=now - 5400, last_error="500")
    told = FeedState("isw", "u", "u", error_count=3, failing_since=now - 7200, notice="failing")
    gone = FeedState("isw", "u", "u", disabled=True, last_error="HTTP 410 Gone")
    back = FeedState("isw", "u", "u", notice="failing")
    assert feed_notices([ok], now) == [] and feed_notices([young], now) == []
    assert feed_notices([old], now) == [
        ("isw", "failing", "Feed isw has been failing for 1.5h (2 errors): 500")
    ]
    assert feed_notices([told], now) == []
    assert feed_notices([gone], now) == [("isw", "disabled", "Feed isw is disabled: HTTP 410 Gone")]
    assert feed_notices([back], now) == [("isw", "", "Feed isw works again.")]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALERTBOT_CONFIG", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("ALERTBOT_DATABASE", str(tmp_path / "cli.db"))
    monkeypatch.setenv("ALERTBOT_RULES", str(RULES))
    return tmp_path / "cli.db"


def test_cli_subscribers_add_list_remove(cli_env, capsys):
    from bot.cli import main

    assert main(["subscribers", "add", "--chat", "-100123", "--topic", "kursk"]) == 0
    assert "-100123 (group) follows: kursk" in capsys.readouterr().out
    assert main(["subscribers", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CHAT\tKIND TITLE\tSTATE\tDELIVERY\tTOPICS\n")
    assert "-100123\tgroup\tactive\tinstant\tkursk" in out
    assert main(["subscribers", "add", "--chat", "-100123", "--topic", "kurks"]) == 1
    assert "unknown topic 'kurks' (did you mean kursk?)" in capsys.readouterr().err
    assert main(["subscribers", "add", "--chat", "@news", "--topic", "kursk"]) == 1
    assert "needs the bot token (TELEGRAM_BOT_TOKEN)" in capsys.readouterr().err
    assert main(["subscribers", "add", "--chat", "news", "--topic", "kursk"]) == 1
    assert "neither a numeric chat id nor an @channel" in capsys.readouterr().err
    assert main(["subscribers", "remove", "--chat", "-100123"]) == 0
    assert main(["subscribers", "remove", "--chat", "-100123"]) == 1
    assert "chat -100123 is not a subscriber" in capsys.readouterr().err
    assert main(["subscribers", "list"]) == 0
    assert capsys.readouterr().out.startswith("No subscribers yet")


def test_cli_subscribes_a_channel_by_name(cli_env, bot_api, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ALERTBOT_TELEGRAM_API_URL", bot_api.base_url)
    assert main(["subscribers", "add", "--chat", "@warnews", "--topic", "kursk"]) == 0
    out = capsys.readouterr().out
    assert "(channel, @warnews) follows: kursk" in out
    with Store(cli_env) as store:
        [sub] = store.subscribers()
    assert sub.kind == "channel" and sub.chat_id < 0
