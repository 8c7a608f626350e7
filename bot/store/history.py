"""Stored items and their matches read back for backtests: read-only, short reads, no run lock.

The connection is opened with SQLite's `mode=ro` URI, so a backtest can never write, and it
works next to the running bot: under WAL a reader never blocks the writer. Items are read in
batches of a few thousand, each batch in its own short read transaction, so no snapshot is held
for the whole scan (which would keep the WAL file from being checkpointed meanwhile).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bot.errors import StoreError
from bot.identity import normalize_link
from bot.models import Item
from bot.rules.backtest import StoredMatch
from bot.store.schema import in_chunks, item_from_row, match_from_json

BATCH = 2000


@dataclass(frozen=True)
class StoredItem:
    """One stored item version with its text, the article text fetched for it, and its matches."""

    id: int
    item: Item
    seen: float  # when this version was recorded
    article: str | None  # the full text fetched for a teaser (the poller matched that)
    matches: tuple[StoredMatch, ...]


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the database at `path` (StoreError when there is none)."""
    if not path.is_file():
        raise StoreError(f"no database at {path}: give --config or ALERTBOT_DATABASE")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10.0, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("SELECT id FROM items LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot read the database: {exc}") from exc
    return conn


def stored_items(
    conn: sqlite3.Connection,
    since: float,
    batch: int = BATCH,
    after_id: int = 0,
    until_id: int | None = None,
) -> Iterator[StoredItem]:
    """Every item version recorded since `since` whose text is kept, oldest first.

    `after_id` and `until_id` bound the row ids (to split one scan between processes).
    """
    last, until = after_id, until_id if until_id is not None else 2**63 - 1
    with _read(conn):
        has_articles = conn.execute(
            "SELECT 1 FROM articles WHERE text IS NOT NULL LIMIT 1"
        ).fetchone()
    while True:
        with _read(conn):
            rows = conn.execute(
                "SELECT id, feed, uid, story_key, title, link, published, text, content_hash, "
                "last_changed FROM items WHERE id > ? AND id <= ? AND last_changed >= ? "
                "AND text IS NOT NULL ORDER BY id LIMIT ?",
                (last, until, since, batch),
            ).fetchall()
            if not rows:
                return
            ids = [r[0] for r in rows]
            matches = _matches(conn, ids)
            # most feeds are not teasers: skip normalising links when no article is stored
            keys = [normalize_link(r[5]) if r[5] else "" for r in rows] if has_articles else []
            articles = _articles(conn, set(keys) - {""})
        for n, row in enumerate(rows):
            item_id, feed, uid, story, title, link, published, text, content_hash, seen = row
            item = item_from_row(feed, uid, story, title, link, published, text, content_hash)
            article = articles.get(keys[n]) if keys else None
            yield StoredItem(item_id, item, seen, article, tuple(matches.get(item_id, ())))
        last = ids[-1]


def id_bounds(conn: sqlite3.Connection, since: float, parts: int, least: int = 1) -> list[int]:
    """Row ids that cut the items since `since` into up to `parts` runs of about the same size,
    each of at least `least` items (starting a process costs more than a few items)."""
    with _read(conn):
        total = conn.execute(
            "SELECT count(*) FROM items WHERE last_changed >= ? AND text IS NOT NULL", (since,)
        ).fetchone()[0]
        parts = max(1, min(parts, total // max(least, 1)))
        cuts = [0]
        for n in range(1, parts):
            row = conn.execute(
                "SELECT id FROM items WHERE last_changed >= ? AND text IS NOT NULL "
                "ORDER BY id LIMIT 1 OFFSET ?",
                (since, total * n // parts),
            ).fetchone()
            if row is not None and row[0] > cuts[-1]:
                cuts.append(row[0] - 1)
    return cuts


class _read:
    """One short read transaction (a consistent snapshot for one batch)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        try:
            self.conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the database: {exc}") from exc

    def __exit__(self, *exc_info: object) -> None:
        self.conn.execute("COMMIT")


def _matches(conn: sqlite3.Connection, ids: list[int]) -> dict[int, list[StoredMatch]]:
    out: dict[int, list[StoredMatch]] = {}
    lo, hi = ids[0], ids[-1]  # ids are sorted: a range scan beats a long IN list
    for item_id, rule_id, snippets in conn.execute(
        "SELECT item_id, rule_id, snippets FROM matches WHERE item_id BETWEEN ? AND ?", (lo, hi)
    ):
        out.setdefault(item_id, []).append(StoredMatch(rule_id, snippets))
    return out


def _articles(conn: sqlite3.Connection, keys: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk, marks in in_chunks(sorted(keys)):
        out.update(
            conn.execute(
                f"SELECT key, text FROM articles WHERE text IS NOT NULL AND key IN ({marks})",
                chunk,
            ).fetchall()
        )
    return out


def stored_snippet(text: str | None) -> str:
    """The first snippet of a `matches` row's JSON, terms marked **like this** ('' if none)."""
    try:
        match = match_from_json(json.loads(text or "{}"))
    except (ValueError, KeyError, TypeError):
        return ""  # an unreadable row still counts as a match; it just shows no sentence
    return match.snippets[0].marked() if match.snippets else ""
