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

import gc
from functools import lru_cache
from typing import Any

Phrase = tuple[str, ...]
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


_CASES = ("nomn", "gent", "datv", "accs", "ablt", "loct", "voct")
# no number keeps the phrase's own (Ukrainian tags name no number for a singular feminine)
_NUMBERS: tuple[frozenset[str], ...] = (frozenset(), frozenset({"plur"}))


def release() -> None:
    """Drop the dictionaries (about 40 MB) once rules are loaded; the forms stay cached, so a
    reload of unchanged rules does not load them again."""
    if _analyzer.cache_info().currsize:
        _analyzer.cache_clear()
        # the analysers sit in reference cycles: without a collection now their memory stays
        # taken until the collector's oldest generation runs, maybe never in a poll cycle
        gc.collect()


@lru_cache(maxsize=4096)
def phrase_forms(words: tuple[str, ...], inflected: tuple[bool, ...]) -> tuple[Phrase, ...]:
    """The forms of a phrase whose `inflected` words take every case and number together
    ("~Курская ~область" -> курская область, курской области, курскую область ...), so the
    words agree; one `~` word alone takes every form of its lexeme."""
    if sum(inflected) == 1:
        return tuple(
            tuple(form if flag else word for word, flag in zip(words, inflected, strict=True))
            for form in word_forms(next(w for w, f in zip(words, inflected, strict=True) if f))
        )
    parses = [_readings(w) if flag else [] for w, flag in zip(words, inflected, strict=True)]
    out = {tuple(w.lower() for w in words)}
    for case in _CASES:
        for number in _NUMBERS:
            out.update(_agreeing(words, parses, {case, *number}))
    return tuple(sorted(out))


def _agreeing(words: tuple[str, ...], parses: list[list[Any]], grammemes: set[str]) -> set:
    """The phrase with each inflected word in the given case and number (each reading)."""
    options: list[set[str]] = []
    for word, readings in zip(words, parses, strict=True):
        forms = {r.word for p in readings if (r := p.inflect(grammemes)) is not None}
        options.append(forms or {word.lower()})
    combos: set[tuple[str, ...]] = {()}
    for forms in options:
        combos = {(*c, f) for c in combos for f in forms}
    return combos


def _normal(word: str) -> str:
    return word.lower().replace("ʼ", "'").replace("’", "'")


def _likeliest(parses: list[Any]) -> list[Any]:
    """The readings with the part of speech of the first (likeliest) one."""
    return [p for p in parses if p.tag.POS == parses[0].tag.POS]


def _readings(word: str) -> list[Any]:
    """The dictionary readings of a word with its likeliest part of speech."""
    word = _normal(word)
    for lang in _languages(word):
        known = [p for p in _analyzer(lang).parse(word) if p.is_known]
        if known:
            return _likeliest(known)
    return _analyzer(_languages(word)[0]).parse(word)[:1]


@lru_cache(maxsize=4096)
def word_forms(word: str) -> tuple[str, ...]:
    """Every inflected form of a Russian or Ukrainian word (lower case), the word included.

    The dictionary readings with the part of speech of the likeliest reading are used (so
    "удар" brings its noun forms, not those of the verb "ударити"); an unknown word (a place
    name) gets the forms the analyser predicts for it.
    """
    word = _normal(word)
    forms = {word}
    languages = _languages(word)
    readings = {lang: _analyzer(lang).parse(word) for lang in languages}
    known = {lang: [p for p in parses if p.is_known] for lang, parses in readings.items()}
    if not any(known.values()):  # a name no dictionary has: the first language's guess
        known = {languages[0]: readings[languages[0]][:1]}
    for parses in known.values():
        for parse in _likeliest(parses) if parses else ():
            forms.update(form.word for form in parse.lexeme)
    return tuple(sorted(forms))
