"""Inflection: every form of a Russian or Ukrainian word, for `~word` terms (pymorphy3 lexemes).

A `~` word is expanded once, when the rule is loaded, into all the forms of its lexeme
(``~учения`` -> учение, учения, учению, учениям, учениях ...), and each form becomes an ordinary
whole-word term. Matching pays nothing for it: the forms are just more keys in the one
Aho-Corasick automaton, and folding (й = и, ё = е) applies to them as to any term.

Why pymorphy3 with the OpenCorpora (ru) and VESUM (uk) dictionaries: it is maintained, it
covers Ukrainian as well as Russian (Snowball's stemmers have no Ukrainian), and it *generates*
forms, so the text never has to be stemmed while matching; a stemmer would have to run on every
word of every item, on text whose й is already folded to и.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MAX_FORMS = 400  # forms one term may expand to (a phrase multiplies its words' forms)
_UKRAINIAN = set("іїєґ")
_RUSSIAN = set("ыэъё")


@lru_cache(maxsize=2)
def _analyzer(lang: str) -> Any:
    import pymorphy3  # loaded only when a rule uses `~` (half a second, about 15 MB)

    return pymorphy3.MorphAnalyzer(lang=lang)


def is_cyrillic(word: str) -> bool:
    """Does the word consist of Cyrillic letters (apostrophes and hyphens allowed)?"""
    letters = [c for c in word if c.isalpha()]
    return bool(letters) and all("\u0400" <= c <= "\u04ff" for c in letters)


def _languages(word: str) -> tuple[str, ...]:
    letters = set(word)
    if letters & _UKRAINIAN:
        return ("uk",)
    if letters & _RUSSIAN:
        return ("ru",)
    return ("ru", "uk")


@lru_cache(maxsize=4096)
def word_forms(word: str) -> tuple[str, ...]:
    """Every inflected form of a Russian or Ukrainian word (lower case), the word included.

    The dictionary readings with the part of speech of the likeliest reading are used (so
    "удар" brings its noun forms, not those of the verb "ударити"); an unknown word (a place
    name) gets the forms the analyser predicts for it.
    """
    word = word.lower().replace("ʼ", "'").replace("’", "'")
    forms = {word}
    languages = _languages(word)
    readings = {lang: _analyzer(lang).parse(word) for lang in languages}
    known = {lang: [p for p in parses if p.is_known] for lang, parses in readings.items()}
    if not any(known.values()):  # a name no dictionary has: the first language's guess
        known = {languages[0]: readings[languages[0]][:1]}
    for parses in known.values():
        for parse in parses:
            if parse.tag.POS == parses[0].tag.POS:
                forms.update(form.word for form in parse.lexeme)
    return tuple(sorted(forms))
