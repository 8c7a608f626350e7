"""Full text for teasers: when to fetch, fetching and extracting, the poller, `match --url`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from feedserver import FeedServer, Response, repeat, rss
from pollenv import Clock, Env, polling

from bot.errors import FullTextError
from bot.feeds.fetch import Fetcher
from bot.feeds.fulltext import best_text, extract_main_text, fetch_article, needs_full_text
from bot.feeds.parse import html_to_text
from bot.identity import normalize_link
from bot.models import Alert, Item
from bot.rules.files import load_rules
from bot.rules.matcher import Rulebook
from bot.store import Store

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
KURSK = "Russian sources claim that Russian forces have regained positions in the Kursk region."
PORT = "Russian drones struck port infrastructure in Odesa overnight, damaging a grain terminal."
FILLER = [
    "The regional administration published its weekly summary on Thursday morning, listing "
    "repairs to the water network, the reopening of two schools and new bus timetables.",
    "Officials said that heating would be switched on in residential buildings from the middle "
    "of the month, a week earlier than last year, because of the forecast cold spell.",
    "Farmers in the south of the region reported a late but good harvest of sunflower seed, "
    "although prices at the elevators remained below what they had hoped for in spring.",
    "The city council also approved a plan to plant four hundred trees along the embankment "
    "and to replace the lighting in three parks with energy-saving lamps by next summer.",
]
TEASER = "The regional administration published its weekly summary on Thursday…"


# -- pages -----------------------------------------------------------------------------------


def page(title: str, paragraphs: list[str], *, lang: str = "en", head: str = "") -> str:
    """An article inside realistic boilerplate, every piece of which talks about Kursk."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head>{head}<title>{escape(title)} | Example Monitor</title>
<meta name="viewport" content="width=device-width"></head>
<body>
<div id="cookie-banner" class="cookie-consent"><p>We use cookies to understand how you use the
site. Accept all cookies or manage your preferences.</p><button>Accept</button></div>
<header class="site-header"><nav class="main-nav"><ul>
<li><a href="/topics/kursk">Kursk: Ukrainian forces advance</a></li>
<li><a href="/topics/ports">Ports under attack</a></li><li><a href="/about">About us</a></li>
</ul></nav></header>
<main><article class="post">
<h1 class="entry-title">{escape(title)}</h1>
<div class="byline">By Staff Reporter · 15 October 2024</div>
<div class="entry-content">{body}</div>
</article>
<aside class="sidebar related-posts"><h3>Related articles</h3><ul>
<li><a href="/r/1">Russian troops recapture villages in Kursk Oblast</a></li>
<li><a href="/r/2">Drone strikes hit the port of Izmail again</a></li></ul></aside>
<section id="comments" class="comments-area"><h3>3 comments</h3>
<div class="comment"><p>Ukrainian troops in Kursk are fighting bravely, thank you for the
report.</p></div>
<div class="comment"><p>When will the article about the shelling of Kursk positions come?</p>
</div></section></main>
<footer class="site-footer"><p>© 2024 Example Monitor. Kursk office: 5 Lenina St. Troops of
editors. All rights reserved.</p><a href="/privacy">Privacy</a></footer>
</body></html>"""


def html(text: str) -> dict[str, object]:
    return {"headers": {"Content-Type": "text/html; charset=utf-8"}, "body": text.encode()}


def item(text: str = TEASER, link: str = "https://example.org/a/1", **kw: object) -> Item:
    return Item(
        feed=str(kw.get("feed", "f")),
        uid=str(kw.get("uid", link)),
        story_key=link,
        title=str(kw.get("title", "Weekly summary")),
        link=link,
        published=None,
        text=text,
        content_hash="h",
    )


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    return load_rules(RULES)


def rules_fired(rulebook: Rulebook, text: str) -> set[str]:
    return {m.rule_id for m in rulebook.match(item(text))}


# -- when to fetch ---------------------------------------------------------------------------


LONG = " ".join(FILLER)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TEASER, True),  # short
        ("", True),
        (LONG, False),  # over 600 characters, ends in a full stop
        (LONG + " The council will meet again in…", True),
        (LONG + " The council will meet again in [...]", True),
        (LONG + "\n\nRead more", True),
        (LONG + "\n\nContinue reading »", True),
        (LONG + "\n\nЧитать далее", True),
        (LONG + "\n\nЧитати далі →", True),
        (LONG + " [&hellip;]".replace("&hellip;", "…"), True),
        (LONG + "\n\nThe post Weekly summary appeared first on Example Monitor.", False),
        ("Heating starts early […]\n\nThe post Weekly summary appeared first on Monitor.", True),
    ],
)
def test_auto_fetches_teasers_only(text: str, expected: bool) -> None:
    assert needs_full_text(item(text), "auto") is expected


def test_modes_and_entries_without_a_link() -> None:
    assert needs_full_text(item(LONG), "always") is True
    assert needs_full_text(item(TEASER), "never") is False
    assert needs_full_text(item(TEASER, link=""), "always") is False
    with pytest.raises(ValueError, match="auto, always or never"):
        needs_full_text(item(), "sometimes")


# -- extraction ------------------------------------------------------------------------------


def test_main_text_keeps_paragraphs_and_drops_the_boilerplate(rulebook: Rulebook) -> None:
    document = page("Weekly summary", FILLER)
    text = extract_main_text(document, "https://example.org/a/1")
    blocks = text.split("\n\n")
    assert blocks[0] == "Weekly summary" and blocks[1:] == FILLER
    for boilerplate in ("cookie", "Kursk", "comment", "Related", "rights reserved", "About"):
        assert boilerplate.lower() not in text.lower()
    # the point of it: the page as a whole would have fired the kursk rule
    assert "kursk" in rules_fired(rulebook, html_to_text(document))
    assert "kursk" not in rules_fired(rulebook, text)


def test_a_mention_in_the_article_does_fire(rulebook: Rulebook) -> None:
    text = extract_main_text(page("Front update", [*FILLER[:2], KURSK, PORT]), "https://x.org/a")
    assert KURSK in text.split("\n\n") and PORT in text.split("\n\n")
    assert {"kursk", "port-strikes"} <= rules_fired(rulebook, text)


RU = [
    "ВСУ продолжают наступление в Курской области, сообщает Минобороны.",
    "Жители приграничных сёл рассказали о том, как прошла эвакуация и что им обещали власти.",
    "По словам губернатора, отопительный сезон в области начнётся на неделю раньше обычного.",
]


@pytest.mark.parametrize("declared", ["header", "meta"])
def test_windows_1251_page_is_read_in_its_declared_charset(
    declared: str, rulebook: Rulebook
) -> None:
    meta = '<meta charset="windows-1251">' if declared == "meta" else ""
    body = page("Сводка", RU, lang="ru", head=meta).encode("cp1251")
    content_type = "text/html; charset=windows-1251" if declared == "header" else "text/html"
    text = extract_main_text(body, "https://example.ru/a", content_type=content_type)
    assert RU[0] in text.split("\n\n")
    assert "kursk" in rules_fired(rulebook, text)


def test_page_that_is_not_its_declared_charset_is_refused() -> None:
    body = b"<html><body><p>" + bytes(range(128, 256)) * 20 + b"</p></body></html>"
    with pytest.raises(FullTextError, match="not valid utf-8 text, as it declares"):
        extract_main_text(body, "https://x.org/a", content_type="text/html; charset=utf-8")


def test_page_without_article_text_is_a_clear_error() -> None:
    document = (
        "<html><body><nav><ul><li><a href='/'>Home</a></li><li><a href='/k'>Kursk: troops "
        "advance</a></li></ul></nav><footer>© 2024</footer></body></html>"
    )
    with pytest.raises(FullTextError, match=r"^article https://x\.org/a: no article text found"):
        extract_main_text(document, "https://x.org/a")


def test_best_text_replaces_a_teaser_keeping_link_and_hash() -> None:
    teaser = item()
    better = best_text(teaser, "Weekly summary\n\n" + "\n\n".join(FILLER))
    assert better.text == "\n\n".join(FILLER)  # the repeated headline is dropped
    assert (better.link, better.content_hash, better.uid) == (teaser.link, "h", teaser.uid)
    assert best_text(teaser, "Too short.") is teaser


# -- fetching --------------------------------------------------------------------------------


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    # the test server is on loopback: allowed, as an operator allows an internal site
    async with Fetcher(timeout=1.0, max_bytes=300_000, allow_addresses=("127.0.0.0/8",)) as f:
        yield f


async def test_article_is_fetched_politely_and_revalidated(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    def handler(request: object) -> Response:
        if getattr(request, "headers", {}).get("if-none-match") == '"a1"':
            return Response(status=304, headers={"ETag": '"a1"'})
        return Response(
            headers={"Content-Type": "text/html", "ETag": '"a1"'},
            body=page("Weekly summary", FILLER).encode(),
        )

    feed_server.route("/a", handler=handler)
    article = await fetch_article(fetcher, feed_server.url("/a"))
    assert article is not None and article.etag == '"a1"'
    assert article.text.split("\n\n")[1:] == FILLER
    assert await fetch_article(fetcher, feed_server.url("/a"), etag='"a1"') is None
    first, second = feed_server.requests_for("/a")
    assert first.headers["user-agent"].startswith("alertbot/")
    assert first.headers["accept"].startswith("text/html")
    assert second.headers["if-none-match"] == '"a1"'


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"chunks": repeat(b"<p>" + b"x" * 65533, 5_000_000)}, "the page is larger than the"),
        ({"hang": True}, "no complete answer within 1 s"),
        ({"status": 404, "body": b"gone"}, "404 Not Found: there is no page at this address"),
        (
            {"headers": {"Content-Type": "application/pdf"}, "body": b"%PDF-1.7 ..."},
            "the link leads to a PDF document (application/pdf), not a web page",
        ),
        (
            {"headers": {"Content-Type": "application/json"}, "body": b'{"a": 1}'},
            "the link leads to JSON data (application/json), not a web page",
        ),
        (
            {"headers": {"Content-Type": "text/html"}, "body": b"\x00\x01\x02binary" * 50},
            "the page is binary data, not text",
        ),
    ],
    ids=["huge", "slow", "404", "pdf", "json", "binary"],
)
async def test_unusable_pages_give_a_clear_error(
    feed_server: FeedServer, fetcher: Fetcher, route: dict[str, object], message: str
) -> None:
    feed_server.route("/a", **route)
    with pytest.raises(FullTextError) as caught:
        await fetch_article(fetcher, feed_server.url("/a"))
    assert str(caught.value).startswith(f"article {feed_server.url('/a')}: ")
    assert message in str(caught.value)


async def test_throttled_article_carries_retry_after(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.route("/a", status=429, headers={"Retry-After": "120"})
    with pytest.raises(FullTextError, match="slow down") as caught:
        await fetch_article(fetcher, feed_server.url("/a"))
    assert caught.value.retry_after == 120.0


async def test_untyped_html_is_sniffed(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.route("/a", headers={"Content-Type": "application/octet-stream"},
                      body=page("Weekly summary", FILLER).encode())  # fmt: skip
    article = await fetch_article(fetcher, feed_server.url("/a"))
    assert article is not None and FILLER[0] in article.text


# -- the poller ------------------------------------------------------------------------------


def teasers(*entries: tuple[str, str, str]) -> bytes:
    """An RSS 2.0 document of (guid, link, description) entries."""
    return rss(*({"title": f"Report {guid}", "link": link, "guid": guid, "description": text}
                 for guid, link, text in entries))  # fmt: skip


@pytest.fixture
async def env(
    store: Store, clock: Clock, feed_server: FeedServer, rulebook: Rulebook
) -> AsyncIterator[Env]:
    async with polling(
        store, clock, feed_server, rulebook, full_text=True, advance=600.0,
        feed_defaults={"backfill": 10},
    ) as env:  # fmt: skip
        yield env


def snippets(alert: Alert) -> dict[str, list[str]]:
    return {m.rule_id: [s.text for s in m.snippets] for m in alert.matches}


async def test_teasers_are_matched_on_their_articles_fetched_once(env: Env) -> None:
    s = env.server
    s.route("/a/kursk", **html(page("Front update", [*FILLER[:2], KURSK])))
    s.route("/a/quiet", **html(page("Weekly summary", FILLER)))
    s.route("/a/long", **html(page("Port update", [PORT, *FILLER])))
    s.route("/f1", body=teasers(("k", s.url("/a/kursk"), TEASER), ("q", s.url("/a/quiet"), TEASER),
                            ("l", s.url("/a/long"), LONG)))  # fmt: skip
    s.route("/f2", body=teasers(("k2", s.url("/a/kursk?utm_source=rss"), "Front update…")))
    store = env.store
    store.add_subscriber(1)
    store.subscribe(1, ["kursk"])
    f1, f2 = env.feed("f1", "/f1"), env.feed("f2", "/f2")
    await env.cycle(f1, f2)
    # one alert for the story, from whichever feed recorded it first
    assert [sorted(snippets(a)) for a in env.alerts] == [["kursk"]]
    alert = env.alerts[0]
    assert snippets(alert)["kursk"] == [KURSK]  # the snippet is the article's sentence
    assert alert.item.link.startswith(s.url("/a/kursk"))  # the message links to the article

    # the quiet page's navigation says "Kursk: Ukrainian forces advance": no alert from that;
    # /a/long was not fetched (the entry is not a teaser), /a/kursk once for both feeds
    # (either feed may fetch it first: with or without the tracking parameter)
    def kursk() -> int:
        return len(s.requests_for("/a/kursk")) + len(s.requests_for("/a/kursk?utm_source=rss"))

    assert [kursk(), len(s.requests_for("/a/quiet")), len(s.requests_for("/a/long"))] == [1, 1, 0]
    [row] = store.outbox_rows()
    assert row.alert.item.link == alert.item.link and row.alert.matches[0].snippets
    article = store.article(normalize_link(s.url("/a/kursk")))
    assert article is not None and article.text is not None and KURSK in article.text
    await env.cycle(f1, f2)  # nothing new, nothing fetched again
    assert len(env.alerts) == 1 and kursk() == 1
    assert store.prune(0) >= 3 and store.article(article.key) is None


async def test_failed_article_matches_the_teaser_then_retries_once(env: Env) -> None:
    s = env.server
    s.route("/a/1", status=500, body=b"down")
    teaser = "Russian forces have regained positions in the Kursk region, sources claim…"
    s.route("/f", body=teasers(("1", s.url("/a/1"), teaser)))
    feed = env.feed("f", "/f")
    env.store.add_subscriber(1)
    env.store.subscribe(1, ["kursk", "port-strikes"])
    stats = await env.cycle(feed)
    # nothing lost: the teaser alone fires kursk now
    assert [sorted(snippets(a)) for a in env.alerts] == [["kursk"]]
    health = env.store.feed_state("f")
    assert health is not None and health.error_count == 0 and stats.failed == 0
    failure = f"full text: article {s.url('/a/1')}: answered 500"
    assert (health.fulltext_error or "").startswith(failure) and health.fulltext_failures == 1
    assert health.last_error is None  # the feed itself is fine
    assert health.next_fetch == env.clock.now + feed.interval  # no backoff
    # the article comes back; the unchanged entry is matched again on it, once
    s.route("/a/1", **html(page("Front update", [*FILLER[:2], KURSK, PORT])))
    await env.cycle(feed)
    assert [sorted(snippets(a)) for a in env.alerts] == [["kursk"], ["port-strikes"]]
    assert snippets(env.alerts[1])["port-strikes"] == [PORT]
    assert len(env.store.outbox_rows()) == 1  # one message per chat per story
    await env.cycle(feed)
    assert len(env.alerts) == 2 and len(s.requests_for("/a/1")) == 2


async def test_article_failing_twice_is_given_up(env: Env) -> None:
    s = env.server
    s.route("/a/1", status=404, body=b"")
    s.route("/f", body=teasers(("1", s.url("/a/1"), TEASER)))
    feed = env.feed("f", "/f")
    for _ in range(3):
        await env.cycle(feed)
    assert len(s.requests_for("/a/1")) == 2  # the first try and one retry
    state = env.store.feed_state("f")
    assert state is not None and state.error_count == 0 and state.items == 1


async def test_throttling_host_is_left_alone_until_retry_after(env: Env) -> None:
    s = env.server
    s.route("/a/1", status=429, headers={"Retry-After": "3600"})
    s.route("/a/2", **html(page("Front update", [*FILLER[:2], KURSK])))
    s.route("/f", body=teasers(("1", s.url("/a/1"), TEASER)))
    feed = env.feed("f", "/f")
    await env.cycle(feed)
    s.route("/f", body=teasers(("1", s.url("/a/1"), TEASER), ("2", s.url("/a/2"), TEASER)))
    await env.cycle(feed)  # the same host: /a/2 waits too, the entry is matched on its teaser
    assert s.requests_for("/a/2") == [] and env.alerts == []
    await env.cycle(feed, advance=3600)
    assert [a.item.uid for a in env.alerts] == ["2"]


async def test_full_text_never_leaves_the_teaser(env: Env) -> None:
    s = env.server
    s.route("/a/1", **html(page("Front update", [*FILLER[:2], KURSK])))
    s.route("/f", body=teasers(("1", s.url("/a/1"), TEASER)))
    await env.cycle(env.feed("f", "/f", full_text="never"))
    assert env.alerts == [] and s.requests_for("/a/1") == []


# -- alertbot match --url --------------------------------------------------------------------


def match_url(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "match", "--rules", str(RULES), *extra, "--url", url],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip


def test_match_url_extracts_the_article_like_the_poller(feed_server: FeedServer) -> None:
    feed_server.route("/a", **html(page("Front update", [*FILLER[:2], KURSK])))
    feed_server.route("/nav", **html(page("Weekly summary", FILLER)))
    found = match_url(feed_server.url("/a"), "--json")
    assert found.returncode == 0, found.stderr
    [hit] = json.loads(found.stdout)["matches"]
    assert hit["rule"] == "kursk" and "**Kursk**" in hit["snippets"][0]
    quiet = match_url(feed_server.url("/nav"))
    assert (quiet.returncode, quiet.stdout.strip()) == (0, "no rule matched")


def test_match_url_unreachable_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = match_url(f"http://127.0.0.1:{port}/a")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"alertbot: article http://127.0.0.1:{port}/a: ")
    assert "refused the connection" in result.stderr


def test_match_url_and_file_together_is_refused() -> None:
    result = match_url("http://127.0.0.1:1/a", "some.txt")
    assert result.returncode == 2 and "either FILE or --url" in result.stderr
