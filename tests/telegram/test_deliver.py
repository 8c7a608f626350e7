"""Outbox delivery through python-telegram-bot against the fake Bot API over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from deliverykit import ADMIN, START, TOKEN, Clock
from telegram.ext import ExtBot

from bot.models import Item, Match, Snippet
from bot.store import Store
from bot.telegram.admin import admin_notifier
from bot.telegram.deliver import ChatLimiter, Deliverer, Policy
from bot.telegram.digest import digest_slot

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
def deliverer(bot: ExtBot, store: Store, clock: Clock) -> Deliverer:
    policy = Policy(max_attempts=3, backoff_base=30)
    notify = admin_notifier(bot, {ADMIN})
    return Deliverer(bot, store, clock=clock, sleep=clock.sleep, policy=policy, notify=notify)


TAIWAN = Match(
    "taiwan", "Taiwan drills", "high", (), ("PLA",), (Snippet("The PLA began drills.", ((4, 7),)),)
)
KURSK = Match(
    "kursk", "Kursk", "critical", (), ("Kursk",), (Snippet("Fighting in Kursk.", ((12, 17),)),)
)


def report(n: int, *matches: Match) -> tuple[Item, tuple[Match, ...]]:
    """Item n with a link; matched by `matches` (default: taiwan)."""
    link = f"https://example.org/report-{n}?a=1&b=2"
    item = Item("ISW", f"uid-{n}", link, f"Report {n} <update>", link, None, "text")
    return item, matches or (TAIWAN,)


def enqueue(store: Store, n: int, *matches: Match) -> None:
    item, found = report(n, *matches)
    store.record_item(item, list(found), list(found))


def follow(store: Store, chat_id: int, *rules: str, kind: str = "private") -> None:
    store.add_subscriber(chat_id, kind=kind)
    store.subscribe(chat_id, rules)


def states(store: Store) -> dict[str, int]:
    return {k: v for k, v in store.outbox_counts().items() if v}


async def test_one_message_per_chat_per_story_with_link_and_highlight(bot_api, store, deliverer):
    follow(store, 11, "taiwan", "kursk")
    follow(store, 12, "taiwan")
    follow(store, 13, "port-strikes")
    enqueue(store, 1, TAIWAN, KURSK)
    stats = await deliverer.deliver_due()
    assert stats.sent == 2
    [both] = bot_api.messages(11)
    assert both.parse_mode == "HTML" and both.link_preview_options == {"is_disabled": True}
    assert both.text.startswith('<a href="https://example.org/report-1?a=1&amp;b=2">Report 1')
    assert "\n🔴 Kursk · 🟠 Taiwan drills\n" in both.text
    assert "The <b>PLA</b> began drills." in both.text and "&lt;update&gt;" in both.text
    [one] = bot_api.messages(12)
    assert "Kursk" not in one.text
    assert bot_api.messages(13) == []
    await deliverer.deliver_due()
    assert bot_api.total_sent() == 2
    assert states(store) == {"sent": 2}
    sent_ids = {r.chat_id: r for r in store.outbox_rows("sent")}
    assert sent_ids[11].state == "sent"


async def test_blocked_user_is_deactivated_and_rows_cancelled(bot_api, store, deliverer):
    follow(store, 12, "taiwan")
    follow(store, 14, "taiwan")
    enqueue(store, 1)
    enqueue(store, 2)
    bot_api.fail("403", chat_id=12)
    stats = await deliverer.deliver_due()
    assert stats.deactivated == 1
    assert not store.get_subscriber(12).active
    assert [r.state for r in store.outbox_rows() if r.chat_id == 12] == ["cancelled", "cancelled"]
    assert len(bot_api.messages(14)) == 2
    assert "Subscriber 12 deactivated" in bot_api.texts(ADMIN)[0]


async def test_chat_not_found_deactivates(bot_api, store, deliverer):
    follow(store, 12, "taiwan")
    enqueue(store, 1)
    bot_api.fail("chat_not_found", chat_id=12)
    await deliverer.deliver_due()
    assert not store.get_subscriber(12).active
    assert states(store) == {"cancelled": 1}


async def test_429_storm_loses_nothing_and_repeats_nothing(bot_api, store, deliverer, clock):
    for chat in range(20, 30):
        follow(store, chat, "taiwan")
    for n in range(3):
        enqueue(store, n)
    bot_api.fail("429", times=12, retry_after=5)
    stats = await deliverer.deliver_due()
    for chat in range(20, 30):
        texts = bot_api.texts(chat)
        assert len(texts) == 3 and len(set(texts)) == 3
    assert stats.rate_limited == 12 and stats.sent == 30
    assert states(store) == {"sent": 30}
    assert clock.slept >= 5  # waited as told (on the injected clock)


async def test_absurd_retry_after_keeps_rows_pending_and_tells_admins(
    bot_api, store, deliverer, clock
):
    follow(store, 12, "taiwan")
    enqueue(store, 1)
    bot_api.fail("429", times=1, retry_after=7200)
    await deliverer.deliver_due()
    [row] = store.outbox_rows("pending")
    assert row.next_attempt == pytest.approx(START + 7200)
    assert "Delivery stalled" in bot_api.texts(ADMIN)[0]
    assert (await deliverer.deliver_due()).sent == 0  # not due yet
    clock.now += 7200
    assert (await deliverer.deliver_due()).sent == 1
    assert len(bot_api.messages(12)) == 1


async def test_parse_error_resends_as_plain_text(bot_api, store, deliverer):
    follow(store, 12, "taiwan")
    enqueue(store, 1)
    bot_api.fail("parse", chat_id=12)
    stats = await deliverer.deliver_due()
    [msg] = bot_api.messages(12)
    assert stats.plain_fallbacks == 1 and msg.parse_mode is None
    assert "The **PLA** began drills." in msg.text and "Report 1 <update>" in msg.text
    assert states(store) == {"sent": 1}


async def test_migrated_group_moves_and_gets_the_message(bot_api, store, deliverer):
    follow(store, -5, "taiwan", kind="group")
    enqueue(store, 1)
    bot_api.fail("migrate", chat_id=-5, migrate_to=-1000000000005)
    await deliverer.deliver_due()
    assert store.get_subscriber(-5) is None
    assert store.subscriptions(-1000000000005) == {"taiwan"}
    assert len(bot_api.messages(-1000000000005)) == 1
    assert states(store) == {"sent": 1}


async def test_network_errors_back_off_then_fail(bot_api, store, deliverer, clock):
    follow(store, 12, "taiwan")
    enqueue(store, 1)
    bot_api.fail("500", times=None)
    await deliverer.deliver_due()
    [row] = store.outbox_rows("pending")
    assert row.attempts == 1 and row.next_attempt == START + 30
    clock.now = row.next_attempt
    await deliverer.deliver_due()
    [row] = store.outbox_rows("pending")
    assert row.attempts == 2 and row.next_attempt == clock.now + 60
    clock.now = row.next_attempt
    await deliverer.deliver_due()
    [row] = store.outbox_rows("failed")
    assert "Internal Server Error" in row.last_error


async def test_timeout_is_retried_later(bot_api, store, deliverer, clock):
    follow(store, 12, "taiwan")
    enqueue(store, 1)
    bot_api.fail("hang", hang_seconds=3)
    await deliverer.deliver_due()
    [row] = store.outbox_rows("pending")
    assert "TimedOut" in row.last_error
    clock.now = row.next_attempt
    await deliverer.deliver_due()
    assert states(store) == {"sent": 1}


async def test_muted_chat_gets_rows_after_the_mute(bot_api, store, deliverer, clock):
    follow(store, 12, "taiwan")
    store.mute(12, START + 3600)
    enqueue(store, 1)
    await deliverer.deliver_due()
    assert bot_api.messages(12) == []
    clock.now = START + 3600
    await deliverer.deliver_due()
    assert len(bot_api.messages(12)) == 1


async def test_digest_waits_for_the_local_time_and_sends_one_message(
    bot_api, store, deliverer, clock
):
    follow(store, 12, "taiwan", "kursk")
    store.set_delivery_mode(12, "digest", "09:30")
    store.set_timezone(12, "Europe/Kyiv")  # UTC+3 in October: 09:30 local = 06:30 UTC
    enqueue(store, 1)
    enqueue(store, 2, KURSK)
    await deliverer.deliver_due()
    assert bot_api.messages(12) == []
    clock.now = START + 90 * 60
    await deliverer.deliver_due()
    [digest] = bot_api.messages(12)
    assert digest.text.startswith("📋 <b>Digest · Mon 14 Oct 2024</b> · 2 reports · times in EEST")
    assert states(store) == {"sent": 2}


def test_digest_slot_is_in_the_subscribers_zone():
    slot = digest_slot(START, "09:30", "Europe/Kyiv")
    assert datetime.fromtimestamp(slot, UTC) == datetime(2024, 10, 14, 6, 30, tzinfo=UTC)
    assert digest_slot(slot + 1, "09:30", "Europe/Kyiv") == slot + 86400


async def test_chat_limiter_one_per_second_private_groups_left_to_aioratelimiter():
    clock = Clock(0.0)
    limiter = ChatLimiter(clock, clock.sleep)
    for _ in range(3):
        await limiter.wait(12)
    assert clock.now == 2.0
    clock.now = 100.0
    for _ in range(21):  # AIORateLimiter holds groups to 20/min: not limited twice
        await limiter.wait(-5)
    assert clock.now == 100.0


async def test_several_rows_to_one_chat_keep_order_and_rate(bot_api, store, deliverer, clock):
    follow(store, 12, "taiwan")
    for n in range(3):
        enqueue(store, n)
    await deliverer.deliver_due()
    assert [t.split("\n")[0] for t in bot_api.texts(12)] == [
        f"Report {n} <update>" for n in range(3)
    ]
    assert clock.slept >= 2


async def test_token_never_in_logs_or_database(bot_api, store, deliverer, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    follow(store, 12, "taiwan")
    enqueue(store, 1)
    bot_api.fail("500")
    await deliverer.deliver_due()
    await deliverer.deliver_due()
    assert TOKEN not in caplog.text
    for path in tmp_path.iterdir():
        assert TOKEN.encode() not in path.read_bytes()


class Killed(BaseException):
    """Stands for the process dying (SystemExit would upset the event loop of the test)."""


class CrashingStore:
    """The real store, except that the process 'dies' right after Telegram confirmed row N."""

    def __init__(self, store: Store, crash_on_sent: int):
        self.store, self.left = store, crash_on_sent

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def mark_sent(self, row_id: int, message_id: int | None, note: str | None = None) -> None:
        self.left -= 1
        if self.left == 0:
            raise Killed("killed between Telegram's answer and the commit")
        self.store.mark_sent(row_id, message_id, note)


async def test_crash_before_commit_repeats_at_most_that_one_message(bot_api, bot, store, clock):
    for chat in (21, 22, 23):
        follow(store, chat, "taiwan")
    enqueue(store, 1)
    enqueue(store, 2)
    policy = Policy(concurrency=1)
    crashing = Deliverer(
        bot, CrashingStore(store, crash_on_sent=3), clock=clock, sleep=clock.sleep, policy=policy
    )
    with pytest.raises(Killed):
        await crashing.deliver_due()
    assert states(store) == {"sent": 4, "pending": 2}  # chat 23 is not held up by chat 22
    restarted = Deliverer(bot, store, clock=clock, sleep=clock.sleep)
    await restarted.deliver_due()
    counts = [len(bot_api.messages(c)) for c in (21, 22, 23)]
    assert sum(counts) == 7 and all(n >= 2 for n in counts)  # 6 owed + the one repeat
    assert states(store) == {"sent": 6}


async def test_stop_mid_pass_leaves_the_rest_pending(bot_api, store, deliverer):
    follow(store, 12, "taiwan")
    for n in range(3):
        enqueue(store, n)
    stop = asyncio.Event()
    sent_one = deliverer.store.mark_sent

    def mark_then_stop(row_id: int, message_id: int | None, note: str | None = None) -> None:
        sent_one(row_id, message_id, note)
        stop.set()

    store.mark_sent = mark_then_stop  # the signal arrives while the first row is confirmed
    await deliverer.run(stop)
    assert states(store) == {"sent": 1, "pending": 2}
    assert len(bot_api.messages(12)) == 1
