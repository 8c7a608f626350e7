"""The Rulebook: operators, groups, windows, scoped exclusions, wildcards, phrases and regexes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.models import Item, Match
from bot.rules.files import load_rules
from bot.rules.matcher import Rulebook


def write_rule(folder: Path, yaml_text: str, name: str = "r.yaml") -> Path:
    """Write one rule file (dedented) into `folder` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    return path


def rulebook(tmp_path: Path, yaml_text: str, **extra: str) -> Rulebook:
    """Load a rule folder holding `yaml_text` as r.yaml plus `extra` files (name -> text)."""
    write_rule(tmp_path, yaml_text)
    for name, content in extra.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    return load_rules(tmp_path)


def item(text: str, title: str = "", feed: str = "isw") -> Item:
    return Item(
        feed=feed, uid="u1", story_key="s1", title=title, link="", published=None, text=text
    )


def fires(book: Rulebook, text: str, title: str = "", feed: str = "isw") -> bool:
    return any(m.rule_id == "r" for m in book.match(item(text, title, feed)))


def only_match(book: Rulebook, text: str, title: str = "") -> Match:
    matches = book.match(item(text, title))
    assert [m.rule_id for m in matches] == ["r"]
    return matches[0]


# --- normalisation, seen through matching ---------------------------------------------------


def test_accents_and_case_are_ignored_both_ways(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {any: [Kýiv, zaporizhzhia]}")
    assert fires(book, "Missiles hit KYIV overnight.")
    assert fires(book, "Missiles hit kyiv overnight.")
    assert fires(book, "Strikes on ZAPORÍZHZHIA continued.")
    assert not fires(book, "Missiles hit Kyivstar towers.")


def test_cyrillic_wildcard_matches_inflections(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Курск*]}")
    assert fires(book, "Бои в Курской области продолжаются.")
    assert fires(book, "Курская АЭС работает в штатном режиме.")
    assert fires(book, "Город Курск.")
    assert fires(book, "В КУРСКОМ направлении.")
    assert not fires(book, "Прокурск не существует.")  # whole words: no match mid-word


def test_short_i_matches_plain_i(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Курской]}")
    assert fires(book, "в курскои области")  # й typed without its breve
    assert fires(book, "В КУРСКОЙ ОБЛАСТИ")


def test_ukrainian_apostrophe_forms_are_interchangeable(tmp_path: Path) -> None:
    book = rulebook(tmp_path, 'match: {any: ["Мар\'їнка", "Обʼєднані сили"]}')
    assert fires(book, "Бої тривають біля Марʼїнки та Марʼїнка.")  # U+02BC in the text
    assert fires(book, "Бої біля Мар’їнка.")  # U+2019 in the text
    assert fires(book, "Об'єднані сили повідомили про атаку.")  # ASCII ' in the text


def test_phrase_matches_across_odd_whitespace(tmp_path: Path) -> None:
    book = rulebook(tmp_path, 'match: {all: ["Taiwan Strait"]}')
    for text in (
        "Ships crossed the Taiwan\u00a0Strait today.",
        "Ships crossed the Taiwan\tStrait today.",
        "Two Chinese warships and a research vessel crossed the Taiwan\nStrait today.",
        "Two Chinese warships and a research vessel crossed the Taiwan \r\n  Strait today.",
    ):
        assert fires(book, text), repr(text)
    assert not fires(book, "Ships crossed Taiwan and the Strait of Hormuz.")


def test_full_width_letters_match_after_nfkc(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [drills, =PLA]}")
    assert fires(book, "ＰＬＡ ｄｒｉｌｌｓ near the island.")


# --- operators and groups -------------------------------------------------------------------


def test_all_needs_every_item(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Odesa, port]}")
    assert fires(book, "Drones struck the port of Odesa.")
    assert not fires(book, "Drones struck Odesa.")
    assert not fires(book, "Drones struck the port.")


def test_any_needs_one_item(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {any: [Odesa, Izmail]}")
    assert fires(book, "Drones struck Izmail.")
    assert fires(book, "Drones struck Odesa.")
    assert not fires(book, "Drones struck Kherson.")


def test_none_vetoes(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [port], none: [airport, strike]}")
    assert fires(book, "The port reopened.")
    assert not fires(book, "The port reopened after the strike.")


def test_all_and_any_together(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [port], any: [drone, missile]}")
    assert fires(book, "A missile hit the port.")
    assert not fires(book, "A ship entered the port.")
    assert not fires(book, "A missile hit the city.")


def test_nested_mappings(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """
        match:
          any:
            - all: [port, {any: [drone, missile]}]
            - blockade
          none: [{all: [exercise, simulated]}]
        """,
    )
    assert fires(book, "A drone hit the port.")
    assert fires(book, "The navy announced a blockade.")
    assert not fires(book, "A ship entered the port.")
    assert not fires(book, "A simulated blockade was part of the exercise.")
    assert fires(book, "The exercise ended. The navy announced a blockade.")


def test_inline_terms_and_own_groups(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """
        terms:
          ports: [Odesa, Izmail, Chornomorsk]
          attack: [struck, drone*]
        match: {all: ["@ports", "@attack", overnight]}
        """,
    )
    assert fires(book, "Drones struck Chornomorsk overnight.")
    assert not fires(book, "Drones struck Chornomorsk.")
    match = only_match(book, "Drones struck Izmail overnight.")
    assert set(match.terms) == {"Izmail", "struck", "drone*", "overnight"}


def test_shared_groups_from_yaml_and_txt(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        'match: {all: ["@ukraine-ports", "@attack"]}',
        **{
            "terms/ports.txt": "",  # unused, but empty files are only a problem when used
            "terms/ukraine-ports.txt": """\
                # Ukrainian sea and river ports
                Odesa
                Izmail   # on the Danube
                Pivdennyi
                """,
            "terms/attacks.yaml": "attack: [struck, strike*, drone*]\n",
        },
    )
    assert fires(book, "Russia struck Izmail again.")
    assert fires(book, "Drone attack on Pivdennyi.")
    assert not fires(book, "Russia struck Kharkiv.")
    assert not fires(book, "on the Danube, Russia struck")  # comments are not terms


def test_own_group_shadows_shared_group(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """
        terms:
          ports: [Novorossiysk]
        match: {all: ["@ports"]}
        """,
        **{"terms/shared.yaml": "ports: [Odesa]\n"},
    )
    assert fires(book, "A drone hit Novorossiysk.")
    assert not fires(book, "A drone hit Odesa.")


def test_group_given_as_txt_file_next_to_the_rule(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """
        terms:
          villages: kursk-villages.txt
        match: {all: ["@villages"]}
        """,
        **{"kursk-villages.txt": "Sudzha\nKorenevo\nСудж*\n"},
    )
    assert fires(book, "Fighting near Korenevo.")
    assert fires(book, "Бои у Суджи.")
    assert not fires(book, "Fighting near Pokrovsk.")


def test_group_txt_file_in_a_subfolder_relative_to_the_rule(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """
        terms:
          places: lists/places.txt
        match: {all: ["@places"]}
        """,
        **{"lists/places.txt": "Glushkovo\n"},
    )
    assert fires(book, "Shelling of Glushkovo.")


# --- windows --------------------------------------------------------------------------------


def test_sentence_window_is_the_default(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan, drills]}")
    assert fires(book, "The PLA began drills near Taiwan.")
    assert not fires(book, "The PLA began drills. Taiwan watched.")


def test_paragraph_window(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan, drills]}\nwithin: paragraph")
    assert fires(book, "The PLA began drills. Taiwan watched.")
    assert not fires(book, "The PLA began drills.\n\nTaiwan watched.")


def test_item_window_spans_paragraphs_and_the_title(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan, drills]}\nwithin: item")
    assert fires(book, "The PLA began drills.\n\nTaiwan watched.")
    assert fires(book, "The PLA began drills.", title="Taiwan on alert")


def test_word_window_counts_words(tmp_path: Path) -> None:
    text = "Overnight the alpha one two omega moved on."  # omega is 3 words after alpha
    five = rulebook(tmp_path / "five", "match: {all: [alpha, omega]}\nwithin: 5")
    two = rulebook(tmp_path / "two", "match: {all: [alpha, omega]}\nwithin: 2")
    assert fires(five, text)
    assert not fires(two, text)
    assert fires(two, "Overnight the alpha omega moved on.")
    assert fires(two, "Overnight the omega alpha moved on.")  # order does not matter


def test_word_window_past_the_start_of_a_long_text(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [alpha, omega]}\nwithin: 5")
    filler = "Nothing to see here at all. " * 200
    assert fires(book, filler + "Then alpha and omega met. " + filler)
    assert not fires(book, filler + "Then alpha met. " + filler + "Then omega met.")


def test_scoped_exclusion_vetoes_only_its_own_sentence(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """
        terms:
          war: [fighting, troops, forces]
        match: {all: [Kursk, "@war"], none: [submarine]}
        """,
    )
    both = (
        "Twenty-four years ago rescue forces failed to save the submarine Kursk. "
        "Heavy fighting continues in Kursk Oblast."
    )
    match = only_match(book, both)
    assert [s.text for s in match.snippets] == ["Heavy fighting continues in Kursk Oblast."]
    assert not fires(book, "Rescue forces failed to save the submarine Kursk.")


def test_scoped_exclusion_with_paragraph_window(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path, "match: {all: [Kursk, fighting], none: [submarine]}\nwithin: paragraph"
    )
    assert not fires(book, "The submarine Kursk sank. Fighting nearby.")
    assert fires(book, "The submarine Kursk sank.\n\nKursk saw fighting.")


def test_title_is_a_window_of_its_own(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan, drills]}")
    assert not fires(book, "The PLA began drills on Monday.", title="Taiwan")
    assert fires(book, "Nothing here.", title="PLA drills around Taiwan")
    # a title does not run on into the first sentence of the text
    assert not fires(book, "drills began on Monday.", title="Tensions rise over Taiwan")


def test_fields_title_ignores_content(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan]}\nfields: [title]")
    assert not fires(book, "Taiwan drills.", title="Daily update")
    assert fires(book, "Nothing.", title="Taiwan drills")


def test_fields_content_ignores_title(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan]}\nfields: [content]")
    assert fires(book, "Taiwan drills.", title="Daily update")
    assert not fires(book, "Nothing.", title="Taiwan drills")


def test_feeds_restrict_by_item_feed(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Taiwan]}\nfeeds: [isw, reuters]")
    assert fires(book, "Taiwan drills.", feed="isw")
    assert fires(book, "Taiwan drills.", feed="reuters")
    assert not fires(book, "Taiwan drills.", feed="tass")


# --- terms: wildcards, phrases, whole words, case, regexes -----------------------------------


def test_wildcard_matches_endings_but_not_mid_word(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [drill*]}")
    for text in ("drill", "drills", "Drilling", "DRILLED"):
        assert fires(book, f"The {text} began."), text
    assert not fires(book, "The redrilled well.")
    assert not fires(book, "The dril began.")


def test_wildcard_at_the_end_of_a_phrase(tmp_path: Path) -> None:
    book = rulebook(tmp_path, 'match: {all: ["Joint Sword*"]}')
    assert fires(book, "Exercise Joint Sword-2024A began.")
    assert fires(book, "Joint Swordfish is a codename.")
    assert not fires(book, "A joint of sword.")


def test_phrase_matches_across_hyphens_punctuation_and_line_breaks(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [live-fire]}")
    for text in ("live fire", "live-fire", "Live–Fire", "live, fire", "live/fire", "live\r\nfire"):
        assert fires(
            book, f"Units of the Eastern Theater Command and the PLA Navy held {text} drills."
        )
    assert not fires(book, "The PLA held live drills with fire trucks.")


def test_phrase_matches_across_a_line_break_after_a_short_line(tmp_path: Path) -> None:
    # Hard-wrapped text: the line before the break is short and the next one goes on in
    # lower case, so this is one sentence, not a heading followed by a sentence.
    book = rulebook(tmp_path, "match: {all: [live-fire]}")
    assert fires(book, "The PLA held live\nfire drills.")


def test_phrase_does_not_match_across_sentences(tmp_path: Path) -> None:
    book = rulebook(tmp_path, 'match: {all: ["Kursk Oblast"]}\nwithin: item')
    assert not fires(book, "They left Kursk. Oblast officials said nothing.")


@pytest.mark.parametrize("text", ["support", "airport", "report", "Ports", "passport", "porter"])
def test_whole_words_only(tmp_path: Path, text: str) -> None:
    book = rulebook(tmp_path, "match: {all: [port]}")
    assert not fires(book, f"The {text} was busy.")


@pytest.mark.parametrize("text", ["port", "Port", "PORT", "port's", "(port)", "port-side"])
def test_whole_word_hits(tmp_path: Path, text: str) -> None:
    book = rulebook(tmp_path, "match: {all: [port]}")
    assert fires(book, f"The {text} was busy.")


def test_case_sensitive_acronym(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [=PLA]}")
    assert fires(book, "The PLA moved.")
    assert fires(book, "The PLA's navy moved.")
    assert not fires(book, "Get the pla from the shelf.")
    assert not fires(book, "Pla is not an acronym.")
    assert not fires(book, "The PLAN moved.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The council approved the plan.", False),  # the folded word alone
        ("The PLAN sailed; the plan held.", True),
        ("The ＰＬＡＮ sailed.", True),  # written in full-width letters: NFKC makes it PLAN
        ("The PLAN’s frigates sailed.", True),  # not ASCII, apostrophe aside
        ("Le PLÄN sailed.", True),  # accents never count
        ("The PLANs sailed.", False),
    ],
)
def test_case_sensitive_word_is_judged_in_ascii_and_other_text(
    tmp_path: Path, text: str, expected: bool
) -> None:
    book = rulebook(tmp_path, "match: {all: [=PLAN, sailed]}")
    assert fires(book, text) is expected


def test_case_sensitive_prefix(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [=PLA*, sailed]}")
    assert fires(book, "The PLAN sailed.")
    assert not fires(book, "The plan sailed.")


def test_case_sensitive_and_insensitive_forms_of_one_word_in_two_rules(tmp_path: Path) -> None:
    write_rule(tmp_path, "match: {all: [=PLA]}", "cased.yaml")
    write_rule(tmp_path, "match: {all: [pla]}", "folded.yaml")
    book = load_rules(tmp_path)
    assert [m.rule_id for m in book.match(item("The pla moved."))] == ["folded"]
    assert [m.rule_id for m in book.match(item("The PLA moved."))] == ["cased", "folded"]


def test_regex_term(tmp_path: Path) -> None:
    book = rulebook(tmp_path, r'match: {all: ["/Joint Sword-20\\d\\d[AB]?/"]}')
    assert fires(book, "Exercise Joint Sword-2024A began.")
    assert fires(book, "exercise joint sword-2023 began.")  # case-insensitive
    assert not fires(book, "Exercise Joint Sword began.")


def test_regex_sees_nfkc_text(tmp_path: Path) -> None:
    book = rulebook(tmp_path, r'match: {all: ["/\\bPLA\\b/"]}')
    assert fires(book, "The ＰＬＡ moved.")


def test_regex_with_unicode_classes(tmp_path: Path) -> None:
    book = rulebook(tmp_path, r'match: {all: ["/курс(?:к|ьк)\\pL*\\s+(?:битв|дуг)/"]}')
    assert fires(book, "Курская битва стала переломной.")
    assert not fires(book, "Курская область.")


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("/(a+)+$/", "a" * 100_000 + "!"),
        ("/(a+)+$/", "a" * 100_000),
        ("/(x+x+)+y/", "x" * 100_000),
        ("/(.*a){20}/", "a" * 5_000),
    ],
)
def test_catastrophic_regex_returns(tmp_path: Path, pattern: str, text: str) -> None:
    # No timing assertion: with a backtracking engine these would not return in our lifetime.
    book = rulebook(tmp_path, f'match: {{all: ["{pattern}"]}}')
    result = book.match(item(text))
    assert isinstance(result, list)


def test_catastrophic_regex_that_matches_still_fires(tmp_path: Path) -> None:
    book = rulebook(tmp_path, 'match: {all: ["/(a+)+$/"]}')
    assert fires(book, "a" * 50_000)


def test_regex_in_word_window_past_the_first_words(tmp_path: Path) -> None:
    book = rulebook(tmp_path, r'match: {all: ["/drill\\w*/", Taiwan]}' + "\nwithin: 5")
    lead = "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor. "
    assert fires(book, lead + "Near Taiwan the PLA was drilling again.")
    assert not fires(book, lead + "Near Taiwan the PLA one two three four five was drilling.")
    match = only_match(book, lead + "Near Taiwan the PLA was drilling again.")
    assert set(match.terms) == {"/drill\\w*/", "Taiwan"}


def test_regex_hit_stays_in_its_sentence_after_text_that_nfkc_lengthens(tmp_path: Path) -> None:
    # NFKC turns "…" into "..." (two characters longer): regex positions taken on the NFKC
    # text must still be credited to the sentence they occur in.
    book = rulebook(tmp_path, r'match: {all: ["/drill\\w*/", Taiwan]}')
    lead = "Wait… wait… wait… wait… wait… wait. "
    assert fires(book, "Taiwan saw drilling. Nothing else here at all.")
    assert fires(book, lead + "Taiwan saw drilling. Nothing else here at all.")


# --- the Match itself -----------------------------------------------------------------------


def test_match_carries_rule_fields_windows_and_terms(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """
        id: straits
        title: Taiwan Strait transits
        level: critical
        match: {all: ["Taiwan Strait", {any: [transit*, sail*]}]}
        """,
    )
    text = "Calm day. A US destroyer transited the Taiwan Strait. Calm night."
    [match] = book.match(item(text))
    assert (match.rule_id, match.title, match.level) == (
        "straits",
        "Taiwan Strait transits",
        "critical",
    )
    assert [(w.field, text[w.start : w.end]) for w in match.windows] == [
        ("content", "A US destroyer transited the Taiwan Strait.")
    ]
    assert set(match.terms) == {"Taiwan Strait", "transit*"}
    assert book.get("straits") is not None and book.get("nope") is None


def test_rules_fire_in_rule_order_and_unmatched_items_give_nothing(tmp_path: Path) -> None:
    write_rule(tmp_path, "match: {all: [Odesa]}", "b-second.yaml")
    write_rule(tmp_path, "match: {all: [port]}", "a-first.yaml")
    book = load_rules(tmp_path)
    assert [m.rule_id for m in book.match(item("The port of Odesa."))] == [
        "a-first",
        "b-second",
    ]
    assert book.match(item("Nothing relevant.")) == []
    assert book.match(item("")) == []


def test_mixed_scripts_in_one_text(tmp_path: Path) -> None:
    book = rulebook(
        tmp_path,
        """
        terms:
          kursk: [Kursk, Курск*, Курськ*]
          war: [troops, войск*, військ*]
        match: {all: ["@kursk", "@war"]}
        """,
    )
    text = "Сили ЗСУ 台湾 الحرب. Ukrainian військa entered Курськoї oblast. 中文 текст."
    assert fires(book, "Ukrainian troops entered Курской области.")
    assert fires(book, "Українські війська увійшли до Курської області.")
    assert isinstance(book.match(item(text)), list)


# --- results do not depend on case or on other rules ---------------------------------------


def test_case_of_the_word_after_a_full_stop_does_not_change_results(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [Odesa, drone*]}")
    lower = "odesa port. drones struck"
    assert fires(book, lower) == fires(book, lower.title()) == fires(book, lower.upper())


def test_an_unrelated_rule_does_not_change_a_word_window_result(tmp_path: Path) -> None:
    write_rule(tmp_path, "match: {all: [alpha], none: [beta]}\nwithin: 3", "base.yaml")
    text = "beta gamma alpha delta beta"
    alone = [m.rule_id for m in load_rules(tmp_path).match(item(text))]
    write_rule(tmp_path, "match: {all: [gamma]}", "unrelated.yaml")
    together = [m.rule_id for m in load_rules(tmp_path).match(item(text)) if m.rule_id == "base"]
    assert together == alone


def test_an_unrelated_rule_does_not_change_another_rules_terms(tmp_path: Path) -> None:
    write_rule(tmp_path, "match: {any: [Odesa, Курск*]}\nwithin: 3", "base.yaml")
    probe = item("odesa", title="izmail odesa odesa курск")
    [alone] = load_rules(tmp_path).match(probe)
    write_rule(tmp_path, "match: {any: [Izmail]}", "unrelated.yaml")
    [together] = [m for m in load_rules(tmp_path).match(probe) if m.rule_id == "base"]
    assert (together.terms, together.snippets) == (alone.terms, alone.snippets)


def test_case_sensitive_term_in_a_word_window_counts_only_its_cased_form(tmp_path: Path) -> None:
    book = rulebook(tmp_path, "match: {all: [=PLA, drills]}\nwithin: 2")
    assert fires(book, "The PLA drills began.")
    assert not fires(book, "The pla drills began.")
    # "PLA" far away in the same sentence must not lend its case to the "pla" next to drills
    assert not fires(book, "The PLA went home, and then the pla drills began.")


def test_regex_set_finds_what_one_search_per_regex_finds() -> None:
    """All regex terms are searched as one RE2 set; a rulebook without the set (as when RE2
    cannot build one) searches them one by one, with the same results."""
    fixture = Path(__file__).parents[1] / "fixtures" / "isw-2024-10-14.txt"
    book = load_rules(Path(__file__).parents[2] / "rules")
    assert book._regex_set is not None
    texts = [fixture.read_text(encoding="utf-8")]
    texts += [e.text for rule in book.rules for e in rule.should_match + rule.should_not_match]
    items = [Item("isw", str(n), str(n), text[:80], "", None, text) for n, text in enumerate(texts)]
    with_set = [book.match(item) for item in items]
    book._regex_set = None
    assert [book.match(item) for item in items] == with_set
    assert any(with_set)
