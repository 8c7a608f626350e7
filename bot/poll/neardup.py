"""Near-duplicate reports across feeds: MinHash sketches of a report's own words (pure).

Wire copy comes back from many outlets under their own headlines and links, sometimes with a
sentence added, so neither story keys nor exact fingerprints see that it is one report. Each
item that matches a rule gets a sketch: the MinHash (64 permutations) of the 4-word runs of
its body (headline left out: outlets write their own), after its boilerplate is
dropped, because two different reports sharing an outlet's footer must never look alike:

- sentences that other entries of the same feed document repeat (a footer, a "Read more"
  line, a newsletter pitch under every item; a few siblings are compared), and
- sentences that are boilerplate anywhere ("Read more …", "Sign up for …", "The post … appeared
  first on …", "© …", "All rights reserved" …).

Only the first `MAX_WORDS` words count (the lead names a report; a long article would cost
more and tell no more). A body with fewer than `MIN_SHINGLES` runs left gets no sketch (too
little text to tell copies from reports that merely share phrases; exact fingerprints still
cover it).

Two reports are copies when the Jaccard similarity of their runs is at least `THRESHOLD`
(0.5: a copy with its own headline, a sentence added and a few words changed is about
0.6-0.9; two reports of one event in different words are below 0.2, measured by
bench/dedup.py). Lookups go through LSH bands (14 bands of 4 rows: what datasketch's
MinHashLSH picks for this threshold and permutation count, a test checks it): `band_keys`
gives the keys the store indexes, each band's four values mixed into one 64-bit integer (a
collision only adds a candidate, which the signature check turns away). A candidate sharing a
band whose signature estimates it near the threshold is then measured exactly on its stored
text, with the new report's boilerplate dropped from both (the estimate alone, with 64
permutations, varies by about 0.06: enough to merge, now and then, two short reports that
share a long footer). A candidate whose text was pruned is judged by its signature alone.

The MinHash is datasketch's "affine32" scheme (CRC-32 of each run, the MurmurHash3 finalizer,
then `a·h + b mod 2^32` per permutation, seed 1), written out here because importing
datasketch loads SciPy for one integral: 73 MB more in every process, which broke the poll
cycle's memory budget (measured). tests/poll/test_neardup.py checks that the signatures equal
datasketch's own, value for value. numpy is imported on first use, so the parser processes,
which never sketch, do not carry it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import islice
from typing import TYPE_CHECKING, Any

from bot.identity import words

if TYPE_CHECKING:
    import numpy as np

THRESHOLD = 0.5
NUM_PERM = 64
SHINGLE = 4  # words per run (shingles() builds runs of four)
MIN_SHINGLES = 12
MAX_WORDS = 200  # a report's first 200 own words name it; longer bodies cost more, not better
BANDS, ROWS = 14, 4  # datasketch's MinHashLSH(threshold=0.5, num_perm=64) picks these
SEED = 1

_SENTENCES = re.compile(r"[^.!?…\n]*[.!?…]+|[^.!?…\n]+")  # findall: 8x a lookbehind split
# anchored, so a sentence that does not start like one fails at once
_BOILERPLATE_START = re.compile(
    r"\W*(read (more|the full|on)|continue reading|click here|sign up|subscribe|"
    r"follow us|share (this|on)|related:|see also|more:|advertisement|copyright|©|"
    r"the post .* appeared first on|get (our|the) .*newsletter|this (article|story) "
    r"(was|is) (originally )?(published|produced|first))",
    re.IGNORECASE,
)
_BOILERPLATE_ANYWHERE = ("all rights reserved", "newsletter", "appeared first on")


def _has_phrase(text: str) -> bool:
    folded = text.lower()
    return any(phrase in folded for phrase in _BOILERPLATE_ANYWHERE)


@dataclass(frozen=True)
class Sketch:
    """A body's MinHash signature, the LSH band keys it is indexed under, and its runs."""

    signature: bytes  # NUM_PERM uint32 values
    bands: tuple[int, ...]
    runs: frozenset[bytes]  # the 4-word runs (not stored: for exact checks of candidates)
    boilerplate: frozenset[str] = frozenset()  # the sentences its feed document repeats


def sentences(text: str) -> list[str]:
    """The text's sentences (and lines); feed text is whitespace-normalised already."""
    return [s for s in (piece.strip() for piece in _SENTENCES.findall(text)) if s]


SIBLINGS = 4  # an outlet's footer is under every entry: a few of them show it


def boilerplate(text: str, document: Sequence[str]) -> frozenset[str]:
    """The sentences of `text`'s lead that other entries of its feed document (`document`:
    their bodies, this one's included or not) repeat: a footer, a pitch, a "Read more" line."""
    return frozenset(_lead_sentences(text)).intersection(_repeated(text, document))


def _repeated(text: str, document: Sequence[str]) -> frozenset[str]:
    """The sentences of the first few other entries of the document."""
    return _sentences_of(tuple(islice((other for other in document if other != text), SIBLINGS)))


@lru_cache(maxsize=16)
def _sentences_of(siblings: tuple[str, ...]) -> frozenset[str]:
    # an entry's siblings are the document's first few others: one or two sets per document
    return frozenset().union(*map(_sentence_set, siblings))


@lru_cache(maxsize=64)
def _sentence_set(text: str) -> frozenset[str]:
    return frozenset(sentences(text))


def _lead(text: str) -> str:
    """The start of the text that can hold MAX_WORDS own words (with room for boilerplate)."""
    return text[: MAX_WORDS * 16]


def _lead_sentences(text: str) -> Iterator[str]:
    """The lead's sentences, one by one: most leads need only their first few."""
    for match in _SENTENCES.finditer(_lead(text)):
        if sentence := match.group().strip():
            yield sentence


def own_words(
    text: str, repeated: Collection[str] = frozenset(), limit: int | None = None
) -> list[str]:
    """The body's words without its boilerplate sentences (those in `repeated` and those that
    are boilerplate anywhere): all of them, or with `limit`, at least the first `limit` (the
    rest of the lead is neither judged nor split into words)."""
    return _own(text, repeated, limit)[0]


def _own(
    text: str, repeated: Collection[str], limit: int | None
) -> tuple[list[str], frozenset[str]]:
    """own_words, and the sentences of `repeated` that were dropped on the way."""
    # a phrase that is boilerplate anywhere is looked for in each sentence only when the lead
    # has one (it mostly has none): one pass over the lead instead of one per sentence
    phrases = _has_phrase(_lead(text))
    found: list[str] = []
    kept: list[str] = []  # sentences whose words are not counted yet
    dropped: set[str] = set()
    tokens = 0  # an estimate of their words: only decides when to count them
    for sentence in _lead_sentences(text):
        if sentence in repeated:
            dropped.add(sentence)
            continue
        if _BOILERPLATE_START.match(sentence) or (phrases and _has_phrase(sentence)):
            continue
        kept.append(sentence)
        tokens += sentence.count(" ") + 1
        if limit is not None and len(found) + tokens >= limit:
            # the words of sentences joined by spaces are the words of each, one after another
            found += words(" ".join(kept))
            kept, tokens = [], 0
            if len(found) >= limit:
                return found, frozenset(dropped)
    return found + words(" ".join(kept)), frozenset(dropped)


def shingles(text: str, repeated: Collection[str] = frozenset()) -> frozenset[bytes]:
    """The 4-word runs of the body's first MAX_WORDS own words."""
    return _runs(own_words(text, repeated, MAX_WORDS))


def _runs(own: list[str]) -> frozenset[bytes]:
    # words hold no spaces: encoded once and split again, each run is joined in C
    ws = " ".join(own[:MAX_WORDS]).encode().split(b" ")
    runs = zip(ws, ws[1:], ws[2:], ws[3:], strict=False)  # the later ones end sooner
    return frozenset(map(b" ".join, runs))


def sketch(text: str, document: Sequence[str] = ()) -> Sketch | None:
    """The body's sketch, the sentences its feed document's other entries repeat left out;
    None when too little of its own text is left."""
    own, dropped = _own(text, _repeated(text, document), MAX_WORDS)
    runs = _runs(own)
    if len(runs) < MIN_SHINGLES:
        return None
    values = minhash(runs)
    return Sketch(values.tobytes(), band_keys(values), runs, dropped)


def minhash(runs: Collection[bytes]) -> np.ndarray:
    """The NUM_PERM uint32 MinHash values of a set of byte strings (datasketch's affine32)."""
    np = _numpy()
    a, b = _permutations()
    # CRC-32 runs at C speed, three times faster than datasketch's default SHA-1 in Python;
    # the finalizer then spreads its values before the permutations
    hashes = np.fromiter(map(zlib.crc32, runs), np.uint32, len(runs)).reshape(-1, 1)
    hashes ^= hashes >> np.uint32(16)
    hashes *= np.uint32(0x85EBCA6B)
    hashes ^= hashes >> np.uint32(13)
    hashes *= np.uint32(0xC2B2AE35)
    hashes ^= hashes >> np.uint32(16)
    return (hashes * a + b).min(axis=0)  # uint32 arithmetic wraps: mod 2^32


@cache
def _numpy() -> Any:
    import numpy

    return numpy


@cache
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of each permutation, drawn as datasketch draws them (a odd: a bijection)."""
    np = _numpy()
    gen = np.random.RandomState(SEED)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


def band_keys(signature: np.ndarray | bytes) -> tuple[int, ...]:
    """The LSH keys a signature is indexed under: one per band of ROWS values, each band's
    values mixed into one signed 64-bit integer (SQLite's INTEGER) with the band's number."""
    np = _numpy()
    values = np.frombuffer(signature, np.uint32) if isinstance(signature, bytes) else signature
    pairs = values[: BANDS * ROWS].view(np.uint64).reshape(BANDS, ROWS // 2)
    mixed = pairs[:, 0] * np.uint64(0xFF51AFD7ED558CCD) ^ pairs[:, 1] ^ _band_salts()
    return tuple(mixed.view(np.int64).tolist())


@cache
def _band_salts() -> np.ndarray:
    np = _numpy()
    return np.arange(1, BANDS + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures (the share of equal values)."""
    np = _numpy()
    va, vb = np.frombuffer(a, dtype=np.uint32), np.frombuffer(b, dtype=np.uint32)
    return float(np.count_nonzero(va == vb)) / len(va) if len(va) == len(vb) else 0.0


_NEAR = 0.2  # estimates this far below the threshold are measured exactly


def copies(mine: Sketch, candidates: Sequence[tuple[int, bytes, str | None]]) -> list[int]:
    """Ids of the candidates (id, signature, text or None) similar enough to be the report."""
    found = []
    for item_id, signature, text in candidates:
        estimate = similarity(mine.signature, signature)
        if text is None:
            similar = estimate >= THRESHOLD
        else:
            similar = estimate >= THRESHOLD - _NEAR and _jaccard(mine, text) >= THRESHOLD
        if similar:
            found.append(item_id)
    return found


def _jaccard(mine: Sketch, text: str) -> float:
    theirs = shingles(text, mine.boilerplate)
    union = len(mine.runs | theirs)
    return len(mine.runs & theirs) / union if union else 0.0
