"""bot.feeds.parse: golden feeds (fixtures/feeds/<name>.xml + .json), text, links, bad input."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.feeds.parse import ParsedFeed, html_to_text, parse_feed
from bot.identity import fingerprint_words, normalize_link, text_fingerprint

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
# a feed <name>.xml (or <name>.feed.json, a JSON Feed) beside <name>.json, the items it must yield
GOLDEN = sorted([*FEEDS.glob("*.xml"), *FEEDS.glob("*.feed.json")])


def expected_of(feed: Path) -> Path:
    return feed.with_name(feed.name.removesuffix(".xml").removesuffix(".feed.json") + ".json")


def as_golden(parsed: ParsedFeed) -> dict[str, Any]:
    items = []
    for item in parsed.items:
        row = {key: value for key, value in item.__dict__.items() if key != "feed"}
        row["published"] = item.published.isoformat() if item.published else None
        items.append(row)
    return {"title": parsed.title, "version": parsed.version, "bozo": parsed.bozo, "items": items}


@pytest.mark.parametrize("feed", GOLDEN, ids=[expected_of(p).stem for p in GOLDEN])
def test_golden_feed(feed: Path) -> None:
    name = expected_of(feed).stem
    expected = json.loads(expected_of(feed).read_text(encoding="utf-8"))
    parsed = parse_feed(feed.read_bytes(), expected["headers"], name, expected["url"])
    assert as_golden(parsed) == {k: expected[k] for k in ("title", "version", "bozo", "items")}
    assert all(item.feed == name for item in parsed.items)
    assert parsed.problem is None


def test_golden_set_covers_the_required_cases() -> None:
    names = {expected_of(p).stem for p in GOLDEN}
    assert {"rss20", "atom", "html-heavy", "windows-1251", "koi8-r", "missing-fields"} <= names
    assert {"empty", "rdf", "atom-xhtml", "jsonfeed-10", "jsonfeed-11"} <= names
    assert {
        "podcast-one-link",
        "daily-page-anchors",
        "constant-guid",
        "shared-guid-and-link",
    } <= names
    assert {"inserted-reused-guid", "nyt-media-description", "br-inside-sentences"} <= names
    assert {"koi8-r-undeclared", "cp1251-undeclared"} <= names
    assert all(expected_of(p).exists() for p in GOLDEN)


def golden_items(name: str) -> list[Any]:
    feed = next(p for p in GOLDEN if expected_of(p).stem == name)
    expected = json.loads(expected_of(feed).read_text(encoding="utf-8"))
    return parse_feed(feed.read_bytes(), expected["headers"], name, expected["url"]).items


def test_published_is_aware_utc() -> None:
    first = golden_items("rss20")[0]
    assert first.published == datetime(2024, 10, 13, 22, 30, tzinfo=UTC)
    assert first.published.utcoffset() is not None


def test_uid_without_guid_or_link_hashes_title_date_and_text() -> None:
    item = golden_items("missing-fields")[1]
    title, date = "No guid, no link, has date", "Wed, 16 Oct 2024 11:00:00 GMT"
    material = f"{title}\n{date}\nIdentified by a hash of title, date and text."
    assert item.uid == "sha256:" + hashlib.sha256(material.encode()).hexdigest()
    assert item.story_key == "text:" + text_fingerprint(item.title, item.text)


def test_content_hash_is_title_and_text() -> None:
    item = golden_items("rss20")[1]
    digest = hashlib.sha256(f"{item.title}\n{item.text}".encode()).hexdigest()
    assert item.content_hash == digest


RSS_TEMPLATE = """<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}
</channel></rss>"""


def rss(*items: tuple[str, str, str]) -> bytes:
    body = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><link>{link}</link>"
        f"<description>{text}</description></item>"
        for guid, link, text in items
    )
    return RSS_TEMPLATE.format(items=body).encode()


def test_same_guid_and_link_twice_is_one_item() -> None:
    first = "Russian forces regained positions in the Kursk region on Monday."
    edited = "Russian forces regained two positions in the Kursk region on Monday."
    body = rss(("g", "https://x.org/a", first), ("g", "https://x.org/a", edited))
    assert [i.text for i in parse_feed(body, {}, "f", "https://x.org/feed").items] == [first]


def test_same_guid_and_link_for_different_stories_stays_two() -> None:
    body = rss(("g", "https://x.org/a", "one story today"), ("g", "https://x.org/a", "another"))
    items = parse_feed(body, {}, "f", "https://x.org/feed").items
    assert [i.text for i in items] == ["one story today", "another"]
    assert len({i.uid for i in items}) == 2 and len({i.story_key for i in items}) == 2


def test_same_guid_without_links_but_different_text_stays_two() -> None:
    body = rss(("g", "", "one story"), ("g", "", "another story"))
    items = parse_feed(body, {}, "f", "https://x.org/feed").items
    assert [i.text for i in items] == ["one story", "another story"]
    assert items[0].uid.startswith("g#") and items[1].uid.startswith("g#")
    assert items[0].uid != items[1].uid


def test_relative_links_join_the_feed_url_but_guids_stay_as_written() -> None:
    body = rss(("item-7", "/news/7", "text"))
    item = parse_feed(body, {}, "f", "https://x.org/feeds/main.xml").items[0]
    assert (item.uid, item.link) == ("item-7", "https://x.org/news/7")


def test_javascript_link_is_dropped() -> None:
    item = parse_feed(rss(("g", "javascript:alert(1)", "t")), {}, "f", "https://x.org/").items[0]
    assert item.link == "" and item.story_key.startswith("text:")


# --- documents that are not (quite) feeds -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        (
            b"<!DOCTYPE html>\n<html><body><p>Welcome</p></body></html>",
            "text/html",
            "not a feed: the server sent an HTML page (a home, error or login page?); "
            "check the feed's address (content-type: text/html)",
        ),
        (
            b'{"items": []}',
            "application/json",
            "not a feed: the server sent JSON, not RSS, Atom or JSON Feed "
            "(content-type: application/json)",
        ),
        (
            b"\x00\x01garbage\xff",
            "application/octet-stream",
            "not a feed: the server sent something unreadable (not well-formed (invalid token)"
            ") (content-type: application/octet-stream)",
        ),
        (b"", "text/xml", "not a feed: the server sent an empty body (content-type: text/xml)"),
        (
            b"<!-- cache: hit -->\n<HTML><body>Consent required</body></HTML>",
            "application/rss+xml",
            "not a feed: the server sent an HTML page (a home, error or login page?); "
            "check the feed's address (content-type: application/rss+xml)",
        ),
        (
            b"<head><title>502 Bad Gateway</title></head>\n<center><h1>502</h1></center>",
            "application/octet-stream",
            "not a feed: the server sent an HTML page (a home, error or login page?); "
            "check the feed's address (content-type: application/octet-stream)",
        ),
        (
            b'{"version": "https://jsonfeed.org/version/2", "items": []}',
            "application/feed+json",
            "not a feed: the server sent JSON, not RSS, Atom or JSON Feed "
            "(content-type: application/feed+json)",
        ),
    ],
    ids=["html", "json", "garbage", "empty", "html-after-comment", "html-fragment", "jsonfeed-2"],
)
def test_not_a_feed_has_a_problem(body: bytes, content_type: str, problem: str) -> None:
    parsed = parse_feed(body, {"Content-Type": content_type}, "f", "https://x.org/feed")
    assert parsed.items == []
    assert parsed.problem == problem
    assert parsed.bozo == problem


def test_empty_feed_is_no_problem() -> None:
    parsed = parse_feed((FEEDS / "empty.xml").read_bytes(), {}, "f", "https://x.org/feed")
    assert (parsed.items, parsed.problem, parsed.title) == ([], None, "Nothing yet")


def test_malformed_feed_still_yields_its_entries() -> None:
    body = b'<rss version="2.0"><channel><item><title>A & B</title><link>https://x.org/a</link>'
    parsed = parse_feed(body, {}, "f", "https://x.org/feed")
    assert [i.title for i in parsed.items] == ["A & B"]
    assert parsed.bozo == "malformed feed: not well-formed (invalid token)"
    assert parsed.problem is None


@pytest.mark.parametrize("sep", ["", "\n"])
def test_billion_laughs_is_not_expanded(sep: str) -> None:
    entities = sep.join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(2, 10))
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [{sep}<!ENTITY lol1 "lol">{sep}{entities}{sep}]>\n'
        '<rss version="2.0"><channel><title>&lol9;</title>'
        "<item><title>&lol9;</title><description>&lol9;</description></item></channel></rss>"
    ).encode()
    parsed = parse_feed(body, {"content-type": "application/rss+xml"}, "f", "https://x.org/")
    assert parsed.bozo is not None
    assert all(len(i.title) + len(i.text) < 100 for i in parsed.items)


# --- html_to_text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("<div class='drills'>Words   across\n  lines</div>", "Words across lines"),
        ("A<br>B<br/>C", "A\n\nB\n\nC"),
        ("Forces struck<br>the port of Izmail.", "Forces struck the port of Izmail."),
        ("It ended.<br>then more", "It ended.\n\nthen more"),
        ("Kursk: assaults<br>Odesa: strikes", "Kursk: assaults\n\nOdesa: strikes"),
        (
            "Russian forces struck port infrastructure in the Danube region of<br>Izmail.",
            "Russian forces struck port infrastructure in the Danube region of Izmail.",
        ),
        ("one line<br><br>another", "one line\n\nanother"),
        ("Kur&shy;sk and grandma&amp;#39;s", "Kursk and grandma's"),
        ("<ul><li>x<ol><li>y</li></ol></li><li>z</li></ul>", "x\n\ny\n\nz"),
        ("<h2>Head</h2>body <b>bold</b><i>it</i>", "Head\n\nbody boldit"),
        ("<blockquote>quote</blockquote>after", "quote\n\nafter"),
        ("<script>var p = '<p>no</p>';</script><style>p{}</style>yes", "yes"),
        ("<iframe src=x>fallback</iframe><form><button>Go</button></form>ok", "ok"),
        ("<nav><a>Home</a></nav><p>story</p>", "story"),
        ("&amp; &lt;b&gt; &eacute; &#8212; &#x41; &nbsp;x", "& <b> é — A x"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
        ("plain text, no markup", "plain text, no markup"),
        ("AT&T < 3 <not closed", "AT&T < 3 <not closed"),  # a broken tag stays text
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_class_names_never_become_words() -> None:
    html = '<div class="exercise drills" data-x="blockade"><p id="taiwan">quiet day</p></div>'
    assert html_to_text(html) == "quiet day"


# --- normalize_link, text_fingerprint ----------------------------------------------------


@pytest.mark.parametrize(
    ("link", "key"),
    [
        ("HTTPS://WWW.Example.COM/News/1/", "https://example.com/News/1"),
        ("https://example.com/a?utm_source=x&utm_medium=y", "https://example.com/a"),
        (
            "https://example.com/a?b=2&a=1&fbclid=1&gclid=2&mc_cid=3&mc_eid=4",
            "https://example.com/a?a=1&b=2",
        ),
        ("https://example.com/a?ref=rss&ref_src=twsrc&id=5", "https://example.com/a?id=5"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a", "https://example.com:8080/a"),
        ("http://www.example.com/a/", "https://example.com/a"),
        ("https://bbc.co.uk/news/1?at_medium=RSS&at_campaign=rss", "https://bbc.co.uk/news/1"),
        ("https://heise.de/news/1?wt_mc=rss.red.ho.ho.atom.beitrag", "https://heise.de/news/1"),
        ("https://dw.com/en/a/a-1?maca=en-rss-en-all-1573-rdf", "https://dw.com/en/a/a-1"),
        (
            "https://theguardian.com/world/1?CMP=Share_iOSApp_Other",
            "https://theguardian.com/world/1",
        ),
        ("https://reuters.com/world/1?taid=65a&utm_source=tw", "https://reuters.com/world/1"),
        ("https://example.com/", "https://example.com"),
        ("https://example.com/a?q=two%20words", "https://example.com/a?q=two%20words"),
        ("not a url", "not a url"),
    ],
)
def test_normalize_link(link: str, key: str) -> None:
    assert normalize_link(link) == key


def test_fingerprint_ignores_case_punctuation_and_spacing() -> None:
    a = text_fingerprint("PLA drills", "China's PLA began\n\nlive-fire drills.")
    b = text_fingerprint("pla  DRILLS", "China s PLA began live fire drills")
    assert a == b
    assert a != text_fingerprint("PLA drills", "China's PLA ended live-fire drills.")


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_fingerprint_words_are_the_regex_words(text: str) -> None:
    """The ASCII shortcut must give exactly what stored fingerprints were computed with."""
    assert fingerprint_words(text) == " ".join(re.findall(r"\w+", text))


def test_undeclared_utf8_stays_utf8_and_a_declared_charset_is_trusted() -> None:
    body = "<rss version='2.0'><channel><title>Київ</title></channel></rss>".encode()
    assert parse_feed(body, {}, "f", "https://x.org/feed").title == "Київ"
    latin = "<rss version='2.0'><channel><title>Café</title></channel></rss>".encode("latin-1")
    headers = {"Content-Type": "application/rss+xml; charset=iso-8859-1"}
    assert parse_feed(latin, headers, "f", "https://x.org/feed").title == "Café"


def test_caption_and_podcast_blurb_are_used_only_without_a_body() -> None:
    body = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
      xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>T</title>
      <item><guid>a</guid><itunes:summary>Blurb.</itunes:summary>
        <description>The description.</description></item>
      <item><guid>b</guid><description>Its description.</description>
        <media:description>A caption.</media:description></item>
      <item><guid>c</guid><itunes:summary>Only a blurb.</itunes:summary></item>
    </channel></rss>"""
    items = parse_feed(body, {}, "f", "https://x.org/feed").items
    assert [i.text for i in items] == ["The description.", "Its description.", "Only a blurb."]


@pytest.mark.parametrize(
    ("title", "encoding"),
    [
        ("Новости", "koi8-r"),
        ("Как пережить новогоднюю ночь", "koi8-r"),
        ("Учения Северного флота", "cp1251"),
        ("Київ: повітряна тривога", "cp1251"),
        ("Ракетний удар по енергетиці", "koi8-u"),
    ],
)
def test_short_undeclared_cyrillic_feed_reads_correctly(title: str, encoding: str) -> None:
    body = f"<rss version='2.0'><channel><title>{title}</title></channel></rss>"
    parsed = parse_feed(body.encode(encoding), {}, "f", "https://x.org/feed")
    assert parsed.title == title


@pytest.mark.parametrize("kind", ["rss", "json"])
def test_a_feeds_own_title_loses_invisible_characters_in_every_format(kind: str) -> None:
    """The feed's title is shown (`alertbot feeds`): a bidi override or a zero-width space in
    it must not reach the operator, whether the feed is RSS or JSON Feed."""
    hidden = "\u202eKur\u200bsk\u00a0 daily\u202c"
    if kind == "rss":
        body = f"<rss version='2.0'><channel><title>{hidden}</title></channel></rss>".encode()
    else:
        body = json.dumps(
            {"version": "https://jsonfeed.org/version/1.1", "title": hidden, "items": []}
        ).encode()
    assert parse_feed(body, {}, "f", "https://x.org/feed").title == "Kursk daily"
