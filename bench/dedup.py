"""Benchmark near-duplicate detection: a store of stored reports, new reports checked against it.

    .venv/bin/python bench/dedup.py [--stored 100000] [--pairs 500] [--seed 1]

Stores STORED generated reports (40-120 words from a 5,000-word vocabulary drawn with Zipf
weights, as news words are; a third of them under one of 20 outlet footers, some of which no
boilerplate pattern knows), each with its MinHash sketch and LSH bands, through the Store as
the poll cycle writes them. Then checks new reports exactly as the cycle does (sketch, band
lookup, signature check), each inside a feed document of five entries from its outlet:
  copies     PAIRS stored reports republished: a dateline prefixed, one sentence added (half
             of them), one to three words changed, sometimes the last sentence cut
  distinct   PAIRS new reports under the same outlet footer as a stored one, half of them
             also sharing a "Read more" line and a newsletter pitch, half of them alone in
             their document (no sibling shows that the footer repeats)
precision = true copies found / all reports flagged; recall = copies found / PAIRS.
The baseline line gives the same for exact body fingerprints (what identity alone sees).
Last line: stored=N checked_per_s=X precision=P recall=R
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from bot.identity import body_fingerprint  # noqa: E402
from bot.models import Item, Match  # noqa: E402
from bot.poll import neardup  # noqa: E402
from bot.store import Store  # noqa: E402

MATCH = Match("kursk", "Kursk", "high", (), ())


class Reports:
    """Generated report text: sentences of Zipf-weighted words."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.vocab = [f"w{n}" for n in range(5000)]
        self.cum_weights = list(accumulate(1 / (rank + 1) for rank in range(len(self.vocab))))
        self.footers = [self.sentences(3) for _ in range(20)]

    def sentence(self) -> str:
        count = self.rng.randint(8, 20)
        words = self.rng.choices(self.vocab, cum_weights=self.cum_weights, k=count)
        return " ".join(words).capitalize() + "."

    def sentences(self, count: int) -> str:
        return " ".join(self.sentence() for _ in range(count))

    def report(self) -> str:
        return self.sentences(self.rng.randint(4, 8))

    def with_footer(self, text: str, outlet: int, pitch: bool = False) -> str:
        extra = " Read more on our website. Sign up for our morning newsletter." if pitch else ""
        return f"{text} {self.footers[outlet]}{extra}"

    def copy_of(self, text: str) -> str:
        """Wire copy as another outlet runs it."""
        words = text.split()
        for _ in range(self.rng.randint(1, 3)):
            words[self.rng.randrange(len(words))] = self.rng.choice(self.vocab)
        copy = "KYIV (Wire) - " + " ".join(words)
        if self.rng.random() < 0.5:
            copy += " " + self.sentence()
        if self.rng.random() < 0.3:
            copy = copy.rsplit(". ", 1)[0] + "."
        return copy


def store_reports(store: Store, reports: Reports, count: int) -> list[tuple[str, int | None]]:
    """(text, outlet or None) of every stored report, written with sketches in batches."""
    stored = []
    for start in range(0, count, 5000):
        with store.transaction():
            for n in range(start, min(count, start + 5000)):
                outlet = n % 20 if n % 3 == 0 else None
                body = reports.report()
                text = reports.with_footer(body, outlet) if outlet is not None else body
                sketch = neardup.sketch(text)
                item = Item("stored", f"s{n}", f"https://s.example/{n}", f"Report {n}",
                            f"https://s.example/{n}", None, text, f"h{n}")  # fmt: skip
                store.record_item(item, [MATCH], enqueue=False, sketch=_pair(sketch))
                stored.append((text, outlet))
        store.flush_sketch_bands(neardup.band_keys)  # as the poll cycle does, in batches
    return stored


def _pair(sketch: neardup.Sketch | None) -> tuple[bytes, tuple[int, ...]] | None:
    return (sketch.signature, sketch.bands) if sketch is not None else None


def check(store: Store, text: str, document: list[str]) -> bool:
    """The cycle's check: is `text` (one entry of `document`) a copy of a stored report?"""
    sketch = neardup.sketch(text, document)
    if sketch is None:
        return False
    rows = store.sketch_candidates(sketch.bands)
    return bool(neardup.copies(sketch, [(r.item_id, r.signature, r.text) for r in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    reports = Reports(rng)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "dedup.db") as store:
        started = time.perf_counter()
        stored = store_reports(store, reports, args.stored)
        fill = time.perf_counter() - started
        cases = []  # (text, its feed document, is a copy)
        for _ in range(args.pairs):
            original, outlet = rng.choice(stored)
            copy = reports.copy_of(original)
            cases.append((copy, [copy, *(reports.report() for _ in range(4))], True))
            outlet = outlet if outlet is not None else rng.randrange(20)
            pitch = rng.random() < 0.5
            text = reports.with_footer(reports.report(), outlet, pitch)
            # half of them alone in their document: nothing shows the footer is a footer
            alone = rng.random() < 0.5
            siblings = [reports.with_footer(reports.report(), outlet, pitch) for _ in range(4)]
            cases.append((text, [text] if alone else [text, *siblings], False))
        started = time.perf_counter()
        flagged = [check(store, text, document) for text, document, _ in cases]
        elapsed = time.perf_counter() - started
    bodies = {body_fingerprint(text) for text, _ in stored}
    exact = [body_fingerprint(text) in bodies for text, _, _ in cases]
    print(f"filled in {fill:.1f}s; threshold={neardup.THRESHOLD} num_perm={neardup.NUM_PERM}")
    print("baseline (exact body fingerprint): " + _scores(exact, cases))
    print(
        f"stored={args.stored} checked_per_s={len(cases) / elapsed:.0f} " + _scores(flagged, cases)
    )


def _scores(flagged: list[bool], cases: list[tuple[str, list[str], bool]]) -> str:
    hits = sum(1 for f, (_, _, copy) in zip(flagged, cases, strict=True) if f and copy)
    recall = hits / max(1, sum(1 for _, _, copy in cases if copy))
    precision = f"{hits / sum(flagged):.3f}" if any(flagged) else "n/a (nothing flagged)"
    return f"precision={precision} recall={recall:.3f}"


if __name__ == "__main__":
    main()
