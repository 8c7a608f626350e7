"""Near-duplicate reports across feeds: MinHash sketches of a report's own words (pure).

Wire copy comes back from many outlets under their own headlines and links, sometimes with a
sentence added, so neither story keys nor exact fingerprints see that it is one report. Each
item that matches a rule gets a sketch: the MinHash (datasketch, 64 permutations) of the
4-word runs of its body (headline left out: outlets write their own), after its boilerplate is
dropped, because two different reports sharing an outlet's footer must never look alike:

- sentences found in more than one entry of the same feed document (a footer, a "Read more"
  line, a newsletter pitch repeated under every item), and
- sentences that are boilerplate anywhere ("Read more …", "Sign up for …", "The post … appeared
  first on …", "© …", "All rights reserved" …).

A body with fewer than `MIN_SHINGLES` runs left gets no sketch (too little text to tell
copies from reports that merely share phrases; exact fingerprints still cover it).

Two reports are copies when the Jaccard similarity of their runs is at least `THRESHOLD`
(0.5: a copy with its own headline, a sentence added and a few words changed is about
0.6-0.9; two reports of one event in different words are below 0.2, measured by
bench/dedup.py). Lookups go through LSH bands: `bands` gives the keys the store indexes. A
candidate sharing a band whose signature estimates it near the threshold is then measured
exactly on its stored text, with the new report's boilerplate dropped from both (the
estimate alone, with 64 permutations, varies by about 0.06: enough to merge, now and then,
two short reports that share a long footer). A candidate whose text was pruned is judged by
its signature alone.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from bot.identity import words

THRESHOLD = 0.5
NUM_PERM = 64
SHINGLE = 4
MIN_SHINGLES = 12
# datasketch picks the banding that best separates pairs above and below the threshold
_BANDS, _ROWS = (lambda lsh: (lsh.b, lsh.r))(MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM))
# its permutations, built once, serve every sketch; the runs are hashed with CRC-32 (C speed,
# three times faster than datasketch's SHA-1 in Python, and spread enough: every permutation
# then maps the hashes through its own random affine function)
_SEED = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=zlib.crc32)

_SENTENCES = re.compile(r"(?<=[.!?…])\s+|\n+")
_BOILERPLATE = re.compile(
    r"^\W*(read (more|the full|on)|continue reading|click here|sign up|subscribe|"
    r"follow us|share (this|on)|related:|see also|more:|advertisement|copyright|©|"
    r"the post .* appeared first on|get (our|the) .*newsletter|this (article|story) "
    r"(was|is) (originally )?(published|produced|first))"
    r"|all rights reserved|newsletter|appeared first on",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sketch:
    """A body's MinHash signature, the LSH band keys it is indexed under, and its runs."""

    signature: bytes  # NUM_PERM uint32 values
    bands: tuple[int, ...]
    runs: frozenset[bytes]  # the 4-word runs (not stored: for exact checks of candidates)
    boilerplate: frozenset[str] = frozenset()  # what was dropped from the document


def sentences(text: str) -> list[str]:
    """The text's sentences (and lines), whitespace-normalised."""
    return [" ".join(s.split()) for s in _SENTENCES.split(text) if s.strip()]


def repeated_sentences(texts: Iterable[str]) -> frozenset[str]:
    """Sentences found in more than one of `texts` (one feed document's bodies): boilerplate."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(sentences(text)))
    return frozenset(s for s, n in counts.items() if n > 1)


def own_words(text: str, boilerplate: frozenset[str] = frozenset()) -> list[str]:
    """The body's words without its boilerplate sentences."""
    kept = [s for s in sentences(text) if s not in boilerplate and not _BOILERPLATE.search(s)]
    return words(" ".join(kept))


def shingles(text: str, boilerplate: frozenset[str] = frozenset()) -> frozenset[bytes]:
    """The 4-word runs of the body's own words."""
    ws = own_words(text, boilerplate)
    return frozenset(" ".join(ws[i : i + SHINGLE]).encode() for i in range(len(ws) - SHINGLE + 1))


def sketch(text: str, boilerplate: frozenset[str] = frozenset()) -> Sketch | None:
    """The body's sketch, or None when too little of its own text is left."""
    runs = shingles(text, boilerplate)
    if len(runs) < MIN_SHINGLES:
        return None
    minhash = MinHash(num_perm=NUM_PERM, permutations=_SEED.permutations, scheme=_SEED.scheme)
    minhash.update_batch(list(runs))
    values = np.asarray(minhash.hashvalues, dtype=np.uint32)
    return Sketch(values.tobytes(), _band_keys(values), runs, boilerplate)


def _band_keys(values: np.ndarray) -> tuple[int, ...]:
    keys = []
    for band in range(_BANDS):
        chunk = values[band * _ROWS : (band + 1) * _ROWS].tobytes()
        digest = hashlib.blake2b(bytes([band]) + chunk, digest_size=8).digest()
        keys.append(int.from_bytes(digest, "big", signed=True))  # fits SQLite's INTEGER
    return tuple(keys)


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures (the share of equal values)."""
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
