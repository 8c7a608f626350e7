"""Message rendering: escaping, highlights, trimming and splitting at Telegram's 4096 limit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fakebotapi import check_html

from bot.models import Alert, Item, Match, Snippet
from bot.telegram.messages import (
    LIMIT,
    render_alert,
    render_digest,
    render_matches,
    render_plain,
    split_lines,
)

WHEN = datetime(2024, 10, 14, 18, 30, tzinfo=UTC)


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


def test_alert_layout_has_level_topic_feed_linked_title_snippet_and_time():
    [text] = render_alert(Alert(item(), (match("taiwan", snippet()),)), feed_title="ISW daily")
    lines = text.split("\n")
    assert lines[0] == "🟠 <b>Taiwan drills</b>"
    assert lines[1] == '<a href="https://example.org/a"><b>PLA drills</b></a>'
    assert lines[2] == "<i>ISW daily</i> · 14 Oct 2024, 18:30 UTC"
    assert "» China's <b>PLA</b> began drills near Taiwan." in lines
    assert_valid([text])


def test_feed_text_is_escaped_everywhere():
    hostile = "A <script>alert(\"x\")</script> & <b>bold</b> 'q'"
    it = item(title=hostile, link='https://e.org/?a=1&b="2"', feed="<Feed & Co>")
    snip = Snippet("x < y & PLA > z </b>", ((8, 11),))
    [text] = render_alert(Alert(it, (match("t", snip, title="<T&T>"),)))
    assert "<script>" not in text and "<Feed" not in text
    assert "&lt;script&gt;" in text and "&amp; &lt;b&gt;bold&lt;/b&gt;" in text
    assert 'href="https://e.org/?a=1&amp;b=&quot;2&quot;"' in text
    assert "x &lt; y &amp; <b>PLA</b> &gt; z &lt;/b&gt;" in text
    assert "<b>&lt;T&amp;T&gt;</b>" in text
    assert_valid([text])


def test_several_topics_are_named_in_one_message_most_severe_first():
    alert = Alert(
        item(),
        (
            match("a", snippet(), level="low"),
            match("b", snippet(), title="Kursk", level="critical"),
        ),
    )
    [text] = render_alert(alert)
    assert text.startswith("🔴 <b>Kursk</b>\n🔵 <b>Taiwan drills</b>")
    assert "<u>Kursk</u>" in text and "<u>Taiwan drills</u>" in text


def test_a_20kb_snippet_is_trimmed_into_one_message():
    huge = snippet("PLA " + "words & more <tags> " * 1000)
    alert = Alert(item(), (match("t", huge, huge, huge),))
    messages = render_alert(alert)
    assert len(messages) == 1
    assert messages[0].count("…") == 3 and messages[0].count("<b>PLA</b>") == 3
    assert_valid(messages)


def test_many_topics_with_long_snippets_split_at_line_boundaries():
    huge = snippet("PLA " + "x" * 5000)
    matches = tuple(match(f"r{i}", huge, huge, huge, title=f"Topic {i}") for i in range(40))
    messages = render_alert(Alert(item(), matches))
    assert len(messages) > 1
    assert_valid(messages)
    assert all(not m.startswith("\n") for m in messages)


def test_plain_rendering_marks_terms_without_html():
    text = render_plain(Alert(item(title="A & <B>"), (match("t", snippet()),)))
    assert "China's **PLA** began" in text
    assert "A & <B>" in text and "https://example.org/a" in text and "<b>" not in text


def test_digest_groups_items_by_topic():
    first = Alert(item(title="One", uid="1"), (match("taiwan", snippet()),))
    second = Alert(
        item(title="Two", uid="2"),
        (match("taiwan"), match("kursk", title="Kursk", level="critical")),
    )
    [text] = render_digest([first, second], date(2024, 10, 14))
    assert text.startswith("📋 <b>Digest for 14 Oct 2024</b> · 2 reports")
    kursk, taiwan = text.index("<b>Kursk</b>"), text.index("<b>Taiwan drills</b>")
    assert kursk < text.index(">Two<") < taiwan < text.index(">One<")
    assert text.count(">Two<") == 2


def test_digest_of_300_items_splits_and_repeats_topic_header():
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
    assert messages[1].startswith("🟠 <b>Taiwan drills</b> (continued)")
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


def test_render_matches_for_test_command():
    [text] = render_matches([match("taiwan", snippet())])
    assert "1 topic would fire" in text and "<code>taiwan</code>" in text and "<b>PLA</b>" in text
    assert render_matches([]) == ["No topic would fire on that text."]


def test_hundreds_of_topics_without_snippets_still_split():
    matches = tuple(match(f"r{i}", title=f"Topic number {i} " + "x" * 50) for i in range(200))
    messages = render_alert(Alert(item(), matches))
    assert len(messages) > 1
    assert_valid(messages)
