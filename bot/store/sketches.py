"""The store's side for near-duplicate reports: each matched item's MinHash signature and bands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlite_utils import Database

_CHUNK = 300


@dataclass(frozen=True)
class SketchRow:
    """A stored item that shares an LSH band with a new one: a candidate copy."""

    item_id: int
    signature: bytes
    story_key: str
    rules: str  # the item's rules, as JSON
    text: str | None  # None once pruned


class SketchStore:
    """Signature queries; mixed into Store, which provides the connection."""

    _query: Callable[..., list[tuple[Any, ...]]]

    def sketch_candidates(self, bands: Sequence[int]) -> list[SketchRow]:
        """Items indexed under any of these band keys (each once)."""
        found: dict[int, SketchRow] = {}
        keys = sorted(set(bands))
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in self._query(
                "SELECT s.item_id, s.signature, i.story_key, i.rules, i.text FROM item_sketches s "
                "JOIN items i ON i.id = s.item_id WHERE s.item_id IN "
                f"(SELECT item_id FROM item_bands WHERE band IN ({marks}))",
                chunk,
            ):
                found[row[0]] = SketchRow(*row)
        return list(found.values())

    @staticmethod
    def _write_sketch(
        db: Database, item_id: int, signature: bytes, bands: Sequence[int], *, new: bool
    ) -> None:
        """Write the item's sketch, replacing an edited item's earlier one."""
        if not new:
            db.execute("DELETE FROM item_bands WHERE item_id = ?", (item_id,))
        db.execute(
            "INSERT OR REPLACE INTO item_sketches (item_id, signature) VALUES (?, ?)",
            (item_id, signature),
        )
        db.conn.executemany(
            "INSERT INTO item_bands (band, item_id) VALUES (?, ?)",
            [(band, item_id) for band in bands],
        )
