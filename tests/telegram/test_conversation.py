"""Issue 14's bugs, end to end: users' messages in through the fake Bot API, the bot's out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakebotapi import FakeBotAPI, say, until
from telegram.ext import Application

from bot.models import Feed, Item
from bot.rules.emphasis import emphasis_of
from bot.rules.files import load_rules
from bot.store import Store
from bot.telegram.app import build_application, start_polling, stop_polling
from bot.telegram.deliver import Deliverer
from bot.telegram.handlers import BotOptions
from bot.telegram.topics import PAGE_SIZE, topic_key

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
TOKEN = "654321:CONVERSATION-secret"
RULES = Path(__file__).resolve().parents[2] / "rules"
USER = 601
LONG_ID = "a-topic-whose-id-is-far-longer-than-sixty-four-bytes-of-callback-data-allow"


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "alertbot.db") as s:
        yield s


async def _app(bot_api: FakeBotAPI, store: Store, rules: Path) -> Application:
    options = BotOptions(admin_ids={99}, rules_path=rules)
    app = build_application(TOKEN, store, load_rules(rules), options, base_url=bot_api.base_url)
    await start_polling(app, timeout=1)
    return app


@pytest.fixture
async def app(bot_api: FakeBotAPI, store: Store) -> AsyncIterator[Application]:
    application = await _app(bot_api, store, RULES)
    yield application
    await stop_polling(application)


@pytest.fixture
def thirty_rules(tmp_path: Path) -> Path:
    """30 topics with long descriptions (about 25 made the old /topics fail), one long id."""
    folder = tmp_path / "rules30"
    folder.mkdir()
    for n in range(30):
        rule_id = LONG_ID if n == 29 else f"topic-{n:02d}"
        description = f"Topic number {n} <watch> & follow: " + "a long description " * 20
        (folder / f"{rule_id}.yaml").write_text(
            f"id: {rule_id}\ntitle: Topic {n:02d} about place{n}\n"
            f'description: "{description}"\nlevel: medium\n'
            f"match: {{all: [Place{n}]}}\n"
        )
    return folder


def enqueue(store: Store, rulebook, n: int, text: str, when: datetime) -> None:
    link = f"https://e.org/{n}"
    item = Item("isw", f"uid-{n}", link, f"Report {n}", link, when, text)
    matches = rulebook.match(item)
    assert matches, text
    store.record_item(item, matches, matches)


# -- 3. any number of topics --------------------------------------------------------------
async def test_thirty_topics_paginate_and_every_button_works(bot_api, store, thirty_rules):
    app = await _app(bot_api, store, thirty_rules)
    try:
        listing = await say(bot_api, "/topics", USER)
        assert listing.plain.startswith(f"Topics 1–{PAGE_SIZE} of 30")
        assert "Topic number 0 <watch> & follow" in listing.plain
        assert len(listing.text) < 4096
        nav = [data for _, data in listing.buttons if data.startswith("p:")]
        assert nav == ["p:l:1"]
        for page in range(1, 4):  # turn to the last page, text and buttons
            bot_api.user_presses(USER, listing.message_id, f"p:l:{page}")
            await until(lambda p=page: bot_api.message(USER, listing.message_id).edits == p)
        last = bot_api.message(USER, listing.message_id)
        assert last.plain.startswith("Topics 25–30 of 30") and "topic-28" in last.plain
        key = f"t:l:3:{topic_key('topic-28')}"
        assert key in [data for _, data in last.buttons]
        bot_api.user_presses(USER, listing.message_id, key)
        await until(lambda: store.subscriptions(USER) == {"topic-28"})
        welcome = await say(bot_api, "/start", USER)
        assert len([d for _, d in welcome.buttons if d.startswith("t:")]) == PAGE_SIZE
        assert all(len(d.encode()) <= 64 for _, d in welcome.buttons)
        long_key = f"t:s:0:{topic_key(LONG_ID)}"  # the id itself would not fit in 64 bytes
        bot_api.user_presses(USER, welcome.message_id, long_key)
        await until(lambda: store.subscriptions(USER) == {"topic-28", LONG_ID})
        labels = dict((d, label) for label, d in bot_api.message(USER, welcome.message_id).buttons)
        assert labels[long_key].startswith("✅ Topic 29")
        assert (await say(bot_api, "/subscribe all", USER)).plain == "Following 30 topics."
        listing = await say(bot_api, "/list", USER)
        assert listing.plain.count("• ") == 30 and "Delivery: instant" in listing.plain
        assert "Sorry" not in " ".join(bot_api.texts(USER))
    finally:
        await stop_polling(app)


# -- 4, 5, 6: commas, no ghosts after /stop, commands addressed to the bot in groups ---------
async def test_subscribe_accepts_commas(bot_api, app, store):
    answer = await say(bot_api, "/subscribe kursk, port-strikes", USER)
    assert answer.plain == "Following: kursk, port-strikes."
    assert store.subscriptions(USER) == {"kursk", "port-strikes"}
    answer = await say(bot_api, "/unsubscribe kursk,port-strikes", USER)
    assert store.subscriptions(USER) == set()


async def test_settings_after_stop_leave_no_ghost(bot_api, app, store):
    await say(bot_api, "/subscribe kursk", USER)
    question = await say(bot_api, "/stop", USER)
    bot_api.user_presses(USER, question.message_id, "stop:yes")
    await until(lambda: store.get_subscriber(USER) is None)
    await say(bot_api, "/unsubscribe all", USER)
    for command in ("/mute 1h", "/digest 08:00", "/timezone Europe/Kyiv", "/instant", "/unmute"):
        answer = await say(bot_api, command, USER)
        assert answer.plain.startswith("This chat follows no topics"), command
    assert store.get_subscriber(USER) is None and store.subscribers() == []


async def test_commands_addressed_to_the_bot_in_a_group_are_answered(bot_api, app, store):
    bot_api.make_group(-70, "Analysts", admins={7})
    for addressed in ("/help@alertbot_test_bot", "/help@AlertBot_Test_Bot"):
        answer = await say(bot_api, addressed, -70, user=8)
        assert "/subscribe ID… or all" in answer.plain
    refusal = await say(bot_api, "/digest@alertbot_test_bot 08:00", -70, user=8)
    assert refusal.plain == "Only an admin of this group can use /digest here."
    answer = await say(bot_api, "/subscribe@alertbot_test_bot kursk", -70, user=7)
    assert answer.plain == "Following: kursk."


# -- 2. block and unblock ---------------------------------------------------------------
async def test_block_then_unblock_reactivates_and_alerts_arrive(bot_api, app, store):
    await say(bot_api, "/subscribe kursk", USER)
    bot_api.user_blocks(USER)
    await until(lambda: not store.get_subscriber(USER).active)
    bot_api.user_unblocks(USER)
    await until(lambda: store.get_subscriber(USER).active)
    assert store.subscriptions(USER) == {"kursk"}
    deliverer = Deliverer(app.bot, store)
    rulebook = app.bot_data["rulebook"]
    enqueue(store, rulebook, 1, "Ukrainian forces advanced near Sudzha in Kursk.", None)
    assert (await deliverer.deliver_due()).sent == 1
    assert bot_api.texts(USER)[-1].startswith("Report 1")


async def test_a_message_from_a_deactivated_chat_reactivates_it(bot_api, app, store):
    await say(bot_api, "/subscribe kursk", USER)
    store.deactivate(USER, "Forbidden: bot was blocked by the user")  # learnt from a failed send
    listing = await say(bot_api, "/list", USER)
    assert "Delivery: instant" in listing.plain
    assert store.get_subscriber(USER).active


async def test_a_group_that_removes_the_bot_is_deactivated_and_back_when_re_added(
    bot_api, app, store
):
    bot_api.make_group(-71, "Desk", admins={7})
    await say(bot_api, "/subscribe kursk", -71, user=7)
    bot_api.user_blocks(-71)
    await until(lambda: not store.get_subscriber(-71).active)
    bot_api.user_unblocks(-71)
    await until(lambda: store.get_subscriber(-71).active)


# -- 1 and 7: held digests follow a changed zone; local times --------------------------------
async def test_held_digest_follows_a_zone_change(bot_api, app, store):
    kyiv = ZoneInfo("Europe/Kyiv")
    now = time.time()
    slot = datetime.fromtimestamp(now + 600, kyiv).replace(second=0, microsecond=0)
    at = f"{slot:%H:%M}"
    await say(bot_api, "/subscribe kursk", USER)
    await say(bot_api, f"/digest {at}", USER)  # README's order: /digest, then /timezone
    clock = [now]
    deliverer = Deliverer(app.bot, store, clock=lambda: clock[0])
    rulebook = app.bot_data["rulebook"]
    published = datetime.fromtimestamp(now - 3600, UTC)
    enqueue(store, rulebook, 1, "Ukrainian forces advanced near Sudzha in Kursk.", published)
    clock[0] = time.time()
    await deliverer.deliver_due()  # held for the digest at HH:MM UTC, hours away
    [held] = store.outbox_rows("pending")
    assert held.next_attempt - now > 3600
    answer = await say(bot_api, "/timezone Europe/Kyiv", USER)
    assert answer.plain.startswith("Time zone set to Europe/Kyiv")
    clock[0] = time.time()
    await deliverer.deliver_due()  # rescheduled: held for HH:MM Kyiv, minutes away
    [held] = store.outbox_rows("pending")
    assert held.next_attempt == slot.timestamp()
    clock[0] = slot.timestamp()
    before = len(bot_api.messages(USER))
    assert (await deliverer.deliver_due()).sent == 1
    digest = bot_api.messages(USER)[before]
    local = published.astimezone(kyiv)
    assert f"Digest · {slot:%a %-d %b %Y}" in digest.plain
    assert f"times in {local.tzname()}" in digest.plain
    assert f"🟠 {local:%H:%M} Report 1 — isw · Fighting in Kursk Oblast" in digest.plain


async def test_alerts_show_the_subscribers_local_time_and_the_feeds_title(bot_api, app, store):
    await say(bot_api, "/subscribe kursk", USER)
    await say(bot_api, "/timezone America/New_York", USER)
    store.sync_feeds([Feed("isw", "https://e.org/feed")])  # the feed's own title is the source
    store.record_fetch("isw", title="Institute for the Study of War")
    rulebook = app.bot_data["rulebook"]
    published = datetime(2024, 10, 14, 18, 30, tzinfo=UTC)
    enqueue(store, rulebook, 2, "Ukrainian forces advanced near Sudzha in Kursk.", published)
    deliverer = Deliverer(app.bot, store)
    deliverer.decisive = emphasis_of(rulebook)
    await deliverer.deliver_due()
    alert = bot_api.messages(USER)[-1]
    lines = alert.plain.split("\n")
    assert lines[0] == "Report 2"
    assert lines[1] == "Institute for the Study of War · 14 Oct 2024, 14:30 EDT"
    assert lines[2] == "🟠 Fighting in Kursk Oblast"


# -- conversation details ----------------------------------------------------------------
async def test_timezone_alone_shows_it_and_near_misses_get_a_suggestion(bot_api, app, store):
    assert (await say(bot_api, "/timezone", USER)).plain.startswith("Your time zone is UTC (UTC")
    for typed in ("Kyiv", "europe/kyiv", "Europe/Kiyv"):
        answer = (await say(bot_api, f"/timezone {typed}", USER)).plain
        assert "Did you mean Europe/Kyiv" in answer, answer
    await say(bot_api, "/subscribe kursk", USER)
    suggestion = await say(bot_api, "/timezone kyiv", USER)
    assert suggestion.buttons == [("Use Europe/Kyiv", "tz:Europe/Kyiv")]
    bot_api.user_presses(USER, suggestion.message_id, "tz:Europe/Kyiv")  # one tap sets it
    await until(lambda: store.get_subscriber(USER).timezone == "Europe/Kyiv")
    await until(lambda: bot_api.message(USER, suggestion.message_id).edits == 1)
    assert bot_api.message(USER, suggestion.message_id).plain.startswith("Time zone set to")
    assert (await say(bot_api, "/timezone", USER)).plain.startswith("Your time zone is Europe/Kyiv")


async def test_list_without_topics_still_shows_the_delivery_mode(bot_api, app, store):
    await say(bot_api, "/subscribe kursk", USER)
    await say(bot_api, "/digest 07:15", USER)
    await say(bot_api, "/unsubscribe all", USER)
    listing = (await say(bot_api, "/list", USER)).plain
    assert listing.startswith("You follow no topics yet")
    assert "Delivery: daily digest at 07:15 (UTC)" in listing


async def test_button_presses_race_nothing_and_stay_answered(bot_api, app, store):
    welcome = await say(bot_api, "/start", USER)
    data = [d for _, d in welcome.buttons if d.startswith("t:")][:3]
    for item in data:
        bot_api.user_presses(USER, welcome.message_id, item)
    await until(lambda: len(bot_api.callback_answers) >= 3)
    await asyncio.sleep(0.1)
    assert len(store.subscriptions(USER)) == 3
    assert all(a["text"].startswith("Following") for a in bot_api.callback_answers)


def test_day_boundary_times_show_the_weekday():
    from bot.models import Alert, Match
    from bot.telegram.digest import render_digest

    kyiv_evening = datetime(2024, 10, 13, 20, 30, tzinfo=UTC)  # 23:30 Sunday in Kyiv
    item = Item("isw", "u", "k", "Late report", "", kyiv_evening, "text")
    alert = Alert(item, (Match("kursk", "Kursk", "critical", (), ()),))
    [text] = render_digest([alert], (kyiv_evening + timedelta(days=1)).date(), "Europe/Kyiv")
    assert "🔴 Sun 23:30 Late report" in text


async def test_feeds_shows_never_fetched_feeds_readably(bot_api, app, store):
    feed = Feed("isw", "https://e.org/feed")
    app.bot_data["options"].feeds = (feed,)
    store.sync_feeds([feed])
    sent = await say(bot_api, "/feeds", 99)
    answer = sent.plain
    # admin replies too are HTML without link previews: one Defaults for every call
    assert sent.parse_mode == "HTML" and sent.link_preview_options == {"is_disabled": True}
    assert "isw  https://e.org/feed" in answer
    assert "status: not fetched yet" in answer and "next fetch: at the next poll cycle" in answer
    assert "None" not in answer


async def test_a_mute_over_the_digest_slot_delivers_the_digest_when_it_ends(bot_api, app, store):
    now = time.time()
    slot = datetime.fromtimestamp(now + 600, UTC).replace(second=0, microsecond=0)
    await say(bot_api, "/subscribe kursk", USER)
    await say(bot_api, f"/digest {slot:%H:%M}", USER)
    await say(bot_api, "/mute 30m", USER)  # over the slot
    enqueue(
        store, app.bot_data["rulebook"], 1, "Ukrainian forces advanced near Sudzha in Kursk.", None
    )
    clock = [time.time()]
    deliverer = Deliverer(app.bot, store, clock=lambda: clock[0])
    before = len(bot_api.messages(USER))
    await deliverer.deliver_due()  # muted: held until the mute ends
    [held] = store.outbox_rows("pending")
    clock[0] = held.next_attempt
    assert (await deliverer.deliver_due()).sent == 1  # the digest whose slot the mute covered
    assert bot_api.texts(USER)[before].startswith("📋 Digest")
