"""The poll cycle: pure decisions first, then whole cycles against a real HTTP server."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from feedserver import conditional, rss
from pollenv import Env

from bot.identity import text_fingerprint
from bot.models import Alert, Feed, Item, KnownItem, Match
from bot.poll.decide import Decision, decide, select_alerts
from bot.store import Store

KURSK = "Russian sources claim that Russian forces have regained positions in the Kursk region."
PORT = "Russian drones struck port infrastructure in Odesa overnight, damaging a grain terminal."
TAIWAN = "China's PLA began live-fire drills encircling Taiwan on Monday."
DULL = "Shakhtar Donetsk beat Dynamo Kyiv 2-1 in the league derby on Sunday."


# -- helpers ---------------------------------------------------------------------------------


def entry(uid: str, text: str = DULL, *, link: str | None = None, **kw: object) -> Item:
    link = f"https://example.org/{uid}" if link is None else link
    title = str(kw.pop("title", f"Report {uid}"))
    return Item(
        feed=str(kw.pop("feed", "f")),
        uid=uid,
        story_key=link.removeprefix("https://"),
        title=title,
        link=link,
        published=kw.pop("published", None),  # type: ignore[arg-type]
        text=text,
        content_hash=f"{title}|{text}",
    )


def known(item: Item, row: int, rules: set[str] | None = None) -> KnownItem:
    return KnownItem(
        id=row,
        feed=item.feed,
        uid=item.uid,
        story_key=item.story_key,
        content_hash=item.content_hash,
        fingerprint=text_fingerprint(item.title, item.text),
        rules=frozenset(rules or set()),
    )


def day(n: int) -> datetime:
    return datetime(2024, 10, n, 12, tzinfo=UTC)


def rss_item(n: int, text: str, **extra: str) -> dict[str, str]:
    values = {
        "title": f"Report {n}",
        "link": f"https://example.org/r/{n}",
        "guid": f"urn:r:{n}",
        "pubDate": f"Mon, {10 + n:02d} Oct 2024 12:00:00 GMT",
        "description": text,
    }
    values.update(extra)
    return values


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- decide (pure) ---------------------------------------------------------------------------


def test_unseen_entry_is_matched_and_seen_one_is_not() -> None:
    a, b = entry("a"), entry("b")
    result = decide([known(a, 1)], [a, b], first_time=False, backfill=0)
    assert [(d.item.uid, d.reason, d.may_alert) for d in result.to_match] == [("b", "new", True)]
    assert result.unchanged == 1


def test_changed_text_is_matched_again_remembering_its_rules() -> None:
    old = entry("a", KURSK)
    new = entry("a", KURSK + " " + PORT)
    (d,) = decide([known(old, 7, {"kursk"})], [new], first_time=False, backfill=0).to_match
    assert (d.reason, d.update_id, d.previous_rules) == ("changed", 7, {"kursk"})


def test_first_sight_alerts_only_the_newest_backfill_entries() -> None:
    entries = [entry("old", published=day(1)), entry("new", published=day(3)),
               entry("mid", published=day(2))]  # fmt: skip
    result = decide([], entries, first_time=True, backfill=2)
    assert {d.item.uid: d.may_alert for d in result.to_match} == {
        "old": False, "new": True, "mid": True,
    }  # fmt: skip
    undated = decide([], [entry("x"), entry("y")], first_time=True, backfill=1)
    assert [d.may_alert for d in undated.to_match] == [True, False]  # document order
    assert not any(d.may_alert for d in decide([], entries, True, 0).to_match)


def test_story_from_another_feed_carries_its_rules() -> None:
    elsewhere = entry("x", KURSK, feed="other", link="https://example.org/story")
    mine = entry("y", KURSK, link="https://example.org/story")
    (d,) = decide([known(elsewhere, 3, {"kursk"})], [mine], False, 0).to_match
    assert (d.reason, d.update_id, d.previous_rules) == ("elsewhere", None, {"kursk"})


def test_regenerated_guid_with_same_link_is_the_same_entry() -> None:
    old = entry("guid-1", KURSK, link="https://example.org/s")
    new = entry("guid-2", KURSK, link="https://example.org/s", title="Edited title")
    (d,) = decide([known(old, 5, {"kursk"})], [new], False, 0).to_match
    assert (d.reason, d.update_id, d.previous_rules) == ("moved", 5, {"kursk"})


def test_regenerated_guid_and_edited_url_falls_back_to_the_text() -> None:
    old = entry("guid-1", KURSK, link="https://example.org/old-url", title="Kursk")
    new = entry("guid-2", KURSK, link="https://example.org/new-url", title="Kursk")
    (d,) = decide([known(old, 5, {"kursk"})], [new], False, 0).to_match
    assert (d.reason, d.update_id, d.previous_rules) == ("moved", 5, {"kursk"})


def test_entries_sharing_a_guid_do_not_collapse() -> None:
    one = entry("g", KURSK, link="https://example.org/one")
    two = entry("g", PORT, link="https://example.org/two")
    result = decide([known(one, 1, {"kursk"})], [one, two], False, 0)
    assert result.unchanged == 1
    assert [(d.item.link, d.reason, d.update_id) for d in result.to_match] == [
        ("https://example.org/two", "new", None)
    ]


def test_still_listed_guid_is_not_taken_over_by_a_new_entry_with_its_link() -> None:
    a = entry("a", KURSK, link="https://example.org/s")
    b = entry("b", PORT, link="https://example.org/s")
    result = decide([known(a, 1, {"kursk"})], [a, b], False, 0)
    (d,) = result.to_match
    assert (d.item.uid, d.update_id, d.reason) == ("b", None, "elsewhere")


def _decision(**kw: object) -> Decision:
    values: dict[str, object] = {
        "item": entry("a"), "fingerprint": "fp", "previous_rules": frozenset(),
        "stories": frozenset({"s"}), "may_alert": True,
    }  # fmt: skip
    values.update(kw)
    return Decision(**values)  # type: ignore[arg-type]


def _match(rule: str) -> Match:
    return Match(rule_id=rule, title=rule, level="high", windows=(), terms=())


def test_select_alerts_skips_known_rules_throttle_and_silent_backfill() -> None:
    matches = [_match("kursk"), _match("port-strikes")]
    now = 100_000.0
    chosen = select_alerts(_decision(previous_rules=frozenset({"kursk"})), matches, {}, {}, now)
    assert [m.rule_id for m in chosen] == ["port-strikes"]
    hour_ago = {("s", "kursk"): now - 3600}
    throttles = {"kursk": 6 * 3600.0}
    assert [m.rule_id for m in select_alerts(_decision(), matches, hour_ago, throttles, now)] == [
        "port-strikes"
    ]
    week_ago = {("s", "kursk"): now - 7 * 86400}
    assert len(select_alerts(_decision(), matches, week_ago, throttles, now)) == 2
    assert select_alerts(_decision(may_alert=False), matches, {}, {}, now) == ()


# -- whole cycles against a real server -----------------------------------------------------


def rules_of(alerts: list[Alert]) -> list[tuple[str, list[str]]]:
    return [(a.item.title, sorted(m.rule_id for m in a.matches)) for a in alerts]


async def test_bad_feeds_are_recorded_and_the_good_one_still_alerts(env: Env) -> None:
    s = env.server
    s.route("/good", handler=conditional(rss(rss_item(1, KURSK), rss_item(2, DULL))))
    s.route("/500", status=500, body=b"oops")
    s.route("/hang", hang=True)
    s.route("/html", headers={"Content-Type": "text/html"}, body=b"<!doctype html><p>Hi</p>")
    s.route("/empty", body=rss())
    bare = [{"description": PORT}, {"title": "No guid", "description": TAIWAN}]
    s.route("/bare", body=rss(*bare))
    feeds = [
        env.feed("good", "/good", backfill=10),
        env.feed("e500", "/500"),
        env.feed("hang", "/hang"),
        Feed("refused", f"http://127.0.0.1:{closed_port()}/feed"),
        env.feed("html", "/html"),
        env.feed("empty", "/empty"),
        env.feed("bare", "/bare", backfill=10),
    ]
    stats = await env.cycle(*feeds)
    assert rules_of(env.alerts) == [
        ("Report 1", ["kursk"]),
        ("", ["port-strikes"]),
        ("No guid", ["taiwan-exercises"]),
    ]
    assert (stats.feeds, stats.fetched, stats.failed) == (7, 3, 4)
    health = {f.name: f for f in env.store.feed_health()}
    assert {n for n, f in health.items() if f.error_count} == {"e500", "hang", "refused", "html"}
    assert "500" in (health["e500"].last_error or "")
    assert "not a feed" in (health["html"].last_error or "")
    assert "refused" in (health["refused"].last_error or "").lower()
    assert "time" in (health["hang"].last_error or "").lower()
    assert (health["empty"].error_count, health["empty"].items) == (0, 0)
    assert health["bare"].items == 2 and health["good"].items == 2
    assert health["e500"].next_fetch is not None and health["e500"].next_fetch > env.clock.now


async def test_second_cycle_sends_validators_and_alerts_nothing_new(env: Env) -> None:
    env.server.route("/f", handler=conditional(rss(rss_item(1, KURSK)), etag='"v1"'))
    feed = env.feed("f", "/f", backfill=5)
    await env.cycle(feed)
    stats = await env.cycle(feed, advance=600, force=False)
    assert (len(env.alerts), stats.feeds, stats.unchanged) == (1, 1, 1)
    first, second = env.server.requests_for("/f")
    assert "if-none-match" not in first.headers
    assert second.headers["if-none-match"] == '"v1"'
    assert second.headers["if-modified-since"]


async def test_unchanged_body_without_validators_is_not_parsed_again(env: Env) -> None:
    env.server.route("/f", body=rss(rss_item(1, KURSK)))
    feed = env.feed("f", "/f", backfill=5)
    await env.cycle(feed)
    stats = await env.cycle(feed)
    assert (stats.unchanged, stats.fetched, len(env.alerts)) == (1, 0, 1)


async def test_not_due_feed_is_left_alone(env: Env) -> None:
    env.server.route("/f", body=rss())
    feed = env.feed("f", "/f", interval=600)
    await env.cycle(feed)
    assert (await env.cycle(feed, advance=599, force=False)).feeds == 0
    assert (await env.cycle(feed, advance=1, force=False)).feeds == 1


async def test_edited_entry_alerts_only_for_its_new_rules(env: Env) -> None:
    env.server.route("/f", body=rss(rss_item(1, KURSK)))
    feed = env.feed("f", "/f", backfill=5)
    await env.cycle(feed)
    env.server.route("/f", body=rss(rss_item(1, KURSK + " " + PORT)))
    stats = await env.cycle(feed)
    assert rules_of(env.alerts) == [("Report 1", ["kursk"]), ("Report 1", ["port-strikes"])]
    assert stats.items_changed == 1 and env.store.item_count("f") == 1


async def test_regenerated_guids_and_edited_titles_do_not_resend(env: Env) -> None:
    env.server.route("/f", body=rss(rss_item(1, KURSK), rss_item(2, PORT)))
    feed = env.feed("f", "/f", backfill=5)
    await env.cycle(feed)
    regenerated = rss(
        rss_item(1, KURSK, guid="urn:new:1", title="Report 1 (updated)"),
        rss_item(2, PORT, guid="urn:new:2", link="https://example.org/moved/2"),
    )
    env.server.route("/f", body=regenerated)
    stats = await env.cycle(feed)
    assert len(env.alerts) == 2 and stats.items_changed == 2
    assert env.store.item_count("f") == 2  # rows updated in place, not duplicated


async def test_story_alerted_from_one_feed_does_not_alert_from_another(env: Env) -> None:
    env.server.route("/a", body=rss(rss_item(1, KURSK)))
    tracked = rss_item(1, KURSK, guid="other-guid", link="https://www.example.org/r/1?utm_source=x")
    env.server.route("/b", body=rss(tracked))
    await env.cycle(env.feed("a", "/a", backfill=5))
    await env.cycle(env.feed("b", "/b", backfill=5))
    assert len(env.alerts) == 1 and env.store.item_count() == 2


async def test_first_sight_backfill_records_the_rest_silently(env: Env) -> None:
    env.server.route("/f", body=rss(*(rss_item(n, KURSK) for n in range(1, 5))))
    await env.cycle(env.feed("f", "/f", backfill=1))
    assert [a.item.title for a in env.alerts] == ["Report 4"]  # the newest
    assert env.store.item_count("f") == 4
    env.server.route("/f", body=rss(*(rss_item(n, KURSK) for n in range(1, 6))))
    await env.cycle(env.feed("f", "/f", backfill=1))
    assert [a.item.title for a in env.alerts] == ["Report 4", "Report 5"]


async def test_rule_throttle_holds_back_a_story_that_comes_back(env: Env) -> None:
    # kursk has `throttle: 6h`: matched, edited away, matched again within 6h -> no new alert
    # (an edit of one story: the football sentence stays, the Kursk one comes and goes)
    feed = env.feed("f", "/f", backfill=5)
    hit = f"{DULL} {KURSK}"
    for text, advance in ((hit, 0), (DULL, 60), (hit, 60), (DULL, 60), (hit, 7 * 3600)):
        env.server.route("/f", body=rss(rss_item(1, text)))
        await env.cycle(feed, advance=advance)
    assert len(env.alerts) == 2


async def test_alerts_become_outbox_rows_for_subscribers(env: Env) -> None:
    env.store.subscribe(42, ["kursk"])
    env.store.subscribe(43, ["taiwan-exercises"])
    env.server.route("/f", body=rss(rss_item(1, KURSK), rss_item(2, PORT)))
    await env.cycle(env.feed("f", "/f", backfill=5))
    rows = env.store.outbox_rows()
    assert [(r.chat_id, r.alert.item.title, r.state) for r in rows] == [(42, "Report 1", "pending")]
    assert rows[0].alert.matches[0].snippets


async def test_throttled_feed_waits_as_told_without_counting_an_error(env: Env) -> None:
    env.server.route("/f", status=429, headers={"Retry-After": "120"})
    stats = await env.cycle(env.feed("f", "/f"))
    state = env.store.feed_state("f")
    assert state is not None and state.error_count == 0 and stats.errors["f"]
    assert state.next_fetch == env.clock.now + 120
    assert state.throttled_until == env.clock.now + 120 and "429" in (state.throttle_reason or "")
    env.server.route("/f", body=rss(rss_item(1, DULL)))
    await env.cycle(env.feed("f", "/f"), advance=120)
    state = env.store.feed_state("f")
    assert state is not None and state.throttled_until is None and state.last_success


async def test_errors_back_off_and_success_resets_the_count(env: Env) -> None:
    env.server.route("/f", status=500)
    feed = env.feed("f", "/f", interval=60)
    delays = []
    for _ in range(3):
        await env.cycle(feed)
        state = env.store.feed_state("f")
        assert state is not None and state.next_fetch is not None
        delays.append(state.next_fetch - env.clock.now)
    assert delays[0] < delays[1] < delays[2] and state.error_count == 3
    env.server.route("/f", body=rss())
    await env.cycle(feed)
    assert env.store.feed_state("f").error_count == 0  # type: ignore[union-attr]


async def test_410_disables_the_feed_with_a_message(env: Env) -> None:
    env.server.route("/f", status=410)
    feed = env.feed("f", "/f")
    stats = await env.cycle(feed)
    state = env.store.feed_state("f")
    assert state is not None and state.disabled and stats.disabled == 1
    assert "disabled" in (state.last_error or "")
    assert (await env.cycle(feed)).feeds == 0


async def test_404_for_a_day_disables_the_feed(env: Env) -> None:
    feed = env.feed("f", "/missing")
    await env.cycle(feed)
    await env.cycle(feed, advance=12 * 3600)
    assert not env.store.feed_state("f").disabled  # type: ignore[union-attr]
    stats = await env.cycle(feed, advance=12 * 3600)
    state = env.store.feed_state("f")
    assert state is not None and state.disabled and stats.disabled == 1
    assert "404 after a day" in (state.last_error or "")


async def test_permanent_redirect_moves_the_feed(env: Env) -> None:
    env.server.redirect("/old", "/new", status=301)
    env.server.route("/new", body=rss(rss_item(1, DULL)))
    feed = env.feed("f", "/old")
    await env.cycle(feed)
    assert env.store.feed_state("f").url == env.server.url("/new")  # type: ignore[union-attr]
    await env.cycle(feed)
    assert len(env.server.requests_for("/old")) == 1
    assert len(env.server.requests_for("/new")) == 2


async def test_matching_uses_the_cleaned_text_not_the_markup(env: Env) -> None:
    html = f'<div class="kursk-widget taiwan-drills">{escape(DULL)}</div>'
    env.server.route("/f", body=rss(rss_item(1, html)))
    await env.cycle(env.feed("f", "/f", backfill=5))
    assert env.alerts == []


async def test_one_failing_store_write_is_that_feeds_error(env: Env, store: Store) -> None:
    env.server.route("/f", body=rss(rss_item(1, KURSK)))
    env.server.route("/g", body=rss(rss_item(2, PORT)))

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("disk on fire")

    original = env.poller.rulebook
    env.poller.rulebook = type("Broken", (), {"match": broken, "rules": original.rules})()  # type: ignore[assignment]
    stats = await env.cycle(env.feed("f", "/f", backfill=5))
    assert stats.failed == 1 and "disk on fire" in stats.errors["f"]
    env.poller.rulebook = original
    await env.cycle(env.feed("f", "/f", backfill=5), env.feed("g", "/g", backfill=5))
    assert sorted(a.item.title for a in env.alerts) == ["Report 1", "Report 2"]
