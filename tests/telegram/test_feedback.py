"""Readers' "Not relevant" buttons: alerts from real poll cycles, delivered and tapped through the
fake Bot API; the marks recorded, undone, exported as eval cases and deleted by /stop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from fakebotapi import FakeBotAPI, Sent
from feedserver import FeedServer, rss
from pollenv import Clock, polling
from telegram.ext import Application

from bot.rules.files import load_rules
from bot.store import Store
from bot.telegram.app import build_application, start_polling, stop_polling
from bot.telegram.deliver import Deliverer
from bot.telegram.feedback import alert_keyboard
from bot.telegram.handlers import BotOptions

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "777:feedback-secret"
ADMIN, USER, DIGEST, GROUP = 99, 501, 502, -300
KURSK = """\
    id: kursk
    title: Fighting in Kursk Oblast
    level: high
    terms:
      kursk: [Kursk]
      war: [troops, forces]
    match:
      all: ["@kursk", "@war"]
    """
PORT = """\
    id: port-strikes
    title: Strikes on ports
    level: high
    terms:
      attack: [drone*, missile*]
    match:
      all: [port, "@attack"]
    """
STORIES = [  # (uid, title, text)
    ("advance", "Advance near Kursk", "Ukrainian troops advanced in the Kursk region."),
    ("odesa", "Odesa port hit", "Russian drones hit the port of Odesa overnight."),
    ("both", "River port", "Troops in Kursk said drones hit the river port on Monday."),
]


class DeliveryClock(Clock):
    """Two days after the poll (every digest slot has passed); sleeping moves it along."""

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0)
        await asyncio.sleep(0)


def feed_of(stories: list[tuple[str, str, str]]) -> bytes:
    """An RSS 2.0 document of (uid, title, text) stories."""
    return rss(*({"title": title, "link": f"https://example.org/{uid}", "guid": uid,
                  "description": text} for uid, title, text in stories))  # fmt: skip


@pytest.fixture
async def world(
    tmp_path: Path, feed_server: FeedServer, bot_api: FakeBotAPI
) -> AsyncIterator[tuple[Store, Application]]:
    """Subscribers, one real poll cycle, the bot polling for updates, the outbox delivered."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in {"kursk": KURSK, "port": PORT}.items():
        (rules / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    clock = Clock(time.time() - 3600)
    rulebook = load_rules(rules)
    with Store(tmp_path / "alertbot.db", clock=clock) as store:
        for chat, kind in ((USER, "private"), (DIGEST, "private"), (GROUP, "group")):
            store.add_subscriber(chat, kind=kind)
            store.subscribe(chat, ["kursk", "port-strikes"])
        store.set_delivery_mode(DIGEST, "digest", "08:00")
        bot_api.make_group(GROUP, "Analysts", admins={7})
        feed_server.route("/wire.xml", body=feed_of(STORIES))
        async with polling(store, clock, feed_server, rulebook) as env:
            await env.cycle(env.feed("wire", "/wire.xml", backfill=10))
        app = build_application(
            TOKEN, store, rulebook, BotOptions(admin_ids={ADMIN}), base_url=bot_api.base_url
        )
        await start_polling(app, timeout=1)
        later = DeliveryClock(clock.now + 2 * 86400)
        await Deliverer(app.bot, store, clock=later, sleep=later.sleep).deliver_due()
        try:
            yield store, app
        finally:
            await stop_polling(app)


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def press(
    api: FakeBotAPI,
    chat: int,
    message: Sent,
    data: str,
    user: int | None = None,
    flips: bool = False,
) -> dict:
    """Tap a button and wait for the bot's answer to the callback (and, with `flips`, for the
    button to be edited into its undo or back); returns the answer."""
    before = len(api.callback_answers)
    edits = api.message(chat, message.message_id).edits
    api.user_presses(chat, message.message_id, data, user_id=user)
    await until(lambda: len(api.callback_answers) > before)
    if flips:
        await until(lambda: api.message(chat, message.message_id).edits > edits)
    return api.callback_answers[before]


def titled(api: FakeBotAPI, chat: int, title: str) -> Sent:
    return next(m for m in api.messages(chat) if title in m.plain)


def alertbot(*args: str, database: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALERTBOT_DATABASE": str(database)}
    env.pop("ALERTBOT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


async def test_a_tap_is_recorded_thanked_undone_and_nothing_else_changes(world, bot_api):
    store, _ = world
    alert = titled(bot_api, USER, "Advance near Kursk")
    [(label, data)] = alert.buttons
    assert label == "👎 Not relevant" and data.startswith("nr:") and len(data.encode()) <= 64
    answer = await press(bot_api, USER, alert, data, flips=True)
    assert answer["text"].startswith("Thanks")
    [marked] = store.marked_stories(0)
    assert (marked.rule_id, marked.title, marked.readers) == ("kursk", "Advance near Kursk", 1)
    assert marked.snippet == "Ukrainian troops advanced in the Kursk region."
    assert bot_api.message(USER, alert.message_id).buttons == [
        ("↩ Undo: Not relevant", "nu:" + data[3:])
    ]
    assert store.subscriptions(USER) == {"kursk", "port-strikes"}  # nothing else changed
    assert bot_api.message(USER, alert.message_id).text == alert.text

    answer = await press(bot_api, USER, alert, "nu:" + data[3:], flips=True)
    assert answer["text"].startswith("Undone") and store.marked_stories(0) == []
    assert bot_api.message(USER, alert.message_id).buttons == [("👎 Not relevant", data)]


async def test_a_story_of_several_topics_has_one_button_per_topic(world, bot_api):
    store, _ = world
    both = titled(bot_api, USER, "River port")
    labels = dict(both.buttons)
    assert set(labels) == {
        "👎 Not relevant: Fighting in Kursk Oblast", "👎 Not relevant: Strikes on ports",
    }  # fmt: skip
    await press(bot_api, USER, both, labels["👎 Not relevant: Strikes on ports"], flips=True)
    [marked] = store.marked_stories(0)
    assert marked.rule_id == "port-strikes"
    assert marked.snippet == "Troops in Kursk said drones hit the river port on Monday."
    after = dict(bot_api.message(USER, both.message_id).buttons)
    assert "↩ Undo: Not relevant: Strikes on ports" in after
    assert "👎 Not relevant: Fighting in Kursk Oblast" in after


async def test_readers_are_counted_and_exported_as_eval_cases(world, bot_api, tmp_path):
    store, _ = world
    alert = titled(bot_api, GROUP, "Odesa port hit")
    [(_, data)] = alert.buttons
    await press(bot_api, GROUP, alert, data, user=7)
    await press(bot_api, GROUP, alert, data, user=8)
    await press(
        bot_api, USER, titled(bot_api, USER, "Odesa"), titled(bot_api, USER, "Odesa").buttons[0][1]
    )
    [marked] = store.marked_stories(0)
    assert marked.readers == 3
    answer = await press(bot_api, GROUP, alert, "nu:" + data[3:], user=9)
    assert answer["text"].startswith("Nothing to undo") and store.marked_stories(0)[0].readers == 3

    text = alertbot("rules", "feedback", database=tmp_path / "alertbot.db")
    assert text.returncode == 0, text.stderr
    day = time.strftime("%Y-%m-%d", time.gmtime(marked.last_marked))
    assert text.stdout.splitlines()[:3] == [
        "port-strikes: 1 story marked",
        f"  3 readers  Odesa port hit  [wire, {day}]",
        "      » Russian drones hit the port of Odesa overnight.",
    ]
    jsonl = alertbot(
        "rules", "feedback", "port-strikes", "--jsonl", database=tmp_path / "alertbot.db"
    )
    [case] = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert set(case) == {"id", "source", "text", "expect", "not", "lang", "note"}
    assert (case["expect"], case["not"], case["lang"], case["source"]) == (
        [], ["port-strikes"], "en", "wire",
    )  # fmt: skip
    assert case["text"] == "Odesa port hit\n\nRussian drones hit the port of Odesa overnight."
    assert "3 reader(s)" in case["note"] and case["id"].startswith("feedback-port-strikes-")
    none = alertbot("rules", "feedback", "kursk", database=tmp_path / "alertbot.db")
    assert none.stdout.strip() == "No story was marked not relevant for kursk in the last 30d."
    bad = alertbot("rules", "feedback", "--since", "soon", database=tmp_path / "alertbot.db")
    assert bad.returncode == 2 and "--since: 'soon' is not a duration" in bad.stderr


async def test_status_counts_marks_and_stop_deletes_the_chats_feedback(world, bot_api):
    store, _ = world
    for chat in (USER, GROUP):
        alert = titled(bot_api, chat, "Advance near Kursk")
        await press(bot_api, chat, alert, alert.buttons[0][1], user=chat if chat > 0 else 7)
    before = len(bot_api.messages(ADMIN))
    bot_api.user_sends(ADMIN, "/status")
    status = (await bot_api.wait_for(ADMIN, before + 1))[before].plain
    assert "\n  kursk: 2 marks on 1 story" in status

    before = len(bot_api.messages(USER))
    bot_api.user_sends(USER, "/stop")
    question = (await bot_api.wait_for(USER, before + 1))[before]
    bot_api.user_presses(USER, question.message_id, "stop:yes")  # /stop asks to confirm
    await until(lambda: store.get_subscriber(USER) is None)
    [left] = store.marked_stories(0)
    assert left.readers == 1  # the group's mark stays; the user's is gone with the chat
    alert = titled(bot_api, USER, "Odesa port hit")
    answer = await press(bot_api, USER, alert, alert.buttons[0][1])
    assert answer["text"] == "This button has expired." and len(store.marked_stories(0)) == 1


async def test_a_digest_line_can_be_marked_through_its_list(world, bot_api):
    store, _ = world
    [digest] = bot_api.messages(DIGEST)
    assert digest.plain.startswith("📋 Digest ·")
    [(label, data)] = digest.buttons
    assert label == "👎 Mark a story not relevant…" and data.startswith("nd:")
    await press(bot_api, DIGEST, digest, data)
    picker = (await bot_api.wait_for(DIGEST, 2))[1]
    labels = dict(picker.buttons)
    assert len(labels) == 4  # advance, odesa, and the story of two topics twice
    assert "👎 Odesa port hit · Strikes on ports" in labels
    mark = labels["👎 Odesa port hit · Strikes on ports"]
    answer = await press(bot_api, DIGEST, picker, mark, flips=True)
    assert answer["text"].startswith("Thanks")
    [marked] = store.marked_stories(0)
    assert (marked.rule_id, marked.title) == ("port-strikes", "Odesa port hit")
    assert "↩ Undo: Odesa port hit · Strikes on ports" in dict(
        bot_api.message(DIGEST, picker.message_id).buttons
    )
    # the list reads only this reader's marks in this chat
    assert store.feedback_marks(DIGEST, DIGEST) == {(marked.story_key, "port-strikes")}
    assert store.feedback_marks(DIGEST, 7) == set() == store.feedback_marks(USER, DIGEST)
    await press(bot_api, DIGEST, digest, data)  # listed again: the marked one offers its undo
    again = (await bot_api.wait_for(DIGEST, 3))[2]
    assert "↩ Undo: Odesa port hit · Strikes on ports" in dict(again.buttons)
    assert [label.startswith("↩") for label in dict(again.buttons)].count(True) == 1


async def test_a_button_of_another_chat_or_garbage_records_nothing(world, bot_api):
    store, _ = world
    theirs = titled(bot_api, USER, "Odesa port hit").buttons[0][1]
    mine = titled(bot_api, GROUP, "Odesa port hit")
    for data in (theirs, "nr:x:0", "nr:999999:0", "nd:", mine.buttons[0][1][:-1] + "9"):
        answer = await press(bot_api, GROUP, mine, data, user=7)
        assert answer["text"] == "This button has expired."
    assert store.marked_stories(0) == []


def test_callback_data_stays_short_for_any_alert() -> None:
    from bot.models import Alert, Item, Match

    item = Item("f", "u", "s", "t", "l", None, "x")
    matches = tuple(Match(f"rule-{'x' * 60}-{n}", "T" * 300, "high", (), ()) for n in range(9))
    markup = alert_keyboard(10**15, Alert(item, matches))
    datas = [b.callback_data for row in markup.inline_keyboard for b in row]
    assert len(datas) == 9 and all(len(d.encode()) <= 64 for d in datas)
