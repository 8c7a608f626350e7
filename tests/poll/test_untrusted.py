"""Poll cycles over hostile feed content: invisible characters, links to internal addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from feedserver import FeedServer
from pollenv import Clock, Env, polling

from bot.rules.files import load_rules
from bot.rules.matcher import Rulebook
from bot.store import Store

RULES = Path(__file__).resolve().parents[2] / "rules"
HIDDEN = "\u200b\u200c\u200d\u2060\u00ad\ufeff"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"


def rss(*items: tuple[str, str, str]) -> bytes:
    """An RSS 2.0 document of (title, link, description) items."""
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
        f"<description>{escape(d)}</description></item>"
        for t, link, d in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link>{body}</channel></rss>"
    ).encode()


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    return load_rules(RULES)


@pytest.fixture
async def env(
    store: Store, clock: Clock, feed_server: FeedServer, rulebook: Rulebook
) -> AsyncIterator[Env]:
    async with polling(store, clock, feed_server, rulebook) as env:
        yield env


@pytest.mark.parametrize("char", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
async def test_invisible_characters_neither_hide_a_match_nor_reach_the_reader(
    env: Env, char: str
) -> None:
    text = f"Ukrainian troops advanced in Kur{char}sk Oblast on Tuesday.{BIDI}"
    title = f"{BIDI[4]}Kur{char}sk: report{BIDI[9]}"
    env.server.route("/f", body=rss((title, "https://example.org/1", text)))
    await env.cycle(env.feed("f", "/f", backfill=5))
    [alert] = env.alerts
    assert [m.rule_id for m in alert.matches] == ["kursk"]
    assert alert.item.title == "Kursk: report"
    assert alert.item.text == "Ukrainian troops advanced in Kursk Oblast on Tuesday."
    shown = [s.text for m in alert.matches for s in m.snippets]
    assert shown and all(not set(s) & set(HIDDEN + BIDI) for s in shown)
