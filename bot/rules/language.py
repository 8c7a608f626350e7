"""Topic rules: the YAML rule language (its semantics, explained below), terms and expressions.

The rule language
=================
One rule per file, ``rules/<id>.yaml``::

    id: taiwan-exercises            # optional: defaults to the file name; a-z, 0-9 and dashes
    title: PRC military exercises around Taiwan
    description: Drills, blockades and named operations of the PLA around Taiwan
    level: high                     # low | medium | high | critical (default medium)
    feeds: [isw, reuters]           # optional: only items from these feeds (by feed name)
    fields: [title, content]        # optional: where to look (default both)
    terms:                          # named groups of aliases, used as @name
      taiwan: [Taiwan, Taipei, "Taiwan Strait", Kinmen, Penghu, Тайвань]
      china: ["=PLA", PRC, China, Chinese, "Eastern Theater Command"]
      drills: [exercise*, drill*, live-fire, blockade, encircl*, "Joint Sword*"]
      places: ports.txt             # or a text file next to the rule: one term per line
    match:
      all: ["@taiwan", "@china", "@drills"]
      none: ["stock option*"]
    item:                           # optional: conditions on the whole item
      none: ["Taiwan Semiconductor"]
    within: 2 sentences             # item | paragraph | sentence (default) | N sentences | N
    throttle: 6h                    # the same rule alerts a story at most once per 6 hours
    tests:
      match: ["China's PLA began live-fire drills encircling Taiwan on Monday."]
      no_match: ["Taiwan Semiconductor staff may exercise stock options."]

Terms
-----
- ``Kursk``, ``Taiwan Strait``: a word or phrase, matched as whole words, ignoring case and
  accents in any script (NFKC, casefold, diacritics removed: "Kýiv" = "kyiv", "й" = "и").
  Punctuation, hyphens and line breaks between words don't matter: ``live-fire`` finds
  "live fire", and "China's" contains the word ``china``.
- ``drill*``, ``Курск*``: a trailing ``*`` matches any ending of the last word (drills,
  drilling; Курская, Курской). At least 3 letters must come before the ``*``.
- ``=PLA``: a leading ``=`` matches case-sensitively, for acronyms ("PLA", not "pla").
- ``~учения``, ``"~Курська ~операція"``: every inflected form of a Russian or Ukrainian word
  (учения, учений, учениям, учениях ...). The forms are generated when the rules load, from the
  pymorphy3 dictionaries (see inflect.py), and become plain whole-word terms, so matching pays
  nothing for them. In a phrase the ``~`` words take every case and number together, so they
  agree ("Курської операції", "Курською операцією"); words without ``~`` stay as written.
  ``~`` goes only before a Cyrillic word, and not with ``=`` or ``*``.
- ``/\\bJoint Sword-20\\d\\d[AB]?\\b/``: a regular expression (RE2 syntax, case-insensitive,
  run on the NFKC text). RE2 runs in linear time, so no pattern can hang the bot. RE2's ``\\w`` and
  ``\\b`` know only ASCII: write ``\\pL`` for a letter of any script.

Groups
------
``terms:`` in a rule defines groups for that rule. Shared groups live in ``rules/terms/``:
``*.yaml`` files map group names to term lists, and ``<name>.txt`` is group ``<name>``, one term
per line (``#`` starts a comment), so a gazetteer of thousands of places is one word in a rule.
A rule's own group shadows a shared group of the same name.

Match
-----
``match`` has ``all`` (every item present), ``any`` (at least one present) and ``none`` (none
present); items are terms written inline, ``@group`` (any of its terms), or nested mappings of
the same shape: ``any: [{all: ["@port", "@strike"]}, "@blockade"]``.

Windows
-------
``within`` says how close the evidence must be. The positive part (``all``/``any``) must be
satisfied inside one window: a sentence, ``N sentences`` in a row (2 to 10), a paragraph, the
whole item (title and text), or N words. A ``none`` term vetoes only the windows that contain
it: "the submarine Kursk" in one sentence does not veto a sentence about fighting in Kursk
Oblast further on. A title is a window of its own.

``within: 2 sentences`` sits between the strict sentence and the loose paragraph: reports
often name the actor in one sentence and the drill in the next ("Beijing announced naval
drills. The ships sailed close to Taiwan."). The window slides one sentence at a time and may
run across a paragraph break (feeds often put every sentence in a paragraph of its own), but
never from the title into the text.

Sentences end at . ! ? … and CJK full stops, not after abbreviations (English "Gen.", "U.S.",
"Jan."; Russian and Ukrainian "г.", "ст.", "ред.", "тис."), initials or decimals; a short line
before a longer one (a headline, a dateline) and each list item ("- ", "• ", "1. ", "a) ") is
a sentence of its own.

Item conditions
---------------
``item`` has the shape of ``match`` (``all``/``any``/``none``, nested) and is judged once on
the whole item (the rule's fields), beside the per-window ``match``: the rule fires when the
item condition holds and some window satisfies ``match``. It says what a window cannot:

    item: {all: ["@taiwan"]}                  # the item is about Taiwan ...
    match: {all: ["@pla", "@drills"]}         # ... and a window has a PLA drill
    item:
      none:                                   # an item-wide veto, with its own exception:
        - all: ["Battle of Kursk", "1943"]    # an article on the 1943 battle is vetoed
          none: ["@ukraine", "drone*"]        # unless it speaks of the present war too

``item: {none: [...]}`` alone is a list of item-wide vetoes. Item terms are conditions, not
evidence: they never make a window fire and are not highlighted in snippets.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from bot.rules.inflect import MAX_FORMS, is_cyrillic, phrase_forms
from bot.rules.text import canonical

LEVELS = ("low", "medium", "high", "critical")
FIELDS = ("title", "content")
WINDOWS = ("item", "paragraph", "sentence")
RULE_KEYS = "id title description level feeds fields terms match item within throttle tests".split()
MAX_DEPTH = 8
MAX_SENTENCES = 10  # the widest "N sentences" window
MIN_PREFIX = 3
_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class Term:
    """One term as written, and the canonical key the matcher looks for."""

    text: str  # as written in the rule
    kind: str  # "word" (whole words), "prefix" (trailing *), "regex"
    key: str  # canonical " a b " / " a b" for prefix; the pattern for regex
    cased_key: str = ""  # for case-sensitive terms: the canonical key with case kept

    @property
    def case_sensitive(self) -> bool:
        return bool(self.cased_key)


@dataclass(frozen=True)
class Leaf:
    """A match item: an inline term or a @group, present when any of its terms is."""

    name: str  # "@group" or the term as written
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Expr:
    """all / any / none over leaves and nested expressions."""

    all: tuple[Expr | Leaf, ...] = ()
    any: tuple[Expr | Leaf, ...] = ()
    none: tuple[Expr | Leaf, ...] = ()


@dataclass(frozen=True)
class Example:
    """A test text embedded in a rule, with the line it was written on."""

    text: str
    line: int


@dataclass(frozen=True)
class Rule:
    """A validated topic rule."""

    id: str
    title: str
    description: str
    level: str
    match: Expr
    within: str | int = "sentence"  # also "N sentences": N consecutive sentences
    feeds: tuple[str, ...] = ()
    fields: tuple[str, ...] = FIELDS
    throttle: float = 0.0
    should_match: tuple[Example, ...] = ()
    should_not_match: tuple[Example, ...] = ()
    path: str = ""
    line: int = 1
    item: Expr | None = None  # conditions on the whole item (fields), vetoes included


def sentences_window(within: str | int) -> int:
    """N for a window of N consecutive sentences ("3 sentences"), else 0."""
    if isinstance(within, str) and within.endswith(" sentences"):
        return int(within.split()[0])
    return 0


def parse_terms(raw: object) -> tuple[Term, ...]:
    """The terms a written term stands for: one, or one per form when it has `~` words."""
    text = str(raw).strip() if isinstance(raw, str) else ""
    if "~" not in text or (text.startswith("/") and text.endswith("/")):
        return (parse_term(raw),)
    if text.startswith("="):
        raise ValueError(f"'{text}': '=' (case) and '~' (inflection) do not go together")
    if text.endswith("*"):
        raise ValueError(f"'{text}': '~' (every form) and '*' (any ending) do not go together")
    words = text.split()
    for word in words:
        if word.startswith("~") and (len(word) < 2 or "~" in word[1:] or not is_cyrillic(word[1:])):
            raise ValueError(
                f"'{text}': '~' goes before a Russian or Ukrainian word ('~учения'); "
                "for other languages write the forms, or a wildcard"
            )
    bare = tuple(w.lstrip("~") for w in words)
    forms = phrase_forms(bare, tuple(w.startswith("~") for w in words))
    if len(forms) > MAX_FORMS:
        raise ValueError(f"'{text}' has over {MAX_FORMS} forms: put '~' on fewer words")
    terms = (dataclasses.replace(parse_term(" ".join(f)), text=text) for f in forms)
    return tuple(dict.fromkeys(terms))  # folding makes some forms alike (й = и)


def parse_term(raw: object) -> Term:
    """A term from its written form; raises ValueError saying what is wrong."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"a term must be text, not {type(raw).__name__}")
    text = str(raw).strip()
    if len(text) > 2 and text.startswith("/") and text.endswith("/"):
        return Term(text, "regex", _compile_regex(text[1:-1]).pattern)
    cased = text.startswith("=")
    body = text[1:].strip() if cased else text
    kind = "prefix" if body.endswith("*") else "word"
    stem = body[:-1] if kind == "prefix" else body
    if "*" in stem:
        raise ValueError(f"'{text}': '*' may only end a term")
    words = canonical(stem).strip()
    if not words:
        raise ValueError(f"'{text}' has no letters or digits")
    if kind == "prefix" and len(words.split()[-1]) < MIN_PREFIX:
        raise ValueError(
            f"'{text}': a wildcard needs at least {MIN_PREFIX} letters before '*' "
            "(shorter ones match too much)"
        )
    key = " " + words + (" " if kind == "word" else "")
    cased_key = canonical(stem, keep_case=True).rstrip() + (" " if kind == "word" else "")
    return Term(text, kind, key, cased_key if cased else "")


def _compile_regex(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"invalid regular expression /{pattern}/: {reason}") from None


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Any:
    """The RE2 program for a regex term's pattern (case-insensitive), compiled once."""
    return _compile_regex(pattern)


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean X?)' when something close exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
