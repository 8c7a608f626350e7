"""Poll cycles over hostile feed content: invisible characters, links to internal addresses."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from feedserver import FeedServer, rss, running
from pollenv import Clock, Env, polling

from bot.identity import normalize_link
from bot.rules.matcher import Rulebook
from bot.store import Store

HIDDEN = "\u200b\u200c\u200d\u2060\u00ad\ufeff"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"


def stories(*items: tuple[str, str, str]) -> bytes:
    """An RSS 2.0 document of (title, link, description) items, each link its guid."""
    return rss(*({"title": t, "link": link, "guid": link, "description": d}
                 for t, link, d in items))  # fmt: skip


def json_stories(*items: tuple[str, str, str]) -> bytes:
    """The same as a JSON Feed 1.1 document (plain-text content)."""
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "T",
        "items": [{"id": link, "url": link, "title": t, "content_text": d} for t, link, d in items],
    }).encode()  # fmt: skip


@pytest.mark.parametrize("document", [stories, json_stories], ids=["rss", "json"])
@pytest.mark.parametrize("char", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
async def test_invisible_characters_neither_hide_a_match_nor_reach_the_reader(
    env: Env, char: str, document: Callable[..., bytes]
) -> None:
    text = f"Ukrainian troops advanced in Kur{char}sk Oblast on Tuesday.{BIDI}"
    title = f"{BIDI[4]}Kur{char}sk: report{BIDI[9]}"
    env.server.route("/f", body=document((title, "https://example.org/1", text)))
    await env.cycle(env.feed("f", "/f", backfill=5))
    [alert] = env.alerts
    assert [m.rule_id for m in alert.matches] == ["kursk"]
    assert alert.item.title == "Kursk: report"
    assert alert.item.text == "Ukrainian troops advanced in Kursk Oblast on Tuesday."
    shown = [s.text for m in alert.matches for s in m.snippets]
    assert shown and all(not set(s) & set(HIDDEN + BIDI) for s in shown)


# -- links to internal addresses (server-side request forgery) --------------------------------

SECRET_PAGE = (
    b"<!doctype html><html><head><title>Admin</title></head><body><article>"
    b"<p>Internal dashboard of the intranet, token hunter2, for staff eyes only today.</p>"
    b"<p>Russian sources claim that Russian forces have regained positions in the Kursk region.</p>"
    b"</article></body></html>"
)
TEASER = "The regional administration published its weekly summary on Thursday…"


@pytest.fixture
def other_site() -> Iterator[FeedServer]:
    """A site on 127.0.0.2: the range the operator allowed in these tests."""
    with running("127.0.0.2") as server:
        yield server


def hostile_feed(server: FeedServer, other: FeedServer) -> None:
    server.route("/secret", headers={"Content-Type": "text/html"}, body=SECRET_PAGE)
    other.redirect("/story", server.url("/secret"), status=302)
    server.route("/f", body=stories(
        ("Direct", server.url("/secret"), TEASER),
        ("Redirected", other.url("/story"), TEASER),
    ))  # fmt: skip


@pytest.mark.parametrize("allowed", [(), ("127.0.0.2/32",)])
async def test_article_links_to_internal_addresses_are_not_fetched_stored_or_sent(
    store: Store,
    clock: Clock,
    feed_server: FeedServer,
    other_site: FeedServer,
    rulebook: Rulebook,
    allowed: tuple[str, ...],
) -> None:
    hostile_feed(feed_server, other_site)
    async with polling(
        store, clock, feed_server, rulebook, full_text=True, allow_addresses=allowed
    ) as env:
        stats = await env.cycle(env.feed("f", "/f", backfill=5, full_text="always"))
    assert stats.failed == 0  # the feed itself, on loopback, is the operator's: fetched
    assert env.alerts == []  # the page's Kursk sentence was never read
    assert feed_server.requests_for("/secret") == []
    assert len(other_site.requests_for("/story")) == (1 if allowed else 0)
    for link in (feed_server.url("/secret"), other_site.url("/story")):
        row = store.article(normalize_link(link))
        assert row is not None and row.text is None
        assert "loopback" in (row.last_error or "")
    with store.db.conn:  # nothing of the page anywhere in the database
        dump = "\n".join(store.db.conn.iterdump())
    assert "hunter2" not in dump


async def test_article_links_in_a_range_the_operator_allowed_are_fetched(
    store: Store, clock: Clock, feed_server: FeedServer, other_site: FeedServer, rulebook: Rulebook
) -> None:
    hostile_feed(feed_server, other_site)
    async with polling(
        store, clock, feed_server, rulebook, full_text=True, allow_addresses=("127.0.0.0/8",)
    ) as env:
        await env.cycle(env.feed("f", "/f", backfill=5, full_text="always"))
    assert [a.item.title for a in env.alerts] == ["Direct", "Redirected"]
    assert len(feed_server.requests_for("/secret")) == 2
    for alert in env.alerts:
        assert [s.text for m in alert.matches for s in m.snippets] == [
            "Russian sources claim that Russian forces have regained positions in the Kursk region."
        ]
