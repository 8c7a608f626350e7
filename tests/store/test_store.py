"""Store: schema and migrations, feeds, items and tombstones, subscribers, outbox, run lock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pollenv import Clock
from sqlite_utils import Database

from bot.errors import AlreadyRunning, StoreError
from bot.models import Alert, Feed, Item, Match, Snippet, Window
from bot.store import MIGRATIONS, Store, alert_from_json, alert_to_json, migrate


def item(uid: str = "u1", story: str = "example.org/a", text: str = "Body.", **kw: object) -> Item:
    values: dict[str, object] = {
        "feed": "isw",
        "uid": uid,
        "story_key": story,
        "title": "Title",
        "link": "https://example.org/a",
        "published": datetime(2024, 10, 14, 12, tzinfo=UTC),
        "text": text,
        "content_hash": f"h-{uid}-{text}",
    }
    values.update(kw)
    return Item(**values)  # type: ignore[arg-type]


def match(rule: str = "kursk") -> Match:
    return Match(
        rule_id=rule,
        title=rule.title(),
        level="high",
        windows=(Window("content", 0, 5),),
        terms=("Kursk",),
        snippets=(Snippet("Fighting in Kursk.", ((12, 17),)),),
    )


# -- schema ------------------------------------------------------------------------------


def test_fresh_database_has_every_table_wal_and_latest_version(store: Store) -> None:
    assert store.schema_version == len(MIGRATIONS)
    tables = set(store.db.table_names())
    assert {"feeds", "items", "matches", "subscribers", "subscriptions", "outbox", "runs"} <= tables
    assert store.db.journal_mode == "wal"


def test_database_created_at_version_1_is_upgraded_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store(path, migrations=MIGRATIONS[:1]) as old:
        old.sync_feeds([Feed("isw", "https://example.org/rss")])
        assert old.schema_version == 1

    def v2(db: Database) -> None:
        db.execute("ALTER TABLE feeds ADD COLUMN note TEXT DEFAULT 'upgraded'")

    with Store(path, migrations=(*MIGRATIONS, v2)) as new:
        assert new.schema_version == len(MIGRATIONS) + 1
        assert new.db.execute("SELECT name, note FROM feeds").fetchall() == [("isw", "upgraded")]


def test_failed_migration_leaves_the_database_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    Store(path).close()

    def broken(db: Database) -> None:
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        Store(path, migrations=(*MIGRATIONS, broken))
    db = Database(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert "half" not in db.table_names()


def test_database_from_a_newer_alertbot_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Database(path).execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer than this alertbot knows"):
        Store(path)


def test_upgrade_brings_old_story_keys_to_the_scheme_blind_form(tmp_path: Path) -> None:
    # a database written before story keys ignored the scheme and courlan's trackers
    path = tmp_path / "old.db"
    Store(path, migrations=MIGRATIONS[:2]).close()
    old = Database(path)
    old.execute(
        "INSERT INTO items (feed, uid, story_key, content_hash, first_seen, last_changed) "
        "VALUES ('f', 'g', 'http://x.org/a?at_medium=RSS', 'h', 0, 0), "
        "('f', 'h', 'text:abc', 'h', 0, 0)"
    )
    old.execute(
        "INSERT INTO matches (item_id, rule_id, story_key, matched_at, alerted_at) "
        "VALUES (1, 'kursk', 'http://x.org/a?at_medium=RSS', 0, 0)"
    )
    old.conn.commit()
    old.close()
    with Store(path) as store:
        keys = store.db.execute("SELECT story_key FROM items ORDER BY id").fetchall()
        assert keys == [("https://x.org/a",), ("text:abc",)]
        assert store.story_alerts(["https://x.org/a"]) == {("https://x.org/a", "kursk"): 0}


def test_migrate_is_idempotent(store: Store) -> None:
    assert migrate(store.db) == len(MIGRATIONS)


# -- run lock ----------------------------------------------------------------------------


def test_second_run_lock_on_the_same_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    first = Store(path)
    first.acquire_run_lock()
    second = Store(path)
    with pytest.raises(AlreadyRunning, match=r"another alertbot process \(pid \d+\) is already"):
        second.acquire_run_lock()
    first.close()
    second.acquire_run_lock()  # released with its holder
    second.close()


def test_store_may_be_used_from_another_thread(store: Store) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store.add_subscriber(1)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == [] and store.get_subscriber(1) is not None


# -- feeds -------------------------------------------------------------------------------


def test_feed_health_success_errors_and_404_streak(store: Store, clock: Clock) -> None:
    store.sync_feeds([Feed("isw", "https://example.org/rss")])
    store.record_fetch("isw", etag='"v1"', body_hash="abc", next_fetch=clock.now + 600)
    state = store.feed_state("isw")
    assert state is not None and state.etag == '"v1"' and state.last_success == clock.now
    clock.now += 10
    state = store.record_feed_error("isw", "HTTP 404", next_fetch=clock.now + 60, status=404)
    assert (state.error_count, state.last_error, state.not_found_since) == (
        1,
        "HTTP 404",
        clock.now,
    )
    first_404 = clock.now
    clock.now += 10
    state = store.record_feed_error("isw", "HTTP 404", next_fetch=clock.now + 60, status=404)
    assert state.error_count == 2 and state.not_found_since == first_404
    state = store.record_feed_error("isw", "HTTP 500", next_fetch=clock.now + 60, status=500)
    assert state.not_found_since is None and state.error_count == 3
    store.record_fetch("isw", next_fetch=clock.now + 600)
    state = store.feed_state("isw")
    assert state is not None and state.error_count == 0 and state.last_error == "HTTP 500"


def test_due_feeds_skip_disabled_and_future_ones(store: Store, clock: Clock) -> None:
    feeds = [Feed("a", "http://a/"), Feed("b", "http://b/"), Feed("c", "http://c/", enabled=False)]
    store.sync_feeds(feeds)
    store.record_fetch("b", next_fetch=clock.now + 60)
    assert [f.name for f, _ in store.due_feeds(feeds, clock.now)] == ["a"]
    store.disable_feed("a", "gone (410): remove it from the configuration")
    assert store.due_feeds(feeds, clock.now + 61)[0][0].name == "b"
    state = store.feed_state("a")
    assert state is not None and state.disabled and "gone" in (state.last_error or "")


def test_permanent_redirect_sticks_until_the_configured_url_changes(store: Store) -> None:
    store.sync_feeds([Feed("a", "http://old/")])
    store.set_feed_url("a", "http://new/")
    store.sync_feeds([Feed("a", "http://old/")])
    assert store.feed_state("a").url == "http://new/"  # type: ignore[union-attr]
    store.disable_feed("a", "gone")
    store.sync_feeds([Feed("a", "http://edited/")])
    state = store.feed_state("a")
    assert state is not None and state.url == "http://edited/" and not state.disabled


# -- items -------------------------------------------------------------------------------


def test_record_item_is_new_once_and_known_after(store: Store) -> None:
    first = store.record_item(item(), [match()], fingerprint="fp1")
    assert first is not None
    assert store.record_item(item(), [match()], fingerprint="fp1") is None
    known = store.known_items("isw", ["u1"], [], [])
    assert [(k.id, k.uid, k.rules) for k in known] == [(first, "u1", frozenset({"kursk"}))]
    assert store.known_items("other", [], ["example.org/a"], [])[0].id == first
    assert store.known_items("other", [], [], ["fp1"])[0].id == first
    assert store.known_items("other", ["u1"], ["nope"], ["nope"]) == []


def test_known_items_finds_a_long_feeds_rows_once_whatever_they_share(store: Store) -> None:
    """A feed of 700 entries asks in several batches; a row met by its uid, story key and
    fingerprint at once comes back once, and rows of other feeds only by story or text."""
    ids = [
        store.record_item(item(f"u{n}", f"example.org/{n}", f"Body {n}."), [], fingerprint=f"fp{n}")
        for n in range(700)
    ]
    other = store.record_item(item("x", "example.org/4", feed="elsewhere"), [])
    uids = [f"u{n}" for n in range(700)]
    stories = [f"example.org/{n}" for n in range(0, 700, 2)]
    prints = [f"fp{n}" for n in range(0, 700, 3)]
    known = store.known_items("isw", uids, stories, prints)
    assert [k.id for k in known] == sorted([*ids, other])
    assert known[3].text == "Body 3." and known[3].uid == "u3"
    assert [k.id for k in store.known_items("isw", [], [], ["fp699", "fp3"])] == [ids[3], ids[699]]
    assert [k.id for k in store.known_items("nowhere", uids, [], [])] == []


def test_two_entries_sharing_a_guid_are_two_rows(store: Store) -> None:
    a = store.record_item(item(text="one"), [])
    b = store.record_item(item(text="two", story_key="example.org/b"), [])
    assert a and b and a != b
    assert len(store.known_items("isw", ["u1"], [], [])) == 2


def test_update_in_place_replaces_the_version(store: Store) -> None:
    row = store.record_item(item(text="old"), [match()])
    assert store.record_item(item(text="new"), [match("port-strikes")], update_id=row) == row
    (known,) = store.known_items("isw", ["u1"], [], [])
    assert known.content_hash == "h-u1-new" and known.rules == {"port-strikes"}


def test_items_recorded_inside_a_transaction_share_its_fate(store: Store) -> None:
    """The poller records a feed's items in one transaction: a failure keeps none of them."""
    with pytest.raises(RuntimeError), store.transaction():
        store.record_item(item("a"), [match("kursk")], [match("kursk")])
        store.record_item(item("b"), [])
        raise RuntimeError("crash before the feed is done")
    assert store.item_count() == 0 and store.story_alerts(["example.org/a"]) == {}
    with store.transaction():
        store.record_item(item("a"), [match("kursk")], [match("kursk")])
        store.record_item(item("b", story="example.org/b"), [])
    assert store.item_count() == 2


def test_alerts_are_remembered_per_story_and_rule(store: Store, clock: Clock) -> None:
    store.record_item(item(), [match("kursk"), match("port-strikes")], [match("kursk")])
    assert store.story_alerts(["example.org/a", "x"]) == {("example.org/a", "kursk"): clock.now}
    alerted = store.db.execute(
        "SELECT i.uid, m.rule_id FROM matches m JOIN items i ON i.id = m.item_id "
        "WHERE m.alerted_at IS NOT NULL"
    ).fetchall()
    assert alerted == [("u1", "kursk")]


def test_prune_drops_bodies_but_keeps_tombstones(store: Store, clock: Clock) -> None:
    store.record_item(item("old"), [])
    clock.now += 40 * 86400
    store.record_item(item("recent"), [])
    assert store.prune(30 * 86400) == 1
    rows = dict(store.db.execute("SELECT uid, text FROM items").fetchall())
    assert rows == {"old": None, "recent": "Body."}
    assert store.known_items("isw", ["old"], [], [])[0].content_hash == "h-old-Body."
    assert store.record_item(item("old"), []) is None  # still never new again


# -- subscribers and outbox -------------------------------------------------------------


def test_one_outbox_row_per_chat_per_story_naming_its_rules(store: Store) -> None:
    store.subscribe(1, ["kursk", "port-strikes"])
    store.subscribe(2, ["port-strikes"])
    store.subscribe(3, ["taiwan-exercises"])
    store.subscribe(4, ["kursk"])
    store.deactivate(4, "blocked")
    both = [match("kursk"), match("port-strikes")]
    store.record_item(item(), both, both)
    rows = store.due_outbox(now=store.clock(), limit=10)
    assert [(r.chat_id, [m.rule_id for m in r.alert.matches]) for r in rows] == [
        (1, ["kursk", "port-strikes"]),
        (2, ["port-strikes"]),
    ]
    # the same story again (another feed, another uid): never twice to one chat
    store.record_item(item("u2", feed="other"), both, both)
    assert store.outbox_counts()["pending"] == 2


def test_outbox_state_changes_and_order(store: Store, clock: Clock) -> None:
    store.subscribe(1, ["kursk"])
    store.record_item(item("a", story="s/a"), [match()], [match()])
    store.record_item(item("b", story="s/b"), [match()], [match()])
    first, second = store.due_outbox(clock.now, 10)
    assert first.id < second.id and first.alert.item.uid == "a"
    store.mark_retry(first.id, "timed out", clock.now + 30)
    assert [r.id for r in store.due_outbox(clock.now, 10)] == [second.id]
    store.mark_sent(second.id, 777)
    (retry,) = store.due_outbox(clock.now + 30, 10)
    assert (retry.attempts, retry.last_error) == (1, "timed out")
    store.mark_failed(retry.id, "gave up")
    assert store.outbox_counts() == {"pending": 0, "sent": 1, "failed": 1, "cancelled": 0}


def test_postponed_rows_keep_their_attempts_and_come_back_on_reschedule(
    store: Store, clock: Clock
) -> None:
    store.subscribe(1, ["kursk"])
    store.record_item(item(), [match()], [match()])
    (row,) = store.due_outbox(clock.now, 10)
    store.postpone(row.id, clock.now + 3600)  # muted for an hour
    assert store.due_outbox(clock.now, 10) == []
    assert store.reschedule_chat(1, clock.now) == 1  # /unmute
    (again,) = store.due_outbox(clock.now, 10)
    assert (again.id, again.attempts, again.last_error) == (row.id, 0, None)


def test_subscriber_settings_deactivation_and_deletion(store: Store) -> None:
    store.add_subscriber(10, "group", "Analysts")
    store.set_delivery_mode(10, "digest", "07:30")
    store.set_timezone(10, "Europe/Kyiv")
    store.mute(10, 123.0)
    sub = store.get_subscriber(10)
    assert sub is not None
    assert (sub.kind, sub.title, sub.mode, sub.digest_time, sub.timezone, sub.muted_until) == (
        "group", "Analysts", "digest", "07:30", "Europe/Kyiv", 123.0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="mode must be one of instant, digest"):
        store.set_delivery_mode(10, "hourly")
    store.subscribe(10, ["kursk"])
    store.record_item(item(), [match()], [match()])
    assert store.deactivate(10, "Forbidden: bot was blocked by the user") == 1
    assert store.outbox_counts()["cancelled"] == 1
    assert store.subscriber_counts() == {}  # inactive chats are nobody's subscribers
    store.add_subscriber(10, "group", "Analysts")  # comes back: settings kept
    assert store.get_subscriber(10).mode == "digest"  # type: ignore[union-attr]
    assert store.subscriber_counts() == {"kursk": 1}
    store.delete_subscriber(10)
    assert store.get_subscriber(10) is None and store.subscriptions(10) == set()
    assert store.outbox_rows() == []


def test_subscribe_unsubscribe_and_counts(store: Store) -> None:
    store.subscribe(1, ["kursk", "port-strikes"])
    store.subscribe(2, ["kursk"])
    store.unsubscribe(1, ["kursk"])
    assert store.subscriptions(1) == {"port-strikes"}
    assert store.subscriber_counts() == {"kursk": 1, "port-strikes": 1}


def test_migrate_chat_moves_subscriptions_and_pending_rows(store: Store) -> None:
    store.subscribe(-5, ["kursk"])
    store.record_item(item(), [match()], [match()])
    store.migrate_chat(-5, -1005)
    assert store.get_subscriber(-5) is None and store.subscriptions(-1005) == {"kursk"}
    assert [r.chat_id for r in store.outbox_rows()] == [-1005]


def test_alert_round_trips_through_json() -> None:
    alert = Alert(item(published=None), (match(), match("port-strikes")))
    assert alert_from_json(alert_to_json(alert)) == alert
    dated = Alert(item(), (match(),))
    assert alert_from_json(alert_to_json(dated)) == dated


def test_cycles_are_recorded(store: Store) -> None:
    assert store.last_cycle() is None
    store.record_cycle(1.0, 2.0, {"feeds": 3, "alerts": 1})
    store.record_cycle(3.0, 4.5, {"feeds": 3, "alerts": 0})
    assert store.last_cycle() == {
        "started": 3.0,
        "finished": 4.5,
        "stats": {"feeds": 3, "alerts": 0},
    }
    store.check_writable()


def test_processes_opening_a_fresh_database_together_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_it() -> None:
        try:
            start.wait()
            Store(path).close()  # each its own connection, like separate processes
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
