"""Snippets: at most three per rule, best first, trimmed around the terms, terms highlighted."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.models import Item, Match, Snippet
from bot.rules.files import load_rules
from bot.rules.language import Term, parse_term
from bot.rules.matcher import Rulebook
from bot.rules.snippets import (
    ELLIPSIS,
    MAX_SNIPPETS,
    SNIPPET_CHARS,
    _ascii_case_fits,
    find_terms,
    term_spans,
    trim,
)


def rulebook(tmp_path: Path, yaml_text: str) -> Rulebook:
    (tmp_path / "r.yaml").write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    return load_rules(tmp_path)


def match_of(book: Rulebook, text: str, title: str = "") -> Match:
    item = Item(feed="isw", uid="u", story_key="s", title=title, link="", published=None, text=text)
    [match] = book.match(item)
    return match


def highlighted(snippet: Snippet) -> list[str]:
    return [snippet.text[a:b] for a, b in snippet.highlights]


def test_snippet_is_the_sentence_that_fired_with_terms_highlighted(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan, drill*]}")
    text = "Calm morning. The PLA began drills around Taiwan on Monday. Markets were calm."
    [snippet] = match_of(book, text).snippets
    assert snippet.text == "The PLA began drills around Taiwan on Monday."
    assert highlighted(snippet) == ["drills", "Taiwan"]
    assert snippet.marked() == "The PLA began **drills** around **Taiwan** on Monday."
    assert (
        snippet.marked("<b>", "</b>")
        == "The PLA began <b>drills</b> around <b>Taiwan</b> on Monday."
    )


def test_at_most_three_snippets_the_best_in_text_order(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {any: [Odesa, Izmail, Chornomorsk]}")
    text = (
        "Drones hit Odesa. "  # 1 term
        "Port cities Odesa, Izmail and Chornomorsk were struck. "  # 3 terms
        "Izmail lost power. "  # 1 term
        "Odesa and Izmail were both hit. "  # 2 terms
        "Chornomorsk reopened."  # 1 term
    )
    snippets = match_of(book, text).snippets
    assert len(snippets) == MAX_SNIPPETS == 3
    assert [s.text for s in snippets] == [
        "Drones hit Odesa.",  # of the one-term sentences, the earliest
        "Port cities Odesa, Izmail and Chornomorsk were struck.",
        "Odesa and Izmail were both hit.",
    ]


def test_one_snippet_per_sentence_even_with_word_windows(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [alpha, omega]}\nwithin: 3")
    [snippet] = match_of(book, "Then alpha omega alpha omega happened.").snippets
    assert highlighted(snippet) == ["alpha", "omega", "alpha", "omega"]


def test_long_sentence_is_trimmed_around_the_terms_with_ellipses(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan, drill*]}")
    before = "officials said that " * 25  # 500 characters
    after = " while markets watched nervously" * 15
    text = f"On Monday {before}the PLA began drills around Taiwan{after}."
    [snippet] = match_of(book, text).snippets
    assert snippet.text.startswith(ELLIPSIS)
    assert snippet.text.endswith(ELLIPSIS)
    assert len(snippet.text) <= SNIPPET_CHARS + 2 * len(ELLIPSIS)
    assert len(snippet.text) >= SNIPPET_CHARS * 0.8
    assert highlighted(snippet) == ["drills", "Taiwan"]
    assert "**drills** around **Taiwan**" in snippet.marked()
    # cut at word boundaries: every word in the snippet is a whole word of the sentence
    inner = snippet.text.strip(ELLIPSIS)
    assert inner in text
    assert text[text.index(inner) - 1] == " "


def test_trim_keeps_short_text_whole() -> None:
    snippet = trim("  Taiwan drills.  ", [(0, 6)])
    assert snippet == Snippet("Taiwan drills.", ((0, 6),))


def test_trim_at_the_start_has_no_leading_ellipsis() -> None:
    text = "Taiwan " + "reported calm seas today and " * 30
    snippet = trim(text, [(0, 6)])
    assert snippet.text.startswith("Taiwan ")
    assert snippet.text.endswith(ELLIPSIS)
    assert highlighted(snippet) == ["Taiwan"]


def test_trim_at_the_end_has_no_trailing_ellipsis() -> None:
    text = "calm seas were reported today and " * 30 + "near Taiwan"
    start = text.index("Taiwan")
    snippet = trim(text, [(start, start + 6)])
    assert snippet.text.startswith(ELLIPSIS)
    assert snippet.text.endswith("near Taiwan")
    assert highlighted(snippet) == ["Taiwan"]


def test_find_terms_covers_each_kind_of_term() -> None:
    text = "Live-fire drills by the PLA near Kýiv; the pla was no acronym. Курской области."
    terms = tuple(
        parse_term(t) for t in ("live-fire", "drill*", "=PLA", "Kyiv", "Курск*", "/обл\\pL+/")
    )
    spans = find_terms(text, terms)
    assert [text[a:b] for a, b in spans] == [
        "Live-fire",
        "drills",
        "PLA",
        "Kýiv",
        "Курской",
        "области",
    ]


def test_find_terms_merges_overlapping_spans() -> None:
    text = "The Taiwan Strait was calm."
    spans = find_terms(text, (parse_term("Taiwan"), parse_term("Taiwan Strait")))
    assert [text[a:b] for a, b in spans] == ["Taiwan Strait"]


def test_highlights_for_mixed_scripts_and_apostrophes(tmp_path: Path) -> None:
    book = rulebook(tmp_path, 'match: {all: ["Мар\'їнка", {any: [Курськ*, troops]}]}\nwithin: item')
    text = "Ukrainian troops left Марʼїнка; бої тривають на Курщині та в Курській області."
    match = match_of(book, text)
    assert highlighted(match.snippets[0]) == ["troops", "Марʼїнка", "Курській"]


def test_the_headline_is_never_a_snippet(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan, drill*]}")
    match = match_of(book, "Nothing here.", title="PLA drills around Taiwan")
    assert match.windows[0].field == "title"  # it fired on the headline ...
    assert match.snippets == ()  # ... which the alert shows anyway


def test_a_sentence_repeating_the_headline_is_not_a_snippet(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan, drill*]}")
    text = "PLA drills around  TAIWAN\n\nThe navy joined the drills near Taiwan on Tuesday."
    match = match_of(book, text, title="PLA drills around Taiwan")
    assert [s.text for s in match.snippets] == [
        "The navy joined the drills near Taiwan on Tuesday."
    ]


def test_the_same_sentence_is_never_quoted_twice(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Izmail, drone*]}")
    text = "Drones hit Izmail. Power is out.\n\nDrones hit Izmail. Power is out."
    assert [s.text for s in match_of(book, text).snippets] == ["Drones hit Izmail."]


def test_excluded_sentence_is_never_a_snippet(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Kursk], none: [submarine]}")
    text = "The submarine Kursk sank in 2000. Fighting in Kursk Oblast goes on."
    [snippet] = match_of(book, text).snippets
    assert snippet.text == "Fighting in Kursk Oblast goes on."


def test_marked_with_no_highlights_is_the_text() -> None:
    assert Snippet("plain").marked() == "plain"


# --- the ASCII span finder against the per-term regex it replaced --------------------------

_ASCII_WORDS = ["a", "aa", "port", "ports", "air", "airport", "live", "fire", "pla", "PLA", "Plan"]
_ASCII_GAPS = [" ", " ", "-", "_", ", ", ". ", "'", "9", ""]
_ASCII_TERMS = [
    "a", "a a", "aa a", "port", "port*", "air port", "air*", "live-fire", "fire fire", "=PLA",
    "=Pla", "=PLA*", "pla", "9", "a9", "air air*", "airp*",
]  # fmt: skip


def _regex_spans(text: str, term: Term) -> list[tuple[int, int]]:
    """The former implementation: one whole-word regex per term over the lowercased text."""
    body = r"[\W_]+".join(re.escape(word) for word in term.key.split())
    tail = r"[^\W_]*" if term.kind == "prefix" else r"(?![^\W_])"
    found = re.finditer(rf"(?<![^\W_]){body}{tail}", text.lower())
    return [
        m.span()
        for m in found
        if not term.case_sensitive or _ascii_case_fits(text[m.start() : m.end()], term)
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(_ASCII_WORDS), st.sampled_from(_ASCII_GAPS)), max_size=12),
    st.sampled_from(_ASCII_TERMS),
)
@example([("a", " "), ("a", " "), ("a", "")], "a a")  # overlapping occurrences: one is found
@example([("PLA", "-"), ("Plan", "")], "=PLA*")  # case is judged per occurrence
@example([("air", "_"), ("airport", ".")], "air air*")
def test_ascii_spans_agree_with_a_regex_per_term(parts: list[tuple[str, str]], raw: str) -> None:
    text = "".join(word + gap for word, gap in parts)
    term = parse_term(raw)
    assert term_spans(text, term, text.lower()) == _regex_spans(text, term)
