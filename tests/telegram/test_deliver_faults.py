"""Delivery under bad answers and a database that refuses writes, against the fake Bot API."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

import pytest
from deliverykit import ADMIN, START, TOKEN, Clock
from fakebotapi import FakeBotAPI
from telegram.ext import ExtBot

from bot import status
from bot.logs import setup_logging
from bot.models import Item, Match, Snippet
from bot.store import Store
from bot.telegram.admin import admin_notifier
from bot.telegram.deliver import Deliverer, Policy

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
KURSK = Match(
    "kursk", "Kursk", "critical", (), ("Kursk",), (Snippet("Fighting in Kursk.", ((12, 17),)),)
)


@pytest.fixture
def deliverer(bot: ExtBot, store: Store, clock: Clock) -> Deliverer:
    notify = admin_notifier(bot, {ADMIN})
    return Deliverer(bot, store, clock=clock, sleep=clock.sleep, policy=Policy(), notify=notify)


def enqueue(store: Store, n: int, text: str = "text") -> None:
    link = f"https://example.org/report-{n}"
    item = Item("ISW", f"uid-{n}", link, f"Report {n}", link, None, text)
    store.record_item(item, [KURSK], [KURSK])


def follow(store: Store, *chats: int) -> None:
    for chat in chats:
        store.add_subscriber(chat)
        store.subscribe(chat, ["kursk"])


def reports(api: FakeBotAPI, chat: int) -> list[str]:
    """Which reports a chat received, in order (one entry per message)."""
    return [line for t in api.texts(chat) for line in t.split("\n") if line.startswith("Report")]


async def passes(deliverer: Deliverer, clock: Clock, count: int, step: float) -> None:
    for _ in range(count):
        await deliverer.deliver_due()
        clock.now += step


@pytest.mark.parametrize("kind", ["ok_no_result", "not_message", "bad_message"])
async def test_accepted_but_unreadable_answer_is_recorded_as_sent_never_resent(
    bot_api, store, deliverer, clock, kind
):
    follow(store, 12, 13)
    enqueue(store, 1)
    bot_api.fail(kind, chat_id=12, times=None)
    await passes(deliverer, clock, 5, 7200)
    assert reports(bot_api, 12) == ["Report 1"] and reports(bot_api, 13) == ["Report 1"]
    row = next(r for r in store.outbox_rows() if r.chat_id == 12)
    assert row.state == "sent" and "could not be read" in row.last_error
    [notice] = bot_api.texts(ADMIN)
    assert "accepted by Telegram, but its answer could not be read" in notice


async def test_answer_that_may_hide_a_delivery_is_retried_once_an_hour_later_then_failed(
    bot_api, store, deliverer, clock
):
    follow(store, 12)
    enqueue(store, 1)
    bot_api.fail("404_after", chat_id=12, times=None)  # InvalidToken, though it was delivered
    await passes(deliverer, clock, 30, 2)  # a minute of passes: never at once
    assert reports(bot_api, 12) == ["Report 1"]
    [row] = store.outbox_rows("pending")
    assert row.next_attempt == pytest.approx(START + 3600)
    clock.now = row.next_attempt
    await passes(deliverer, clock, 10, 86400)
    assert reports(bot_api, 12) == ["Report 1", "Report 1"]  # one more try, then no more
    [row] = store.outbox_rows("failed")
    assert "InvalidToken" in row.last_error
    notices = [t for t in bot_api.texts(ADMIN) if "failed for good" in t]
    assert len(notices) == 1 and "row 1 to chat 12" in notices[0]
    report = "\n".join(status.status_lines(status.gather(store, clock(), (), ["kursk"])))
    assert "1 failed" in report and "failed: row 1 to chat 12: InvalidToken" in report


async def test_one_chats_bad_answers_neither_stop_nor_repeat_other_chats(
    bot_api, store, deliverer, clock
):
    follow(store, 12, 13, 14)
    for n in range(3):
        enqueue(store, n)
    bot_api.fail("404_after", chat_id=12, times=None)
    bot_api.fail("hang", chat_id=13, times=1, hang_seconds=3)
    stats = await deliverer.deliver_due()
    assert reports(bot_api, 14) == ["Report 0", "Report 1", "Report 2"]  # all in the first pass
    assert stats.sent == 3
    await passes(deliverer, clock, 40, 600)
    assert sorted(reports(bot_api, 13)) == ["Report 0", "Report 1", "Report 2"]
    assert reports(bot_api, 14) == ["Report 0", "Report 1", "Report 2"]
    assert len(reports(bot_api, 12)) <= 6  # each row: the first try and at most one more


async def test_proxy_page_echoing_the_token_is_redacted_where_stored_shown_and_sent(
    bot_api, store, deliverer, clock, tmp_path
):
    logged, level = io.StringIO(), logging.getLogger().level
    handler = setup_logging("plain", "DEBUG", [TOKEN], stream=logged)
    follow(store, 12)
    enqueue(store, 1)
    bot_api.fail("502_echo", times=None, chat_id=12)
    try:
        await passes(deliverer, clock, 12, 7200)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
    [row] = store.outbox_rows("failed")
    assert "Bad Gateway" in row.last_error and "[REDACTED]" in row.last_error
    facts = status.gather(store, clock(), (), ["kursk"])
    shown = "\n".join(status.status_lines(facts) + status.status_lines(facts, status.HTML))
    assert "/bot[REDACTED]/sendMessage" in shown
    notices = "\n".join(bot_api.texts(ADMIN))
    assert "failed for good" in notices
    secret = TOKEN.split(":")[1]
    assert "[REDACTED]" in logged.getvalue()
    for text in (shown, notices, logged.getvalue(), row.last_error):
        assert secret not in text
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes(), path


async def test_a_sent_mark_the_database_refuses_is_kept_and_nothing_is_sent_twice(
    bot_api, store, deliverer, clock
):
    follow(store, 12, 13)
    for n in range(3):
        enqueue(store, n)
    store.db.execute("PRAGMA query_only = 1")  # writes fail as on a file system gone read-only
    await passes(deliverer, clock, 5, 60)
    assert [len(reports(bot_api, c)) for c in (12, 13)] == [1, 1]  # the ones in flight
    problem = [t for t in bot_api.texts(ADMIN) if "database not writable" in t]
    assert len(problem) == 1 and "nothing is sent" in problem[0]
    store.db.execute("PRAGMA query_only = 0")  # "space freed"
    await passes(deliverer, clock, 5, 60)
    for chat in (12, 13):
        assert reports(bot_api, chat) == ["Report 0", "Report 1", "Report 2"]
    assert store.outbox_counts()["sent"] == 6
    assert any("writable again" in t for t in bot_api.texts(ADMIN))


async def test_absurd_retry_after_notice_gives_the_date(bot_api, store, deliverer, clock):
    follow(store, 12)
    enqueue(store, 1)
    clock.now = datetime(2024, 10, 14, 22, 0, tzinfo=UTC).timestamp()
    bot_api.fail("429", times=1, retry_after=6 * 3600)
    await deliverer.deliver_due()
    [notice] = bot_api.texts(ADMIN)
    assert "resume at 2024-10-15 04:00 UTC" in notice


class Killed(BaseException):
    """Stands for the process dying (SystemExit would upset the event loop of the test)."""


class DyingStore:
    """The real store, except that the process 'dies' while recording part N of a series."""

    def __init__(self, store: Store, die_at_part: int):
        self.store, self.die_at_part = store, die_at_part

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def series_progress(self, series_id: int, sent: int, message_id: int | None) -> None:
        if sent == self.die_at_part:
            raise Killed("killed between Telegram's answer and the commit")
        self.store.series_progress(series_id, sent, message_id)


def digest_chat(store: Store, chat: int, reports: int) -> None:
    follow(store, chat)
    store.set_delivery_mode(chat, "digest", "06:00")
    for n in range(reports):
        link = f"https://example.org/report-{n}"
        title = f"Report {n:02d} " + "long title " * 20
        store.record_item(Item("ISW", f"u{n}", link, title, link, None, "x"), [KURSK], [KURSK])


def digest_parts(api: FakeBotAPI, chat: int) -> list[str]:
    return [t.split("\n")[0] + "|" + t.split("\n")[-1] for t in api.texts(chat)]


async def test_crash_mid_digest_repeats_only_the_part_in_flight(bot_api, bot, store, clock):
    digest_chat(store, 12, 60)
    clock.now += 86400
    dying = Deliverer(bot, DyingStore(store, die_at_part=2), clock=clock, sleep=clock.sleep)
    with pytest.raises(Killed):
        await dying.deliver_due()
    assert len(bot_api.texts(12)) == 2  # parts 1 and 2 are out; only part 1 is recorded
    restarted = Deliverer(bot, store, clock=clock, sleep=clock.sleep)
    await passes(restarted, clock, 3, 60)
    texts = bot_api.texts(12)
    assert len(texts) >= 5 and texts[1] == texts[2]  # part 2 once more, nothing else
    assert len(set(texts)) == len(texts) - 1
    assert all(f"Report {n:02d}" in "".join(texts) for n in range(60))
    assert store.outbox_counts()["sent"] == 60 and store.open_series(12) is None


async def test_failure_mid_digest_resumes_at_the_failed_part(bot_api, store, deliverer, clock):
    digest_chat(store, 12, 60)
    clock.now += 86400
    bot_api.fail("500", chat_id=12, times=1, skip=2)  # parts 1 and 2 pass, part 3 fails
    await deliverer.deliver_due()
    assert len(bot_api.texts(12)) == 2 and store.open_series(12).sent == 2
    await passes(deliverer, clock, 3, 60)
    texts = bot_api.texts(12)
    assert len(texts) >= 4 and len(set(texts)) == len(texts)  # nothing repeated
    assert all(f"Report {n:02d}" in "".join(texts) for n in range(60))
    assert store.outbox_counts()["sent"] == 60 and store.open_series(12) is None
