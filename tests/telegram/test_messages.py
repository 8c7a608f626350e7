"""Message rendering: the alert layout, snippets, bold, escaping, local times, the 4096 limit."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fakebotapi import check_html

from bot.models import Alert, Item, Match, Snippet
from bot.rules.emphasis import Emphasis
from bot.rules.files import load_rules
from bot.rules.text import sentence_spans
from bot.telegram.digest import render_digest
from bot.telegram.messages import (
    LIMIT,
    render_alert,
    render_matches,
    render_plain,
    split_lines,
    visible_text,
)

WHEN = datetime(2024, 10, 14, 18, 30, tzinfo=UTC)
RULES = Path(__file__).resolve().parents[2] / "rules"


def item(title: str = "PLA drills", link: str = "https://example.org/a", **kw) -> Item:
    values = dict(feed="ISW", uid="u1", story_key="k1", title=title, link=link)
    values |= dict(published=WHEN, text="body")
    return Item(**(values | kw))


def match(rule_id: str = "taiwan", *snippets: Snippet, title: str = "Taiwan drills", level="high"):
    return Match(rule_id, title, level, (), ("PLA",), tuple(snippets))


def snippet(text: str = "China's PLA began drills near Taiwan.") -> Snippet:
    start = text.find("PLA")
    return Snippet(text, ((start, start + 3),) if start >= 0 else ())


def assert_valid(messages: list[str]) -> None:
    assert messages
    for text in messages:
        assert len(text) <= LIMIT
        assert check_html(text) is None, text


def bold_share(text: str) -> float:
    bold = sum(len(html.unescape(b)) for b in re.findall(r"<b>(.*?)</b>", text))
    return bold / len(visible_text(text))


def test_headline_first_then_source_and_local_time_then_topics_then_snippets():
    alert = Alert(item(), (match("taiwan", snippet()),))
    [text] = render_alert(alert, feed_title="ISW daily", tz="Europe/Kyiv")
    lines = text.split("\n")
    assert lines[0] == '<a href="https://example.org/a">PLA drills</a>'
    assert lines[1] == "<i>ISW daily</i> · 14 Oct 2024, 21:30 EEST"
    assert lines[2] == "🟠 Taiwan drills"
    assert lines[3:] == ["", "» China's <b>PLA</b> began drills near Taiwan."]
    assert_valid([text])


def test_times_are_local_with_the_zone_abbreviation():
    alert = Alert(item(), (match("taiwan", snippet()),))
    assert "14 Oct 2024, 18:30 UTC" in render_alert(alert)[0]
    assert "14 Oct 2024, 14:30 EDT" in render_alert(alert, tz="America/New_York")[0]
    assert "15 Oct 2024, 02:30 CST" in render_alert(alert, tz="Asia/Shanghai")[0]
    assert "14 Oct 2024, 22:30 UTC+04" in render_alert(alert, tz="Asia/Dubai")[0]


def test_feed_text_is_escaped_everywhere():
    hostile = "A <script>alert(\"x\")</script> & <b>bold</b> 'q'"
    it = item(title=hostile, link='https://e.org/?a=1&b="2"', feed="<Feed & Co>")
    snip = Snippet("x < y & PLA > z </b>", ((8, 11),))
    [text] = render_alert(Alert(it, (match("t", snip, title="<T&T>"),)))
    assert "<script>" not in text and "<Feed" not in text
    assert "&lt;script&gt;" in text and "&amp; &lt;b&gt;bold&lt;/b&gt;" in text
    assert 'href="https://e.org/?a=1&amp;b=&quot;2&quot;"' in text
    assert "x &lt; y &amp; <b>PLA</b> &gt; z &lt;/b&gt;" in text
    assert "🟠 &lt;T&amp;T&gt;" in text
    assert_valid([text])


def test_topics_share_one_line_and_a_shared_sentence_appears_once():
    shared = snippet("China's PLA began drills near Taiwan.")
    alert = Alert(
        item(text="China's PLA began drills near Taiwan. Kursk saw fighting."),
        (
            match("a", shared, level="low"),
            match(
                "b",
                Snippet("Kursk saw fighting.", ((0, 5),)),
                shared,
                title="Kursk",
                level="critical",
            ),
        ),
    )
    [text] = render_alert(alert)
    lines = text.split("\n")
    assert lines[2] == "🔴 Kursk · 🔵 Taiwan drills"
    assert text.count("began drills near Taiwan") == 1
    # report order, whatever the topics' order
    assert text.index("began drills") < text.index("saw fighting")


def test_at_most_three_snippets_for_the_whole_message_and_never_the_headline():
    body = " ".join(f"Sentence {n} about PLA moves." for n in range(9))
    title = "Sentence 0 about PLA moves."
    matches = tuple(
        match(f"r{i}", *(snippet(f"Sentence {n} about PLA moves.") for n in range(i, i + 3)))
        for i in range(3)
    )
    [text] = render_alert(Alert(item(title=title, text=body), matches))
    quoted = [line for line in text.split("\n") if line.startswith("» ")]
    assert len(quoted) == 3
    assert not any("Sentence 0 " in line for line in quoted)
    numbers = [int(re.search(r"Sentence (\d)", line)[1]) for line in quoted]
    assert numbers == sorted(numbers)


def test_a_20kb_snippet_is_trimmed_into_one_message():
    huge = snippet("PLA " + "words & more <tags> " * 1000)
    alert = Alert(item(), (match("t", huge),))
    [text] = render_alert(alert)
    assert text.count("…") == 1 and text.count("<b>PLA</b>") == 1
    assert_valid([text])


def test_hundreds_of_topics_stay_one_message():
    huge = snippet("PLA " + "x" * 5000)
    matches = tuple(match(f"r{i}", huge, title=f"Topic number {i} " + "x" * 50) for i in range(200))
    [text] = render_alert(Alert(item(), matches))
    assert "more" in text.split("\n")[2]
    assert_valid([text])


def test_plain_rendering_marks_terms_without_html():
    text = render_plain(Alert(item(title="A & <B>"), (match("t", snippet()),)))
    assert text.split("\n")[:2] == ["A & <B>", "https://example.org/a"]
    assert "China's **PLA** began" in text and "<b>" not in text


def typical_alerts() -> list[tuple[str, Alert]]:
    """Every embedded example of the shipped rules as a report whose headline is its first
    sentence (feeds often repeat the headline as the lead)."""
    rulebook = load_rules(RULES)
    out = []
    for rule in rulebook.rules:
        for n, example in enumerate(rule.should_match):
            first = sentence_spans(example.text)[0]
            title = example.text[first[0] : first[1]]
            it = item(title=title, uid=f"{rule.id}-{n}", text=example.text)
            matches = tuple(rulebook.match(it))
            if matches:
                out.append((f"{rule.id}-{n}", Alert(it, matches)))
    return out


@pytest.fixture(scope="module")
def decisive():
    return Emphasis(load_rules(RULES).rules)


@pytest.mark.parametrize("name, alert", typical_alerts())
def test_typical_alerts_of_the_shipped_rules(name, alert, decisive):
    [text] = render_alert(alert, feed_title="ISW", tz="Europe/Kyiv", decisive=decisive)
    assert_valid([text])
    lines = text.split("\n")
    assert alert.item.title.strip()[:40] in visible_text(lines[0])  # headline first
    quoted = [visible_text(line)[2:] for line in lines if line.startswith("» ")]
    assert len(quoted) <= 3 and len(set(quoted)) == len(quoted)
    headline = " ".join(alert.item.title.split())
    assert headline not in quoted
    assert bold_share(text) < 0.25


def test_bold_spares_common_words_and_country_names(decisive):
    rulebook = load_rules(RULES)
    text = (
        "Russian forces launched a drone strike on the port of Novorossiysk, "
        "and Ukrainian troops advanced near Sudzha in Kursk Oblast."
    )
    it = item(title="Overnight", text=text)
    [out] = render_alert(Alert(it, tuple(rulebook.match(it))), decisive=decisive)
    bold = re.findall(r"<b>(.*?)</b>", out)
    assert "Novorossiysk" in bold and "Sudzha" in bold
    for common in ("Russian", "Ukrainian", "forces", "drone", "strike", "troops"):
        assert common not in bold


def test_digest_header_and_each_story_in_local_time_with_its_level():
    first = Alert(item(title="One", uid="1"), (match("taiwan", snippet()),))
    second = Alert(
        item(title="Two", uid="2", published=WHEN + timedelta(hours=1)),
        (match("taiwan"), match("kursk", title="Kursk", level="critical")),
    )
    [text] = render_digest([first, second], date(2024, 10, 14), "Europe/Kyiv", {"ISW": "ISW daily"})
    lines = text.split("\n")
    assert lines[0] == "📋 <b>Digest · Mon 14 Oct 2024</b> · 2 reports · times in EEST"
    assert lines[2].startswith('🔴 22:30 <a href="https://example.org/a">Two</a>')
    assert lines[2].endswith("— <i>ISW daily</i> · Kursk, Taiwan drills")
    assert lines[3].startswith("🟠 21:30 ")
    assert text.count(">Two<") == 1
    assert_valid([text])


def test_digest_of_300_items_splits_and_says_it_continues():
    alerts = [
        Alert(
            item(
                title=f"Report number {i} & <more>",
                uid=str(i),
                published=WHEN + timedelta(minutes=i),
            ),
            (match(),),
        )
        for i in range(300)
    ]
    messages = render_digest(alerts, date(2024, 10, 14))
    assert len(messages) > 1
    assert_valid(messages)
    assert messages[1].startswith("📋 (continued)")
    joined = "\n".join(messages)
    assert all(f">Report number {i} &amp; &lt;more&gt;<" in joined for i in range(300))


def test_empty_digest_says_so():
    [text] = render_digest([], date(2024, 10, 14))
    assert "Nothing matched" in text


def test_split_lines_never_exceeds_limit_and_cuts_overlong_lines():
    lines = ["<b>x</b> " * 1000, "short", "y" * 5000]
    out = split_lines(lines)
    assert_valid(out)
    assert any("short" in m for m in out)


def test_render_matches_for_test_command_is_the_alert_layout():
    [text] = render_matches([match("taiwan", snippet())], "China's PLA began drills near Taiwan.")
    assert text.startswith("1 topic would fire (<code>taiwan</code>)")
    assert "\nYour text (/test)\n<i>/test</i> · " in text and "<b>PLA</b>" in text
    assert render_matches([], "x") == ["No topic would fire on that text."]


def test_bold_stays_under_a_quarter_even_when_every_word_is_highlighted():
    text = "Kinmen  Matsu   Penghu Pratas Taipei Quemoy " * 4
    spans = tuple((m.start(), m.end()) for m in re.finditer(r"\w+", text))
    alert = Alert(item(title="x", text=text), (match("t", Snippet(text, spans)),))
    [out] = render_alert(alert)
    assert 0 < bold_share(out) < 0.25
    assert out.count("<b>Kinmen</b>") == 1  # each term once per message


def test_two_slices_of_one_long_sentence_are_quoted_once():
    sentence = "Drones struck " + "the harbour " * 40 + "of Novorossiysk and the Kerch ferry."
    head = Snippet("Drones struck the harbour the harbour…", ((0, 6),))
    tail = Snippet("…the harbour of Novorossiysk and the Kerch ferry.", ((17, 29),))
    alert = Alert(
        item(title="Overnight", text=sentence),
        (match("a", head, level="high"), match("b", tail, title="Kerch", level="low")),
    )
    [text] = render_alert(alert)
    assert len([line for line in text.split("\n") if line.startswith("» ")]) == 1
