"""Property tests: results ignore case, accents and spacing; rules never affect each other."""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.models import Item, Match
from bot.rules.language import Expr, Leaf, Rule, parse_terms
from bot.rules.matcher import Rulebook
from bot.rules.text import SENTENCE_JOINER, sentence_spans

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words the random texts and rules share, so that rules fire often enough to matter.
WORDS = [
    "odesa", "izmail", "port", "ports", "drone", "drones", "strike", "struck", "kursk",
    "taiwan", "strait", "drills", "live", "fire", "pla", "submarine", "airport", "support",
    "курск", "курской", "области", "порт", "удар", "київ", "війська", "the", "a", "of", "and",
    "near", "was", "report", "ударом", "удары", "курская", "область", "Gen.", "ред.",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", ", ", " - ", ". ", "! ", "\n\n"]

# Terms for random rules: words, phrases, wildcards, case-sensitive acronyms and regexes.
TERMS = [
    "Odesa", "Izmail", "port", "ports", "drone*", "strike", "struck", "Kursk", "Taiwan",
    "Taiwan Strait", "drill*", "live-fire", "=PLA", "submarine", "airport", "Курск*",
    "Курской области", "порт", "удар*", "Київ", "військ*", "near the port",
    "/dron\\w+/", "/\\bport\\b/", "/курск\\pL*/", "~удар", "~Курская ~область",
]  # fmt: skip
FOLDABLE_TERMS = [t for t in TERMS if not t.startswith(("=", "/"))]


def words_apart(draw: st.DrawFn, words: list[str], separators: list[str]) -> str:
    """1 to 30 of `words`, each followed by one of `separators`."""
    chosen = draw(st.lists(st.sampled_from(words), min_size=1, max_size=30))
    return "".join(word + draw(st.sampled_from(separators)) for word in chosen)


@st.composite
def texts(draw: st.DrawFn) -> str:
    return words_apart(draw, WORDS, SEPARATORS).strip()


def leaves(terms: list[str]) -> st.SearchStrategy[Leaf]:
    def leaf(names: list[str]) -> Leaf:
        parsed = tuple(t for n in names for t in parse_terms(n))
        return Leaf(names[0] if len(names) == 1 else "@group", parsed)

    return st.lists(st.sampled_from(terms), min_size=1, max_size=3, unique=True).map(leaf)


def exprs(terms: list[str]) -> st.SearchStrategy[Expr]:
    leaf = leaves(terms)

    def extend(inner: st.SearchStrategy) -> st.SearchStrategy:
        return st.builds(
            Expr,
            all=st.lists(inner, max_size=2).map(tuple),
            any=st.lists(inner, min_size=1, max_size=2).map(tuple),
            none=st.lists(inner, max_size=1).map(tuple),
        )

    node = st.recursive(leaf, extend, max_leaves=4)
    return st.builds(
        Expr,
        all=st.lists(node, max_size=2).map(tuple),
        any=st.lists(node, min_size=1, max_size=2).map(tuple),
        none=st.lists(leaf, max_size=2).map(tuple),
    )


def item_conditions(terms: list[str]) -> st.SearchStrategy[Expr]:
    """`item:` conditions: vetoes alone, or all/any with vetoes."""
    leaf = leaves(terms)
    vetoes = st.builds(Expr, none=st.lists(leaf, min_size=1, max_size=2).map(tuple))
    return vetoes | exprs(terms)


def rules(prefix: str, terms: list[str], max_size: int) -> st.SearchStrategy[list[Rule]]:
    rule = st.builds(
        lambda expr, within, fields, item_expr: Rule(
            id="",
            title="t",
            description="",
            level="medium",
            match=expr,
            within=within,
            fields=fields,
            item=item_expr,
        ),
        exprs(terms),
        st.sampled_from(["sentence", "paragraph", "item", 1, 3, 8, "2 sentences", "3 sentences"]),
        st.sampled_from([("title", "content"), ("content",), ("title",)]),
        st.none() | item_conditions(terms),
    )
    numbered = st.lists(rule, min_size=1, max_size=max_size)
    return numbered.map(
        lambda rs: [
            Rule(**{**r.__dict__, "id": f"{prefix}{n}", "title": f"{prefix}{n}"})
            for n, r in enumerate(rs)
        ]
    )


def item(text: str, title: str = "") -> Item:
    return Item(feed="isw", uid="u", story_key="s", title=title, link="", published=None, text=text)


def fired(book: Rulebook, text: str, title: str = "") -> set[str]:
    return {m.rule_id for m in book.match(item(text, title))}


def essence(match: Match) -> tuple:
    return (match.rule_id, match.windows, match.terms, match.snippets)


# --- text transformations that must not change which rules fire -----------------------------

ACCENTS = ["\u0301", "\u0300", "\u0308", "\u0302", "\u0306", "\u030c"]
SPACES = [" ", "  ", "\u00a0", "\t", " \t ", "\u2009", "\u202f", "\u3000"]


@st.composite
def accented(draw: st.DrawFn, text: str) -> str:
    out = []
    for char in text:
        out.append(char)
        if char.isalpha() and draw(st.booleans()):
            out.append(draw(st.sampled_from(ACCENTS)))
    return unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD"])), "".join(out))


@st.composite
def respaced(draw: st.DrawFn, text: str) -> str:
    return "".join(draw(st.sampled_from(SPACES)) if c == " " else c for c in text)


def recased(text: str, upper: list[bool]) -> str:
    """`text` with each character upper-cased where the (repeating) pattern says so."""
    return "".join(c.upper() if upper[i % len(upper)] else c.lower() for i, c in enumerate(text))


def simple_rule(
    rule_id: str,
    all_of: list[str],
    none_of: list[str],
    within: str | int,
    any_of: tuple[str, ...] | list[str] = (),
) -> Rule:
    def leaves_of(names: list[str] | tuple[str, ...]) -> tuple[Leaf, ...]:
        return tuple(Leaf(name, parse_terms(name)) for name in names)

    expr = Expr(all=leaves_of(all_of), any=leaves_of(any_of), none=leaves_of(none_of))
    return Rule(
        id=rule_id, title=rule_id, description="", level="medium", match=expr, within=within
    )


@pytest.mark.parametrize("variant", [accented, respaced], ids=["accents", "spacing"])
@SETTINGS
@given(rules("r", FOLDABLE_TERMS, 6), texts(), st.data())
def test_accents_and_spacing_do_not_change_results(
    variant: Callable[[str], st.SearchStrategy[str]],
    rs: list[Rule],
    text: str,
    data: st.DataObject,
) -> None:
    book = Rulebook(rs)
    changed = data.draw(variant(text))
    assert fired(book, changed) == fired(book, text)


@SETTINGS
@given(rules("r", FOLDABLE_TERMS, 6), texts(), st.lists(st.booleans(), min_size=1))
# Upper-casing the word after a full stop must not split (or join) sentences.
@example(
    rs=[simple_rule("r0", ["Odesa", "drone*"], [], "sentence")],
    text="odesa port. drones struck",
    upper=[False] * 12 + [True],  # -> "odesa port. Drones struck"
)
def test_case_does_not_change_results(rs: list[Rule], text: str, upper: list[bool]) -> None:
    book = Rulebook(rs)
    assert fired(book, recased(text, upper)) == fired(book, text)


@SETTINGS
@given(rules("r", FOLDABLE_TERMS, 6), texts(), st.data())
def test_all_three_at_once_in_titles(rs: list[Rule], text: str, data: st.DataObject) -> None:
    title = text.replace("\n", " ")
    book = Rulebook(rs)
    upper = data.draw(st.lists(st.booleans(), min_size=1))
    changed = recased(data.draw(respaced(data.draw(accented(title)))), upper)
    assert fired(book, "", title=changed) == fired(book, "", title=title)


# --- independence of rules ------------------------------------------------------------------


@SETTINGS
@given(rules("base-", TERMS, 4), rules("extra-", TERMS, 6), texts(), texts(), st.booleans())
# A word window must not be anchored on another rule's terms: "gamma alpha delta" is a 3-word
# window with alpha and no beta only when some rule looks for "gamma".
@example(
    base=[simple_rule("base-0", ["alpha"], ["beta"], 3)],
    extra=[simple_rule("extra-0", ["gamma"], [], "sentence")],
    text="beta gamma alpha delta beta",
    title="",
    extra_first=False,
)
# The same in the title: the window kept for the evidence must not depend on other rules.
@example(
    base=[simple_rule("base-0", [], [], 3, any_of=["Odesa", "Курск*"])],
    extra=[simple_rule("extra-0", ["Izmail"], [], "sentence")],
    text="odesa",
    title="izmail odesa odesa курск",
    extra_first=False,
)
def test_adding_rules_never_changes_another_rules_result(
    base: list[Rule], extra: list[Rule], text: str, title: str, extra_first: bool
) -> None:
    combined = extra + base if extra_first else base + extra
    alone = Rulebook(base).match(item(text, title))
    together = Rulebook(combined).match(item(text, title))
    base_ids = {r.id for r in base}
    assert sorted(map(essence, alone)) == sorted(
        essence(m) for m in together if m.rule_id in base_ids
    )


@SETTINGS
@given(rules("r", TERMS, 5), texts())
# the headline holds the rule alone and the body only across two sentences: the body is quoted
@example(
    rs=[simple_rule("r1", ["Odesa"], [], "2 sentences", any_of=["~удар"])],
    text="odesa odesa odesa odesa odesa порт. ударом",
)
def test_match_never_raises_and_reports_only_real_terms(rs: list[Rule], text: str) -> None:
    title = text[:40]
    for match in Rulebook(rs).match(item(text, title=title)):
        assert match.terms, match
        assert match.windows, match
        assert len(match.snippets) <= 3
        quoted = [" ".join(s.text.split()).casefold() for s in match.snippets]
        assert len(set(quoted)) == len(quoted)  # never the same sentence twice
        assert " ".join(title.split()).casefold() not in quoted  # never the headline
        in_text = [text.find(s.text.strip("…")) for s in match.snippets]
        assert in_text == sorted(in_text)  # in the order they appear
        if any(w.field == "content" and text[w.start : w.end] != title for w in match.windows):
            assert match.snippets
        for snippet in match.snippets:
            for start, end in snippet.highlights:
                assert 0 <= start < end <= len(snippet.text)


# --- the field scan's hits, reused for sentences, agree with scanning the sentences again ---

ASCII_WORDS = [w for w in WORDS if w.isascii()] + ["Mr", "U.S", "e.g", "PLA", "Port", "42"]
# sentence ends of every kind, and separators that are not (hyphens, underscores, quotes)
ASCII_SEPARATORS = [" ", " ", ", ", ". ", "! ", "? ", "... ", '." ', "\n", "\n\n", "-", "_", "."]
ASCII_TERMS = [
    "port", "ports", "drone*", "near the port", "port drones", "taiwan strait", "live-fire",
    "=PLA", "=Port", "Mr", "U.S", "42", "strike", "the port*", "was near", "/dron\\w+/",
]  # fmt: skip
ASCII_AUTOMATON_TERMS = [t for t in ASCII_TERMS if not t.startswith("/")]  # regexes: RE2's


@st.composite
def ascii_texts(draw: st.DrawFn) -> str:
    return words_apart(draw, ASCII_WORDS, ASCII_SEPARATORS)


def sentence_hits(book: Rulebook, text: str, by_words: bool, reuse: bool) -> tuple:
    """Each sentence's hits, and each sentence's first word number, by one of the two paths:
    the field scan's hits reused, or the joined sentences canonicalised and scanned again."""
    spans = sentence_spans(text)
    wanted = frozenset(range(book.term_count))
    hits: dict = defaultdict(dict)
    firsts = [0] * len(spans)
    if reuse:
        scan = book._scan_field(text)
        assert book._credit.reuse_hits(hits, firsts, text, scan, spans, by_words, wanted)
    else:
        joined = SENTENCE_JOINER.join(text[a:b] for a, b, _ in spans)
        book._credit.hits_in(hits, firsts, joined, by_words, wanted)
    return dict(hits), firsts


def one_rule_per_term(terms: list[str], within: str | int) -> list[Rule]:
    return [simple_rule(f"r{n}", [t], [], within) for n, t in enumerate(terms)]


@SETTINGS
@given(st.lists(st.sampled_from(ASCII_AUTOMATON_TERMS), min_size=1, unique=True), ascii_texts())
# a phrase running from one sentence into the next is found in the field, not in a sentence
@example(terms=["near the port", "port"], text="odesa was near. The port was near the port.")
def test_reused_scan_hits_equal_a_scan_of_the_sentences(terms: list[str], text: str) -> None:
    book = Rulebook(one_rule_per_term(terms, 3))
    for by_words in (False, True):
        reused = sentence_hits(book, text, by_words, reuse=True)
        assert reused == sentence_hits(book, text, by_words, reuse=False)


# Cyrillic text (NFC or NFD, with stress marks and the Ukrainian apostrophe now and then): the
# field scan's hits are reused when words can be counted without canonicalising, else not.
CYRILLIC_WORDS = ["курской", "области", "удар", "ударом", "порт", "київ", "війська", "обʼєкт",
                  "уче\u0301ния", "й", "ёлка", "the", "port", "½"]  # fmt: skip
CYRILLIC_TERMS = ["курской области", "удар*", "~удар", "порт", "Київ", "війська", "port",
                  "учения", "ёлка", "обʼєкт"]  # fmt: skip


@st.composite
def cyrillic_texts(draw: st.DrawFn) -> str:
    text = words_apart(draw, CYRILLIC_WORDS, ASCII_SEPARATORS)
    return unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD"])), text)


@SETTINGS
@given(st.lists(st.sampled_from(CYRILLIC_TERMS), min_size=1, unique=True), cyrillic_texts())
@example(terms=["удар*"], text="удар. ударом")
def test_reused_scan_hits_equal_a_scan_of_cyrillic_sentences(terms: list[str], text: str) -> None:
    rs = []
    for n, term in enumerate(terms):
        leaf = Leaf(term, parse_terms(term))
        rs.append(Rule(f"r{n}", "t", "", "medium", Expr(all=(leaf,)), within=3))
    book = Rulebook(rs)
    spans = sentence_spans(text)
    wanted = frozenset(range(book.term_count))
    for by_words in (False, True):
        reused: dict = defaultdict(dict)
        firsts = [0] * len(spans)
        if not book._credit.reuse_hits(
            reused, firsts, text, book._scan_field(text), spans, by_words, wanted
        ):
            continue  # not reusable here: the sentences are scanned again
        joined = SENTENCE_JOINER.join(text[a:b] for a, b, _ in spans)
        scanned: dict = defaultdict(dict)
        again = [0] * len(spans)
        book._credit.hits_in(scanned, again, joined, by_words, wanted)
        assert (dict(reused), firsts) == (dict(scanned), again)


@SETTINGS
@given(rules("r", ASCII_TERMS, 6), ascii_texts(), st.data())
def test_reusing_scan_hits_never_changes_matches(
    rs: list[Rule], text: str, data: st.DataObject
) -> None:
    title = data.draw(ascii_texts()).replace("\n", " ")
    book = Rulebook(rs)
    reused = book.match(item(text, title))
    book._credit.reuse_hits = lambda *args: False  # type: ignore[method-assign]
    assert reused == book.match(item(text, title))
