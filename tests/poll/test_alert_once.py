"""Every new story alerts exactly once, over a real HTTP server: reused identifiers, churn, copies.

Each test serves feeds the way real publishers write them (the shapes of the golden fixtures in
tests/fixtures/feeds) and runs whole poll cycles against them; a crash, a full disk and an
upgrade are played on real database files.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest
from feedserver import FeedServer, rss
from pollenv import Clock, Env, polling
from storekit import fill_disk, free_space

from bot.identity import body_fingerprint, text_fingerprint
from bot.models import Alert, Item, KnownItem, Match
from bot.poll import neardup
from bot.poll.decide import decide
from bot.rules.matcher import Rulebook
from bot.store import Store
from bot.store.schema import MIGRATIONS

K1 = "Russian sources claim that Russian forces have regained positions in the Kursk region."
K2 = "Ukrainian troops repelled an assault near Sudzha in the Kursk region on Tuesday."
K3 = "Fresh Russian units arrived on the Kursk front, a Ukrainian brigade spokesman said."
P1 = "Russian drones struck port infrastructure in Odesa overnight, damaging a grain terminal."
DULL = "Shakhtar Donetsk beat Dynamo Kyiv 2-1 in the league derby on Sunday."


@pytest.fixture
def cycle_advance() -> float:
    return 60.0  # a minute between cycles


def titles(alerts: list[Alert]) -> list[str]:
    return [a.item.title for a in alerts]


# -- decide (pure): a shared identifier is weighed against the text -------------------------


def item(uid: str, link: str, title: str, text: str) -> Item:
    return Item("f", uid, link, title, link, None, text, f"{title}|{text}")


def row(entry: Item, rules: set[str], *, pruned: bool = False) -> KnownItem:
    return KnownItem(
        1, entry.feed, entry.uid, entry.story_key, entry.content_hash,
        text_fingerprint(entry.title, entry.text), frozenset(rules),
        title=None if pruned else entry.title, text=None if pruned else entry.text,
        body=body_fingerprint(entry.text),
    )  # fmt: skip


def test_same_guid_and_link_with_another_story_is_new_and_gets_a_text_key() -> None:
    old, new = item("g", "https://x/live", "A", K1), item("g", "https://x/live", "B", P1)
    [d] = decide([row(old, {"kursk"})], [new], first_time=False, backfill=0).to_match
    assert (d.reason, d.update_id, d.previous_rules) == ("new", None, frozenset())
    assert d.item.story_key.startswith("text:")


def test_same_guid_with_an_edited_story_is_a_change() -> None:
    old = item("g", "https://x/a", "A", K1 + " " + DULL)
    new = item("g", "https://x/a", "A (updated)", K1 + " " + DULL + " " + P1)
    [d] = decide([row(old, {"kursk"})], [new], first_time=False, backfill=0).to_match
    assert (d.reason, d.update_id, d.previous_rules) == ("changed", 1, frozenset({"kursk"}))


def test_pruned_rows_keep_trusting_their_identifiers() -> None:
    old, new = item("g", "https://x/a", "A", K1), item("g", "https://x/a", "B", P1)
    [d] = decide([row(old, {"kursk"}, pruned=True)], [new], first_time=False, backfill=0).to_match
    assert (d.reason, d.previous_rules) == ("changed", frozenset({"kursk"}))


# -- 1. identifiers reused for different stories: each new story alerts ----------------------


async def test_podcast_episodes_sharing_one_link_each_alert(env: Env) -> None:
    # the reproduction: guid ep-1, then ep-2 with the same link and another sentence
    show = "http://example.test/podcast"
    ep1 = {"title": "Episode 1", "link": show, "guid": "ep-1", "description": K1}
    ep2 = {"title": "Episode 2", "link": show, "guid": "ep-2", "description": K2}
    env.server.route("/pod", body=rss(ep1))
    feed = env.feed("pod", "/pod", backfill=5)
    await env.cycle(feed)
    env.server.route("/pod", body=rss(ep2, ep1))
    await env.cycle(feed)
    assert titles(env.alerts) == ["Episode 1", "Episode 2"]
    await env.cycle(feed)  # and nothing twice
    assert len(env.alerts) == 2


async def test_feed_showing_only_its_latest_story_under_a_constant_guid_and_link(
    env: Env,
) -> None:
    feed = env.feed("live", "/live", backfill=5)
    for n, text in enumerate((K1, DULL, K2, K3), start=1):
        update = {"title": f"Update {n}", "link": "https://live.example/page", "guid": "live"}
        env.server.route("/live", body=rss({**update, "description": text}))
        await env.cycle(feed)
    assert titles(env.alerts) == ["Update 1", "Update 3", "Update 4"]


async def test_daily_page_entries_differing_by_anchor_each_alert(env: Env) -> None:
    page = "https://notes.example.net/2024/10/14/"
    feed = env.feed("daily", "/daily", backfill=5)
    entries: list[dict[str, str]] = []
    for n, text in enumerate((K1, K2, P1), start=1):
        entries.insert(0, {"title": f"Note {n}", "link": f"{page}#entry-{n}", "description": text})
        env.server.route("/daily", body=rss(*entries[:2]))  # the page shows the last two
        await env.cycle(feed)
    assert titles(env.alerts) == ["Note 1", "Note 2", "Note 3"]


async def test_new_story_inserted_above_an_old_one_with_the_same_guid(env: Env) -> None:
    old = {"title": "Port strike", "link": "https://city.example/port", "guid": "4711",
           "description": P1}  # fmt: skip
    new = {"title": "Kursk", "link": "https://city.example/kursk", "guid": "4711",
           "description": K1}  # fmt: skip
    env.server.route("/city", body=rss(old))
    feed = env.feed("city", "/city", backfill=5)
    await env.cycle(feed)
    env.server.route("/city", body=rss(new, old))
    await env.cycle(feed)
    await env.cycle(feed)
    assert titles(env.alerts) == ["Port strike", "Kursk"]
    assert env.store.item_count("city") == 2  # the old row was not overwritten by the new story


async def test_constant_guid_for_all_items_of_a_document(env: Env) -> None:
    items = [
        {
            "title": f"Story {n}",
            "link": f"https://wire.example/{n}",
            "guid": "urn:wire:item",
            "description": text,
        }
        for n, text in enumerate((K1, P1), start=1)
    ]
    env.server.route("/wire", body=rss(items[0]))
    feed = env.feed("wire", "/wire", backfill=5)
    await env.cycle(feed)
    env.server.route("/wire", body=rss(items[1], items[0]))
    await env.cycle(feed)
    assert titles(env.alerts) == ["Story 1", "Story 2"]


# -- 2. publisher churn on stories already alerted: silence -----------------------------------

STORIES = [
    ("Russian forces regain ground in Kursk", K1, "kursk-regain"),
    ("Drones hit Odesa port", P1, "odesa-port"),
    ("Sudzha assault repelled", K2, "sudzha-assault"),
]


def churned(version: int, rng: random.Random) -> bytes:
    """The same three stories as a publisher re-serves them over time."""
    items = []
    for n, (title, text, slug) in enumerate(STORIES):
        scheme = "http" if version % 2 else "https"
        item = {
            "title": title if version < 2 else f"{title} (updated)",
            "link": f"{scheme}://www.news.example/{slug}",
            "guid": f"urn:cms:{version}:{n}",  # the CMS regenerates every guid
            "description": text if version < 3 else text.replace("Russian", "The Russian", 1),
        }
        if version >= 3:  # tracking parameters appear
            item["link"] += "?at_medium=RSS&at_campaign=rss&utm_source=feed&wt_mc=rss.red"
        if version >= 4 and n == 0:  # slug changed and headline edited again, new guid again
            item["link"] = f"https://news.example/{slug}-update-2"
            item["title"] = "Kursk: Russian forces regain positions"
        items.append(item)
    rng.shuffle(items)  # entries reordered
    return rss(*items)


async def test_publisher_churn_replayed_alerts_nothing_again(env: Env) -> None:
    rng = random.Random(12)
    feed = env.feed("churn", "/churn", backfill=5)
    env.server.route("/churn", body=churned(0, rng))
    await env.cycle(feed)
    assert sorted(titles(env.alerts)) == sorted(t for t, _, _ in STORIES)
    for version in range(1, 6):
        env.server.route("/churn", body=churned(version, rng))
        await env.cycle(feed, advance=7 * 3600)  # past every rule's throttle
    assert len(env.alerts) == 3


async def test_http_and_https_with_an_edited_headline_is_the_same_story(env: Env) -> None:
    first = {"title": "Kursk fighting", "link": "http://a.example/k", "guid": "g1",
             "description": K1}  # fmt: skip
    env.server.route("/a", body=rss(first))
    feed = env.feed("a", "/a", backfill=5)
    await env.cycle(feed)
    edited = {**first, "title": "Kursk fighting continues", "link": "https://a.example/k",
              "guid": "g2"}  # fmt: skip
    env.server.route("/a", body=rss(edited))
    await env.cycle(feed, advance=7 * 3600)
    assert len(env.alerts) == 1


# -- 3. one report from several outlets --------------------------------------------------------

WIRE = (
    "Russian forces have regained positions in the Kursk region after heavy fighting near the "
    "town of Sudzha, according to Russian military bloggers. Ukrainian officials said their "
    "units still held the main road and had repelled six assaults overnight. The regional "
    "governor reported that two villages were without power after shelling."
)
FOOTER = (
    "Read more on our website. Sign up for the morning newsletter to get the day's most "
    "important stories in your inbox every day before breakfast. Follow us on social media."
)
OTHER = (
    "Ukrainian troops said they destroyed a bridge over the Seym river in the Kursk region, "
    "cutting a supply route used by Russian units. Satellite images reviewed by analysts showed "
    "the damaged span on Friday. Moscow did not comment on the claim."
)


async def test_wire_copy_from_another_outlet_alerts_once(env: Env) -> None:
    a = {"title": "Russia regains Kursk positions", "link": "https://a.example/1", "guid": "a1",
         "description": WIRE}  # fmt: skip
    b = {"title": "Kursk: Moscow claims gains near Sudzha", "link": "https://b.example/x9",
         "guid": "b-x9",
         "description": "KYIV (Wire) - " + WIRE + " The Kremlin declined to comment."}  # fmt: skip
    env.server.route("/a", body=rss(a))
    env.server.route("/b", body=rss(b))
    fa, fb = env.feed("a", "/a", backfill=5), env.feed("b", "/b", backfill=5)
    await env.cycle(fa)
    await env.cycle(fb)
    assert titles(env.alerts) == ["Russia regains Kursk positions"]
    # within one cycle too: a third outlet and the first again, together
    c = {**b, "title": "Sudzha fighting", "link": "https://c.example/3", "guid": "c3"}
    env.server.route("/c", body=rss(c))
    await env.cycle(fa, fb, env.feed("c", "/c", backfill=5))
    assert len(env.alerts) == 1


async def test_different_reports_sharing_an_outlets_boilerplate_both_alert(env: Env) -> None:
    one = {"title": "Kursk positions", "link": "https://a.example/1", "guid": "1",
           "description": WIRE + " " + FOOTER}  # fmt: skip
    two = {"title": "Seym bridge", "link": "https://a.example/2", "guid": "2",
           "description": OTHER + " " + FOOTER}  # fmt: skip
    env.server.route("/a", body=rss(one))
    feed = env.feed("a", "/a", backfill=5)
    await env.cycle(feed)
    env.server.route("/b", body=rss(two))  # the same outlet's other feed: one item, no context
    await env.cycle(env.feed("b", "/b", backfill=5))
    assert titles(env.alerts) == ["Kursk positions", "Seym bridge"]


# -- 3b. bands are indexed in batches after their reports: a crash, a full disk or an upgrade
# in between still catches the copy (see bot/store/sketches.py)

ORIGINAL = {"title": "Russia regains Kursk positions", "link": "https://a.example/1",
            "guid": "a1", "description": WIRE}  # fmt: skip
COPY = {"title": "Kursk: Moscow claims gains near Sudzha", "link": "https://b.example/x9",
        "guid": "b-x9",
        "description": "KYIV (Wire) - " + WIRE + " The Kremlin declined."}  # fmt: skip


def serve_both(server: FeedServer) -> None:
    server.route("/a", body=rss(ORIGINAL))
    server.route("/b", body=rss(COPY))


def count(store: Store, sql: str) -> int:
    return int(store.db.execute(sql).fetchone()[0])


async def test_a_copy_is_caught_after_a_crash_left_its_original_unindexed(
    env: Env, tmp_path: Path, clock: Clock, feed_server: FeedServer, rulebook: Rulebook
) -> None:
    # the database as a process killed right after the original's commit leaves it: its bands
    # were still waiting in memory for the cycle's end
    crashed = tmp_path / "crashed.db"

    def emit(alert: Alert) -> None:
        env.alerts.append(alert)
        with sqlite3.connect(crashed) as copy:
            env.store.db.conn.backup(copy)

    env.poller.emit = emit
    serve_both(env.server)
    await env.cycle(env.feed("a", "/a", backfill=5))
    assert titles(env.alerts) == ["Russia regains Kursk positions"]
    with Store(crashed, clock=clock) as store:
        assert count(store, "SELECT count(*) FROM item_bands") == 0
        async with polling(store, clock, feed_server, rulebook) as restarted:
            await restarted.cycle(restarted.feed("b", "/b", backfill=5))
        assert restarted.alerts == []
        assert count(store, "SELECT count(*) FROM item_sketches WHERE banded = 0") == 0


async def test_a_full_disk_while_indexing_keeps_the_original_findable(env: Env) -> None:
    # forty reports: their bands need new pages, which the full disk refuses
    rng = random.Random(5)
    reports = [f"Fighting went on in the Kursk region on day {n}. " + " ".join(
        rng.choice(["shelling", "village", "brigade", "drone", "road", "river", "night",
                    "convoy", "bridge", "officials", "reported", "claimed"]) for _ in range(40)
    ) + "." for n in range(40)]  # fmt: skip
    items = [{"title": f"Kursk {n}", "guid": f"a{n}", "link": f"https://a.example/{n}",
              "description": text} for n, text in enumerate(reports)]  # fmt: skip
    copy = {"title": "Copy", "guid": "b1", "link": "https://b.example/1",
            "description": "KYIV (Wire) - " + reports[7]}  # fmt: skip
    env.server.route("/a", body=rss(*items))
    env.server.route("/b", body=rss(copy))
    env.poller.emit = lambda alert: (env.alerts.append(alert), fill_disk(env.store))
    await env.cycle(env.feed("a", "/a", backfill=50))  # the flush at its end is refused
    assert len(env.alerts) == 40
    assert env.store.write_problem
    assert count(env.store, "SELECT count(*) FROM item_sketches WHERE banded = 0") == 40
    free_space(env.store)
    await env.cycle(env.feed("b", "/b", backfill=5))
    assert len(env.alerts) == 40
    assert count(env.store, "SELECT count(*) FROM item_sketches WHERE banded = 0") == 0


async def test_a_copy_is_caught_in_a_database_indexed_under_the_old_band_keys(
    tmp_path: Path, clock: Clock, feed_server: FeedServer, rulebook: Rulebook
) -> None:
    path = tmp_path / "upgraded.db"
    with Store(path, clock=clock, migrations=MIGRATIONS[:-1]) as old:  # the previous release
        stored = Item("a", "a1", "https://a.example/1", ORIGINAL["title"], ORIGINAL["link"],
                      None, WIRE, "h1")  # fmt: skip
        kursk = Match("kursk", "Kursk", "high", (), ())
        item_id = old.record_item(stored, [kursk], [kursk], enqueue=False)
        sketch = neardup.sketch(WIRE)
        assert item_id is not None and sketch is not None
        with old.transaction() as db:  # as that release wrote them, under keys of its own
            db.execute("INSERT INTO item_sketches VALUES (?, ?)", (item_id, sketch.signature))
            old_keys = [(-band - 1, item_id) for band in range(neardup.BANDS)]
            db.conn.executemany("INSERT INTO item_bands VALUES (?, ?)", old_keys)
    with Store(path, clock=clock) as store:
        serve_both(feed_server)
        async with polling(store, clock, feed_server, rulebook) as upgraded:
            await upgraded.cycle(upgraded.feed("b", "/b", backfill=5))
        assert upgraded.alerts == []


# -- 4. the entry's own text is what is matched -------------------------------------------


async def test_description_not_the_photo_caption_and_br_inside_a_sentence(env: Env) -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
    <channel><title>T</title>
    <item><title>Danube</title><link>https://paper.example/1</link>
      <description>Russian drones struck the port of Izmail overnight, officials said.</description>
      <media:content url="https://img.example/1.jpg" medium="image">
        <media:description>Fishermen at dawn on a quiet river.</media:description>
      </media:content></item>
    <item><title>Wrapped</title><link>https://paper.example/2</link>
      <description>Russian forces struck&lt;br&gt;the port of Reni overnight.</description></item>
    </channel></rss>"""
    env.server.route("/nyt", body=body)
    await env.cycle(env.feed("nyt", "/nyt", backfill=5))
    assert [(a.item.title, [m.rule_id for m in a.matches]) for a in env.alerts] == [
        ("Danube", ["port-strikes"]),
        ("Wrapped", ["port-strikes"]),
    ]


# -- 5. formats and encodings ------------------------------------------------------------------


async def test_json_feed_alerts_like_rss_and_an_undeclared_cp1251_feed_reads(env: Env) -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON desk",
        "items": [{"id": "j1", "url": "https://json.example/1", "title": "Kursk",
                   "content_html": f"<p>{K1}</p>"}],
    }  # fmt: skip
    env.server.route("/json", body=json.dumps(doc).encode(),
                     headers={"Content-Type": "application/feed+json"})  # fmt: skip
    cyrillic = (
        "<rss version='2.0'><channel><title>Новини</title><item><guid>u1</guid>"
        "<title>Київ</title><description>Новини дня</description></item></channel></rss>"
    )
    env.server.route("/ua", body=cyrillic.encode("cp1251"), headers={"Content-Type": "text/xml"})
    await env.cycle(env.feed("json", "/json", backfill=5), env.feed("ua", "/ua", backfill=5))
    assert titles(env.alerts) == ["Kursk"]
    state = env.store.feed_state("ua")
    assert state is not None and state.title == "Новини" and state.error_count == 0
    assert env.store.db.execute("SELECT title FROM items WHERE feed = 'ua'").fetchall() == [
        ("Київ",)
    ]


async def test_podcast_episodes_with_templated_blurbs_under_one_link_each_alert(env: Env) -> None:
    show = "https://pod.example/show"

    def episode(n: int) -> dict[str, str]:
        text = f"In episode {n}, Russian forces and the fighting in the Kursk region."
        return {"title": f"Episode {n}", "link": show, "guid": f"ep-{n}", "description": text}

    feed = env.feed("pod", "/pod", backfill=5)
    env.server.route("/pod", body=rss(episode(1)))
    await env.cycle(feed)
    env.server.route("/pod", body=rss(episode(2), episode(1)))
    await env.cycle(feed)
    env.server.route("/pod", body=rss(episode(3), episode(2), episode(1)))
    await env.cycle(feed)
    assert titles(env.alerts) == ["Episode 1", "Episode 2", "Episode 3"]
