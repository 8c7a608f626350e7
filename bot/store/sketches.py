"""The store's side for near-duplicate reports: each matched item's MinHash signature and bands.

An item's signature is written with the item (one transaction). Its band rows, derived from
the signature, are written later in sorted batches (`flush_sketch_bands`): written at each
feed's commit, an item's 14 bands landed on 14 random pages of the band index, which the
first cycle paid in hundreds of MB of writes. Until a batch is written, the bands are looked
up in memory; a signature whose bands were lost with the process (a crash, a migration) is
still marked unbanded and indexed by the next flush, which the poller runs at each cycle's
start and end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.store.schema import in_chunks

if TYPE_CHECKING:
    from sqlite_utils import Database

_FLUSH_CHUNK = 5000  # signatures indexed per statement batch: bounds memory after a migration


@dataclass(frozen=True)
class SketchRow:
    """A stored item that shares an LSH band with a new one: a candidate copy."""

    item_id: int
    signature: bytes
    story_key: str
    rules: str  # the item's rules, as JSON
    text: str | None  # None once pruned


@dataclass
class PendingBands:
    """Band keys of the signatures written since the last flush: looked up here till then."""

    items: dict[int, list[int]] = field(default_factory=dict)  # band -> item ids
    count: int = 0  # signatures (an edited item's counts again)

    def add(self, item_id: int, bands: Sequence[int]) -> None:
        for band in bands:
            self.items.setdefault(band, []).append(item_id)
        self.count += 1

    def clear(self) -> None:
        self.items.clear()
        self.count = 0


BandKeys = Callable[[bytes], Sequence[int]]  # a signature's band keys (neardup.band_keys)
_SELECT = (
    "SELECT s.item_id, s.signature, i.story_key, i.rules, i.text FROM item_sketches s "
    "JOIN items i ON i.id = s.item_id "
)


class SketchStore:
    """Signature queries; mixed into Store, which provides the connection."""

    _query: Callable[..., list[tuple[Any, ...]]]
    transaction: Callable[..., Any]
    pending_bands: PendingBands  # Store sets it

    def stored_candidates(self, bands: Iterable[int]) -> dict[int, list[SketchRow]]:
        """Band key -> the items indexed under it in the database (one query per 300 keys, then
        each item's row once: the poller asks once per feed for all its new reports)."""
        items: dict[int, list[int]] = {}
        keys = sorted(set(bands))
        for chunk, marks in in_chunks(keys):
            for band, item_id in self._query(
                f"SELECT band, item_id FROM item_bands WHERE band IN ({marks})", chunk
            ):
                items.setdefault(band, []).append(item_id)
        rows = self._sketch_rows({i for ids in items.values() for i in ids})
        return {band: [rows[i] for i in ids if i in rows] for band, ids in items.items()}

    def sketch_candidates(
        self, bands: Sequence[int], stored: Mapping[int, list[SketchRow]] | None = None
    ) -> list[SketchRow]:
        """Items indexed under any of these band keys (each once): those in the database (from
        `stored`, a stored_candidates answer, when given) and those not flushed yet."""
        if stored is None:
            stored = self.stored_candidates(bands)
        found = {row.item_id: row for band in bands for row in stored.get(band, ())}
        pending = {i for band in bands for i in self.pending_bands.items.get(band, ())}
        found.update(self._sketch_rows(pending - set(found)))
        return list(found.values())

    def _sketch_rows(self, item_ids: set[int]) -> dict[int, SketchRow]:
        """The signature, story, rules and text of these items (those that still exist)."""
        found: dict[int, SketchRow] = {}
        for chunk, marks in in_chunks(sorted(item_ids)):
            for row in self._query(f"{_SELECT} WHERE s.item_id IN ({marks})", chunk):
                found[row[0]] = SketchRow(*row)
        return found

    def flush_sketch_bands(self, band_keys: BandKeys) -> int:
        """Write the band rows of every signature not indexed yet, in sorted batches; returns
        how many signatures were indexed."""
        done = 0
        while True:
            with self.transaction() as db:
                rows = db.execute(
                    "SELECT item_id, signature FROM item_sketches WHERE banded = 0 "
                    f"ORDER BY item_id LIMIT {_FLUSH_CHUNK}"
                ).fetchall()
                pairs = sorted((band, item) for item, signature in rows
                               for band in band_keys(signature))  # fmt: skip
                db.conn.executemany(
                    "INSERT OR IGNORE INTO item_bands (band, item_id) VALUES (?, ?)", pairs
                )
                if rows:  # the chunk holds every unbanded row up to its last id
                    db.execute(
                        "UPDATE item_sketches SET banded = 1 WHERE banded = 0 AND item_id <= ?",
                        (rows[-1][0],),
                    )
            done += len(rows)
            if len(rows) < _FLUSH_CHUNK:
                self.pending_bands.clear()
                return done

    def _write_sketch(
        self, db: Database, item_id: int, signature: bytes, bands: Sequence[int]
    ) -> None:
        """Write the item's signature (an edited item's replaces its earlier one: the earlier
        bands stay, and lead to this signature, which is what candidates are judged by); its
        bands are looked up in memory until the next flush writes them."""
        db.execute(
            "INSERT OR REPLACE INTO item_sketches (item_id, signature, banded) VALUES (?, ?, 0)",
            (item_id, signature),
        )
        self.pending_bands.add(item_id, bands)
