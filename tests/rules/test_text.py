"""Normalisation (bot.rules.text): folding, canonical word strings, tokens, sentence splitting."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.text import (
    _SENTENCE_END,
    canonical,
    is_text,
    sentence_spans,
    sentence_word_starts,
    sentences,
    tokens,
)


def sentence_texts(text: str) -> list[str]:
    return [text[s.start : s.end] for s in sentences(text)]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Kýiv", " kyiv "),
        ("KYIV", " kyiv "),
        ("kyiv", " kyiv "),
        ("Zaporižžia", " zaporizzia "),
        ("Straße", " strasse "),  # casefold, not lower
        ("Курской", " курскои "),  # й folds to и (the breve is a combining mark)
        ("КУРСКАЯ", " курская "),
        ("Ёлка", " елка "),
        ("Київ", " киів "),  # ї folds to і
    ],
)
def test_canonical_folds_case_and_accents_in_any_script(written: str, expected: str) -> None:
    assert canonical(written) == expected


def test_short_i_and_i_fold_alike() -> None:
    assert canonical("й") == canonical("и") == " и "
    assert canonical("Курской") == canonical("Курскои")


def test_ukrainian_apostrophe_and_ascii_apostrophe_canonicalise_alike() -> None:
    modifier = "обʼєкт"  # U+02BC, the Ukrainian apostrophe
    ascii_form = "об'єкт"
    typographic = "об’єкт"  # U+2019, what word processors type
    assert canonical(modifier) == canonical(ascii_form) == canonical(typographic) == " об єкт "


@pytest.mark.parametrize(
    "text",
    [
        "live fire drills",
        "live\u00a0fire\u00a0drills",  # non-breaking spaces
        "live\tfire\t\tdrills",
        "live\nfire\r\ndrills",
        "  live   fire drills  ",
        "live-fire drills",
        "live—fire, drills.",
        "live\u2009fire\u202fdrills",  # thin and narrow no-break spaces
    ],
)
def test_odd_whitespace_and_punctuation_collapse_to_single_spaces(text: str) -> None:
    assert canonical(text) == " live fire drills "


def test_nfkc_full_width_letters_and_ligatures() -> None:
    assert canonical("ＰＬＡ ｄｒｉｌｌｓ") == " pla drills "
    assert canonical("ﬁre") == " fire "


def test_keep_case_keeps_case_but_still_splits_words() -> None:
    assert canonical("China's PLA-Navy", keep_case=True) == " China s PLA Navy "
    assert canonical("ＰＬＡ", keep_case=True) == " PLA "


def test_canonical_of_nothing_is_one_space() -> None:
    assert canonical("") == " "
    assert canonical(" ,.;- \n") == " "


def test_tokens_give_spans_and_folded_forms() -> None:
    text = "Kýiv—КУРСК, 2024"
    toks = tokens(text)
    assert [t.folded for t in toks] == ["kyiv", "курск", "2024"]
    assert [text[t.start : t.end] for t in toks] == ["Kýiv", "КУРСК", "2024"]
    assert [t.original for t in toks] == ["Kýiv", "КУРСК", "2024"]


def test_sentences_do_not_split_at_abbreviations() -> None:
    text = "Gen. Syrskyi met U.S. officials on Oct. 14 in Kyiv. They discussed Kursk."
    assert sentence_texts(text) == [
        "Gen. Syrskyi met U.S. officials on Oct. 14 in Kyiv.",
        "They discussed Kursk.",
    ]


def test_sentences_do_not_split_at_decimals_or_initials() -> None:
    text = "Output fell 3.5 percent, said J. Smith of the bank. Prices rose."
    assert sentence_texts(text) == [
        "Output fell 3.5 percent, said J. Smith of the bank.",
        "Prices rose.",
    ]


def test_sentences_end_at_question_and_exclamation_marks() -> None:
    text = "Was it a drill? It was! Nobody knew… Then it ended."
    assert sentence_texts(text) == ["Was it a drill?", "It was!", "Nobody knew…", "Then it ended."]


def test_sentences_end_at_cjk_full_stops() -> None:
    text = "解放军在台湾周边举行演习。台湾国防部表示密切监视！ 这是第三句？结束"
    assert sentence_texts(text) == [
        "解放军在台湾周边举行演习。",
        "台湾国防部表示密切监视！",
        "这是第三句？",
        "结束",
    ]


def test_paragraphs_are_separated_by_blank_lines() -> None:
    text = "First one. Second one.\n\nThird one.\n   \nFourth one"
    found = sentences(text)
    assert [text[s.start : s.end] for s in found] == [
        "First one.",
        "Second one.",
        "Third one.",
        "Fourth one",
    ]
    assert [s.paragraph for s in found] == [0, 0, 1, 2]


def test_a_sentence_never_crosses_a_paragraph_break() -> None:
    text = "The convoy left Odesa\n\nand the port was struck"
    found = sentences(text)
    assert len(found) == 2
    assert found[0].paragraph != found[1].paragraph


def test_a_line_break_inside_a_sentence_does_not_end_it() -> None:
    text = (
        "Russian forces struck the port infrastructure of Izmail with a large number of\n"
        "drones overnight, officials said."
    )
    assert sentence_texts(text) == [text]


def test_sentences_of_empty_text() -> None:
    assert sentences("") == []
    assert sentences("\n\n  \n") == []


def test_is_text() -> None:
    assert is_text("Київ ʼ".encode())
    assert not is_text(b"\x00\x01binary")
    assert not is_text("Kyiv".encode("utf-16"))
    assert not is_text(b"caf\xe9")  # latin-1


# The sentence-end pattern is written for speed; it must find what the plain alternation does.
_PLAIN_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+|[。！？]+[」』”’）)]*\s*|\n+")


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=".!?…。！？\n \t\"'”’»)]」』）aZ9,", max_size=40),
    st.integers(0, 40),
    st.integers(0, 40),
)
def test_sentence_end_pattern_matches_the_plain_alternation(text: str, pos: int, end: int) -> None:
    fast = [m.span() for m in _SENTENCE_END.finditer(text, pos, end)]
    assert fast == [m.span() for m in _PLAIN_SENTENCE_END.finditer(text, pos, end)]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab1_ .,!?-'\"\n", max_size=80))
def test_sentence_word_starts_count_canonical_words(text: str) -> None:
    spans = sentence_spans(text)
    starts = sentence_word_starts(text, spans)
    counts = [len(canonical(text[a:b]).split()) for a, b, _ in spans]
    assert starts == [sum(counts[:n]) for n in range(len(spans) + 1)]
    assert starts[-1] == len(canonical(text).split())  # sentences meet between words


def _canonical_by_translate(text: str) -> str:
    """canonical() as the one translate pass it replaces for non-ASCII text."""
    from bot.rules.text import _canonical_table

    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    words = text.translate(_canonical_table()).split()
    return " " + " ".join(words) + " " if words else " "


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            [*"aZ9 _-.,'\"\n\x07йёЇїʼ’«»—–…№½ﬁ", "\u0301", "\u0306", "\u0345", "\u0903"]
        )
        | st.characters(max_codepoint=0x2FFFF),
        max_size=60,
    )
)
def test_canonical_of_non_ascii_text_equals_one_translate_pass(text: str) -> None:
    if not text.isascii():
        assert canonical(text) == _canonical_by_translate(text)
