"""The rule language's newer constructs: N-sentence windows, item conditions, `~` inflection."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.models import Item, Match
from bot.rules import inflect
from bot.rules.files import load_rules, read_rule_set
from bot.rules.inflect import word_forms
from bot.rules.language import parse_terms
from bot.rules.matcher import Rulebook


def rulebook(folder: Path, yaml_text: str) -> Rulebook:
    (folder / "r.yaml").write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    return load_rules(folder)


def matches(book: Rulebook, text: str, title: str = "") -> list[Match]:
    return book.match(Item("isw", "u", "s", title, "", None, text))


def fires(book: Rulebook, text: str, title: str = "") -> bool:
    return any(m.rule_id == "r" for m in matches(book, text, title))


def only_match(book: Rulebook, text: str) -> Match:
    [match] = matches(book, text)
    return match


def only_problem(folder: Path, text: str) -> tuple[int, str]:
    (folder / "r.yaml").write_text(text, encoding="utf-8")
    _rules, found = read_rule_set(folder)
    assert len(found) == 1, found
    return found[0].line, found[0].message


# --- within: N sentences ---------------------------------------------------------------------


def test_two_sentence_window_joins_neighbours_only(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [navy, drill*]}\nwithin: 2 sentences\n")
    assert fires(book, "The navy sailed at dawn. Drills began an hour later.")
    assert fires(book, "The navy sailed at dawn.\n\nDrills began an hour later.")  # paragraphs too
    assert not fires(book, "The navy sailed at dawn. Nothing else. Drills began an hour later.")


def test_three_sentence_window_reaches_one_further(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [navy, drill*]}\nwithin: 3 sentences\n")
    assert fires(book, "The navy sailed at dawn. Nothing else. Drills began an hour later.")
    assert not fires(book, "The navy sailed. One. Two. Drills began.")


def test_a_veto_in_a_sentence_window_vetoes_only_the_windows_holding_it(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [navy, drill*], none: [museum]}\nwithin: 2 sentences\n")
    assert not fires(book, "The navy museum opened. Drills for visitors began.")
    # the veto sits in the first sentence; the second and third make a window of their own
    assert fires(book, "The museum opened. The navy sailed. Drills began.")


def test_a_sentence_window_keeps_title_and_text_apart(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [navy, drill*]}\nwithin: 2 sentences\n")
    assert not fires(book, "Drills began an hour later.", title="The navy sailed")


def test_snippets_quote_the_sentence_that_holds_the_rule_alone(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [navy, drill*]}\nwithin: 2 sentences\n")
    match = only_match(book, "Drills are common in spring. The navy drills near the coast.")
    assert [s.text for s in match.snippets] == ["The navy drills near the coast."]


def test_snippets_quote_the_body_window_when_only_the_headline_holds_the_rule_alone(
    tmp_path: Path,
) -> None:
    """The headline is never quoted: when it is the one sentence holding the rule alone, the
    body's two-sentence window that fired too is quoted instead of nothing."""
    book = rulebook(tmp_path, "match: {all: [navy, drill*]}\nwithin: 2 sentences\n")
    title = "Navy drills off the coast"
    [match] = matches(book, "The navy sailed at dawn. Drills began an hour later.", title)
    assert [w.field for w in match.windows] == ["title", "content"]
    assert [s.text for s in match.snippets] == [
        "The navy sailed at dawn.",
        "Drills began an hour later.",
    ]
    # a body sentence holding the rule alone is still preferred to the window
    [match] = matches(book, "The navy sailed. Drills began. Navy drills are yearly.", title)
    assert [s.text for s in match.snippets] == ["Navy drills are yearly."]


# --- item: conditions on the whole item ------------------------------------------------------


def test_item_condition_must_hold_somewhere_in_the_item(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """\
        match: {all: [drill*, warship*]}
        item: {all: [Taiwan]}
        """,
    )
    assert fires(book, "Taiwan watched closely.\n\nLater, warships began drills in the strait.")
    assert fires(book, "Warships began drills.", title="Tension rises around Taiwan")
    assert not fires(book, "Warships began drills in the strait.")


def test_item_veto_silences_the_whole_item(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """\
        match: {all: [Kursk, troops]}
        item: {none: ["Battle of Kursk", "1943"]}
        """,
    )
    text = "The Battle of Kursk was fought long ago. Soviet troops held the Kursk salient."
    assert not fires(book, text)
    assert fires(book, "Ukrainian troops advanced in Kursk on Monday.")


def test_item_veto_with_a_rescue_of_its_own(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """\
        match: {all: [Kursk, troops]}
        item:
          none:
            - all: ["1943"]
              none: [Ukrainian, drone*]
        """,
    )
    assert not fires(book, "In 1943 troops dug in around Kursk.")
    assert fires(book, "Officials recalled 1943 as Ukrainian troops advanced near Kursk.")


def test_item_terms_are_not_evidence_for_windows(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [drill*]}\nitem: {all: [Taiwan]}\n")
    match = only_match(book, "Taiwan said little. Drills went on.")
    assert match.terms == ("drill*",)
    assert [s.text for s in match.snippets] == ["Drills went on."]


# --- ~ inflection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("~учения", "Армия приступила к учениям у побережья."),
        ("~учения", "В ходе учений отработали высадку."),
        ("~навчання", "Флот завершив серію навчань."),
        ("~Курська ~операція", "Про хід Курської операції розповів командир."),
        ("~нефтяной ~терминал", "Дроны атаковали нефтяной терминал и танкер."),
        ("~нефтяной ~терминал", "Пожар на нефтяном терминале потушили."),
        ("~армія", "Російська армія просувається."),
        ("~просуватися", "Російська армія просувається."),
    ],
)
def test_inflected_term_matches_every_form(tmp_path: Path, term: str, text: str) -> None:
    book = rulebook(tmp_path, f'match: {{all: ["{term}"]}}\n')
    assert fires(book, text)


def test_inflected_phrase_words_agree(tmp_path: Path) -> None:
    keys = {t.key for t in parse_terms("~Курская ~область")}
    assert " курскои области " in keys  # й folds to и, as in the text
    assert " курская областями " not in keys  # words that do not agree are not a form


def test_inflection_does_not_match_other_words(tmp_path: Path) -> None:
    book = rulebook(tmp_path, 'match: {all: ["~порт"]}\n')
    assert fires(book, "Удар по порту Одессы.")
    assert not fires(book, "Художник написал портрет.")
    assert not fires(book, "Аэропорт закрыт.")


def test_inflection_knows_places_no_dictionary_has() -> None:
    assert {"фанасеевке", "фанасеевки"} <= set(word_forms("Фанасеевка"))


def test_inflected_terms_ignore_case_and_accents(tmp_path: Path) -> None:
    book = rulebook(tmp_path, 'match: {all: ["~учения"]}\n')
    assert fires(book, "НАЧАЛИСЬ УЧЕ́НИЯ")


def test_reading_a_rule_set_drops_the_dictionaries(tmp_path: Path) -> None:
    inflect._analyzer("ru")  # loaded, as by a `~` word no cache holds forms of yet
    (tmp_path / "r.yaml").write_text('match: {all: ["~учения"]}\n', encoding="utf-8")
    rules, found = read_rule_set(tmp_path)  # as `rules check` and `rules backtest` read them
    assert rules and not found
    assert inflect._analyzer.cache_info().currsize == 0  # about 40 MB not kept


# --- validation (FILE:LINE) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("~warship", "'~' goes before a Russian or Ukrainian word"),
        ("~", "'~' goes before a Russian or Ukrainian word"),
        ("=~КНР", "'=' (case) and '~' (inflection) do not go together"),
        ("~учени*", "'~' (every form) and '*' (any ending) do not go together"),
        ("~учения~", "'~' goes before a Russian or Ukrainian word"),
    ],
)
def test_bad_inflected_terms_are_reported_on_their_line(
    tmp_path: Path, term: str, message: str
) -> None:
    line, problem = only_problem(tmp_path, f'title: x\nmatch:\n  all:\n    - "{term}"\n')
    assert line == 4
    assert message in problem


def test_too_many_forms_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.rules.language.MAX_FORMS", 10)  # real phrases stay far below 400
    line, problem = only_problem(tmp_path, 'match:\n  all: ["~военный ~порт"]\n')
    assert line == 2
    assert "'~военный ~порт' has over 10 forms: put '~' on fewer words" in problem


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("match: {all: [a1]}\nitem: [Taiwan]\n", 2, "match must be a mapping"),
        ("match: {all: [a1]}\nitem: {}\n", 2, "item needs all:, any: and/or none:"),
        ("match: {all: [a1]}\nitem:\n  all: ['@nowhere']\n", 3, "undefined group '@nowhere'"),
        ("match: {all: [a1]}\nitem: {none: ['~x']}\n", 2, "'~' goes before a Russian"),
    ],
)
def test_bad_item_conditions_are_reported_on_their_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    found_line, problem = only_problem(tmp_path, text)
    assert found_line == line
    assert message in problem


def test_misspelt_item_keys_are_named(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("match: {all: [a1]}\nitem: {alll: [x]}\n", encoding="utf-8")
    _rules, found = read_rule_set(tmp_path)
    assert any(
        p.line == 2 and "unknown key 'alll' in match (did you mean 'all'?)" in p.message
        for p in found
    ), found
