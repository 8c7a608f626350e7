"""bot.status: one set of facts, the same report in a terminal and in Telegram HTML."""

from __future__ import annotations

import html
import re

from bot import status
from bot.models import Feed
from bot.store import Store

NOW = 1_700_000_000.0


def filled(store: Store) -> status.StatusFacts:
    feeds = [Feed("wire", "http://127.0.0.1:9/a"), Feed("odd <feed>", "http://127.0.0.1:9/b")]
    store.sync_feeds(feeds)
    store.record_fetch("wire", next_fetch=NOW + 240)
    store.record_feed_error("odd <feed>", "HTTP 502 <html>bad & worse</html>", next_fetch=NOW + 60)
    store.record_cycle(NOW - 63, NOW - 60, {"feeds": 2, "new_items": 0})
    store.add_subscriber(7)
    store.subscribe(7, ["kursk"])
    return status.gather(store, NOW, feeds, ["kursk", "port-strikes"], "state/alertbot.db")


def as_plain(lines: list[str]) -> list[str]:
    return [html.unescape(re.sub(r"</?b>", "", line)) for line in lines]


def test_html_and_plain_render_the_same_facts(store: Store) -> None:
    facts = filled(store)
    for render in (status.status_lines, status.feed_lines):
        plain, rich = render(facts), render(facts, status.HTML)
        assert as_plain(rich)[1:] == plain  # the same lines, after the HTML title


def test_html_escapes_stored_text_and_plain_keeps_it(store: Store) -> None:
    facts = filled(store)
    rich = "\n".join(status.status_lines(facts, status.HTML))
    assert "<html>" not in rich and "&lt;html&gt;bad &amp; worse" in rich
    assert "odd &lt;feed&gt;" in rich
    assert "HTTP 502 <html>bad & worse</html>" in "\n".join(status.status_lines(facts))


def test_status_counts_and_lists_every_topic(store: Store) -> None:
    lines = status.status_lines(filled(store))
    assert "feeds: 2, failing 1, disabled 0" in lines
    i = lines.index("subscribers per topic:")
    assert lines[i + 1 : i + 3] == ["  kursk: 1", "  port-strikes: 0"]
    assert lines[-1] == "marked not relevant per topic: none yet"


def test_a_feed_never_fetched_says_when_it_will_be(store: Store) -> None:
    feeds = [Feed("new", "http://127.0.0.1:9/n")]
    store.sync_feeds(feeds)
    lines = status.feed_lines(status.gather(store, NOW, feeds))
    assert lines == [
        "new  http://127.0.0.1:9/n",
        "  status: not fetched yet",
        "  next fetch: at the next poll cycle",
    ]


def test_throttled_feed_and_full_text_failures_in_both_renderings(store: Store) -> None:
    feeds = [Feed("busy", "http://127.0.0.1:9/a"), Feed("teasers", "http://127.0.0.1:9/b")]
    store.sync_feeds(feeds)
    store.record_throttle("busy", "HTTP 429 <Too Many> (asked to wait 3600s)", until=NOW + 3600)
    store.record_fetch("teasers", next_fetch=NOW + 600)
    store.record_fulltext_failures("teasers", "full text: article <x>: answered 500", 3)
    facts = status.gather(store, NOW, feeds)
    plain = status.status_lines(facts)
    assert "feeds: 2, failing 0, disabled 0, throttled 1, with full-text failures 1" in plain
    [busy] = [line for line in plain if line.startswith("  busy:")]
    assert busy.startswith("  busy: throttled: HTTP 429 <Too Many>") and " ok" not in busy
    details = "\n".join(status.feed_lines(facts))
    assert "status: throttled" in details and "throttled: HTTP 429 <Too Many>" in details
    assert "full-text failures: 3" in details and "answered 500" in details
    rich = "\n".join(status.feed_lines(facts, status.HTML))
    assert "&lt;Too Many&gt;" in rich and "article &lt;x&gt;" in rich
    assert as_plain(status.feed_lines(facts, status.HTML))[1:] == status.feed_lines(facts)
