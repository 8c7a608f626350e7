"""bot.poll.neardup: datasketch's MinHash exactly, copies found, boilerplate never merges."""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence

from datasketch import MinHash, MinHashLSH
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.poll import neardup

WIRE = (
    "Russian forces have regained positions in the Kursk region after heavy fighting near the "
    "town of Sudzha, according to Russian military bloggers. Ukrainian officials said their "
    "units still held the main road and had repelled six assaults overnight."
)
OTHER = (
    "Ukrainian troops said they destroyed a bridge over the Seym river in the Kursk region, "
    "cutting a supply route used by Russian units. Moscow did not comment on the claim."
)
FOOTER = (
    "Our journalism is funded by readers like you and we thank every one of them. Support "
    "independent reporting from the region with a monthly contribution of any size today."
)


@settings(max_examples=30, deadline=None)
@given(st.sets(st.binary(min_size=1, max_size=40), min_size=1, max_size=300))
def test_signatures_equal_datasketchs_affine32_minhash(runs: set[bytes]) -> None:
    theirs = MinHash(num_perm=neardup.NUM_PERM, seed=neardup.SEED, hashfunc=zlib.crc32)
    theirs.update_batch(list(runs))
    assert theirs.hashvalues.tolist() == neardup.minhash(runs).tolist()


def test_bands_are_what_datasketch_picks_for_the_threshold() -> None:
    lsh = MinHashLSH(threshold=neardup.THRESHOLD, num_perm=neardup.NUM_PERM)
    assert (lsh.b, lsh.r) == (neardup.BANDS, neardup.ROWS)


def found(new: str, stored: str, document: Sequence[str] = ()) -> bool:
    mine, theirs = neardup.sketch(new, document), neardup.sketch(stored)
    assert mine is not None and theirs is not None
    shared = set(mine.bands) & set(theirs.bands)
    return bool(shared) and neardup.copies(mine, [(1, theirs.signature, stored)]) == [1]


def test_wire_copy_with_a_dateline_and_a_sentence_added_is_a_copy() -> None:
    copy = "KYIV (Wire) - " + WIRE + " The Kremlin declined to comment on the reports."
    assert found(copy, WIRE)


def test_different_reports_sharing_a_footer_repeated_in_their_feed_are_not() -> None:
    document = [WIRE + " " + FOOTER, OTHER + " " + FOOTER, "Third story. " + FOOTER]
    assert neardup.boilerplate(OTHER + " " + FOOTER, document) == set(neardup.sentences(FOOTER))
    assert not found(OTHER + " " + FOOTER, WIRE + " " + FOOTER, document)


def test_read_more_and_newsletter_lines_are_boilerplate_anywhere() -> None:
    pitch = "Read more: the war in maps. Sign up for our newsletter to get every update first."
    assert neardup.own_words(OTHER + " " + pitch) == neardup.own_words(OTHER)


def test_short_bodies_get_no_sketch() -> None:
    assert neardup.sketch("Drones struck the port of Izmail overnight.") is None


def test_the_signature_estimate_alone_decides_for_pruned_texts() -> None:
    mine, theirs = neardup.sketch(WIRE + " One more line."), neardup.sketch(WIRE)
    assert mine is not None and theirs is not None
    assert neardup.copies(mine, [(7, theirs.signature, None)]) == [7]


def test_random_unrelated_reports_never_match() -> None:
    rng = random.Random(3)
    vocab = [f"w{n}" for n in range(2000)]
    texts = [" ".join(rng.choices(vocab, k=60)) + "." for _ in range(50)]
    sketches = [neardup.sketch(t) for t in texts]
    for i, mine in enumerate(sketches):
        assert mine is not None
        others = [(j, s.signature, texts[j]) for j, s in enumerate(sketches) if s and j != i]
        assert neardup.copies(mine, others) == []


def test_band_keys_agree_exactly_where_the_signatures_bands_do() -> None:
    sketch = neardup.sketch(WIRE)
    assert sketch is not None
    values = bytearray(sketch.signature)
    values[5 * neardup.ROWS * 4] ^= 1  # one value of the sixth band changed
    theirs = neardup.band_keys(bytes(values))
    assert neardup.band_keys(sketch.signature) == sketch.bands
    assert [a == b for a, b in zip(sketch.bands, theirs, strict=True)] == [
        band != 5 for band in range(neardup.BANDS)
    ]
