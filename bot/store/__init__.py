"""SQLite via sqlite-utils: the schema, its migrations, the run lock and every query."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from bot.errors import StoreError, StoreUnwritable
from bot.identity import body_fingerprint
from bot.models import Item, KnownItem, Match
from bot.store.articles import ArticleRow, ArticleStore
from bot.store.chats import ChatStore, OutboxRow, Series, Subscriber
from bot.store.feedback import FeedbackStore, MarkedStory, SentAlert
from bot.store.feeds import FeedState, FeedStore
from bot.store.guard import (
    GONE,
    RunLock,
    corrupt_error,
    is_corrupt,
    lost_database,
    quick_check,
    unwritable_reason,
)
from bot.store.schema import (
    IN_CHUNK,
    MIGRATIONS,
    Migration,
    alert_from_json,
    alert_to_json,
    in_chunks,
    item_rules,
    match_to_json,
    migrate,
    placeholders,
)
from bot.store.sketches import PendingBands, SketchRow, SketchStore

__all__ = [
    "MIGRATIONS",
    "ArticleRow",
    "FeedState",
    "KnownItem",
    "MarkedStory",
    "OutboxRow",
    "SentAlert",
    "Series",
    "SketchRow",
    "Store",
    "Subscriber",
    "alert_from_json",
    "alert_to_json",
    "migrate",
]

log = logging.getLogger(__name__)


class Store(FeedStore, ChatStore, ArticleStore, FeedbackStore, SketchStore):
    """One SQLite connection, used under a lock so any thread may call it (one at a time)."""

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.path = Path(path)
        if lost := lost_database(self.path):
            raise StoreError(lost)  # a fresh, empty file would forget every subscriber
        self.clock = clock
        self._lock = threading.RLock()
        self.run_lock = RunLock(self.path)
        self.write_problem: str | None = None  # set while writes fail; cleared by the next success
        self.moved_problem: str | None = None  # set for good when the file was deleted/replaced
        self.pending_bands = PendingBands()  # see SketchStore
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
            self.db = Database(conn)
            self.db.enable_wal()
            # with WAL, NORMAL loses no commit to a crashed process, only (the last few) to a
            # power cut, and those come back as feeds whose validators were not saved either
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            migrate(self.db, migrations)
        except sqlite3.Error as exc:
            if is_corrupt(exc):
                raise corrupt_error(self.path, exc) from None
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self.db.close()
            self.run_lock.release()  # after SQLite's close: closing our fd drops POSIX locks

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._query1("PRAGMA user_version")[0])

    def acquire_run_lock(self) -> None:
        """Hold the database file for this process's lifetime; raise AlreadyRunning if taken.

        The lock is an flock on the database file itself: a hard link or another path to the
        same file finds it taken, and it dies with its process (no stale lock after SIGKILL).
        """
        self.run_lock.acquire()

    def check_integrity(self) -> None:
        """Raise StoreCorrupt (one line, with how to recover) when pages are damaged."""
        with self._lock:
            quick_check(self.db.conn, self.path)

    def check_writable(self) -> None:
        """Raise StoreError unless a real (growing) write commits now (for health checks)."""
        try:
            self.probe_write()
        except StoreUnwritable as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    def probe_write(self) -> None:
        """Commit a write that needs a new page, as recording an alert would.

        Only this ends a write problem: on a full disk some writes still succeed (those that
        fit in place), and sending must not resume, and stop again, with each of them.
        """
        with self.transaction() as db:
            db.execute("INSERT INTO probe (pad) VALUES (zeroblob(8192))")
            db.execute("DELETE FROM probe")
        if self.write_problem is not None:
            log.warning("the database is writable again: %s is over", self.write_problem)
            self.write_problem = None
            self.run_lock.write_status("ok")

    def problem(self) -> str | None:
        """Why nothing may be sent now (the database cannot record it), or None."""
        if self.moved_problem is None and (moved := self.run_lock.moved()):
            self.moved_problem = moved
            log.error("%s: refusing to write to it; restore it and restart alertbot", moved)
            self.run_lock.write_status(f"{GONE}: {moved}")
        return self.moved_problem or self.write_problem

    def _failed_write(self, exc: sqlite3.Error) -> Exception:
        """The error to raise for a failed statement; notes an unwritable database once."""
        if is_corrupt(exc):
            return corrupt_error(self.path, exc)
        reason = unwritable_reason(exc)
        if reason is None:
            return exc
        problem = f"database not writable: {reason}"
        if self.write_problem is None:
            log.error("%s (%s): sending stops until writes succeed again", problem, self.path)
            self.run_lock.write_status(problem)
        self.write_problem = problem
        return StoreUnwritable(f"{problem} ({exc})")

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """All or nothing. Inside another transaction, part of it: the outer one commits or
        rolls back everything. (sqlite-utils would open a savepoint, under a new random name
        each time, which SQLite compiles anew: that was 40 % of storing a new feed.)

        Raises StoreUnwritable when the file system refuses the write (and for good once the
        file was deleted or replaced: writing on would go to a file nobody will read again).
        """
        with self._lock:
            if self.db.conn.in_transaction:
                yield self.db
                return
            if self.problem() and self.moved_problem:
                raise StoreUnwritable(self.moved_problem)
            try:
                with self.db.atomic():
                    yield self.db
            except sqlite3.Error as exc:
                raise self._failed_write(exc) from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self.db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if is_corrupt(exc):
                    raise corrupt_error(self.path, exc) from None
                raise

    def _query1(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        rows = self._query(sql, params)
        return rows[0] if rows else None  # type: ignore[return-value]

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.transaction() as db:
            return db.execute(sql, params).rowcount

    # -- items -----------------------------------------------------------------------------

    def known_items(
        self,
        feed: str,
        uids: Iterable[str],
        story_keys: Iterable[str],
        fingerprints: Iterable[str],
        bodies: Iterable[str] = (),
    ) -> list[KnownItem]:
        """Rows that may be the same item: same uid in this feed, or same story/text anywhere.

        One query per 300 values of each kind: an unchanged entry's row meets three or four of
        them, and is read (text and all) once.
        """
        lookups = [
            ("feed = ? AND uid", [feed], uids),
            ("story_key", [], story_keys),
            ("fingerprint", [], fingerprints),
            # the condition lets SQLite use the partial index (it holds matched items only)
            ("body_fingerprint != '' AND body_fingerprint", [], bodies),
        ]
        wanted = [(column, prefix, sorted({v for v in values if v}))
                  for column, prefix, values in lookups]  # fmt: skip
        found: dict[int, KnownItem] = {}
        for start in range(0, max(len(values) for _, _, values in wanted), IN_CHUNK):
            ids, params = [], []
            for column, prefix, values in wanted:
                if chunk := values[start : start + IN_CHUNK]:
                    ids.append(f"SELECT id FROM items WHERE {column} IN ({placeholders(chunk)})")
                    params += [*prefix, *chunk]
            for row in self._query(
                "SELECT id, feed, uid, story_key, content_hash, fingerprint, rules, title, text, "
                f"body_fingerprint FROM items WHERE id IN ({' UNION '.join(ids)})",
                params,
            ):
                if row[0] not in found:
                    found[row[0]] = KnownItem(
                        *row[:6], rules=item_rules(row[6]), title=row[7], text=row[8], body=row[9]
                    )
        return sorted(found.values(), key=lambda k: k.id)

    def story_alerts(self, story_keys: Iterable[str]) -> dict[tuple[str, str], float]:
        """(story_key, rule_id) -> when that rule last alerted that story."""
        keys = sorted(set(story_keys))
        out: dict[tuple[str, str], float] = {}
        for chunk, marks in in_chunks(keys):
            for story, rule, at in self._query(
                "SELECT story_key, rule_id, max(alerted_at) FROM matches "
                f"WHERE alerted_at IS NOT NULL AND story_key IN ({marks}) GROUP BY 1, 2",
                chunk,
            ):
                out[(story, rule)] = at
        return out

    def record_item(
        self,
        item: Item,
        matches: Sequence[Match],
        alerting: Sequence[Match] = (),
        *,
        fingerprint: str = "",
        update_id: int | None = None,
        enqueue: bool = True,
        sketch: tuple[bytes, Sequence[int]] | None = None,
        body: str | None = None,
    ) -> int | None:
        """Item + matches + outbox rows in one transaction; None if this version is known.

        `sketch` (signature, band keys) indexes the item for near-duplicate lookups; `body` is
        its body fingerprint (computed here when not given).

        `matches` are every rule the item matches now; `alerting` the ones that alert (a
        subset): those get `alerted_at` and one outbox row per subscribed chat per story
        (unless `enqueue` is off: alerts printed instead of sent are not owed later).
        """
        now = self.clock()
        with self.transaction() as db:
            if body is None:
                body = body_fingerprint(item.text)
            item_id = self._write_item_row(db, now, item, matches, fingerprint, update_id, body)
            if item_id is None:
                return None
            if sketch is not None:
                self._write_sketch(db, item_id, *sketch)
            alerting_ids = {m.rule_id for m in alerting}
            db.conn.executemany(
                "INSERT INTO matches (item_id, rule_id, story_key, snippets, matched_at, "
                "alerted_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (item_id, rule_id) DO "
                "UPDATE SET snippets = excluded.snippets, alerted_at = "
                "coalesce(excluded.alerted_at, matches.alerted_at)",
                [
                    (item_id, m.rule_id, item.story_key, json.dumps(match_to_json(m)), now,
                     now if m.rule_id in alerting_ids else None)
                    for m in matches
                ],
            )  # fmt: skip
            if alerting and enqueue:
                self._enqueue(db, now, item_id, item, alerting)
            return item_id

    def _write_item_row(
        self,
        db: Database,
        now: float,
        item: Item,
        matches: Sequence[Match],
        fingerprint: str,
        update_id: int | None,
        body: str,
    ) -> int | None:
        published = item.published.timestamp() if item.published else None
        values = (
            item.feed,
            item.uid,
            item.story_key,
            item.content_hash,
            fingerprint,
            item.title,
            item.link,
            published,
            item.text,
            json.dumps(sorted({m.rule_id for m in matches})),
            body,
        )
        if update_id is not None:
            try:
                db.execute(
                    "UPDATE items SET feed = ?, uid = ?, story_key = ?, content_hash = ?, "
                    "fingerprint = ?, title = ?, link = ?, published = ?, text = ?, rules = ?, "
                    "body_fingerprint = ?, last_changed = ? WHERE id = ?",
                    (*values, now, update_id),
                )
                return update_id
            except sqlite3.IntegrityError:
                return None  # another row already holds exactly this version
        cursor = db.execute(
            "INSERT OR IGNORE INTO items (feed, uid, story_key, content_hash, fingerprint, title, "
            "link, published, text, rules, body_fingerprint, first_seen, last_changed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, now, now),
        )
        # after an ignored duplicate, lastrowid is stale: only rowcount says the row is new
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def prune(self, older_than_seconds: float) -> int:
        """Drop bodies (and fetched article texts) older than this; ids and hashes stay forever."""
        cutoff = self.clock() - older_than_seconds
        self.prune_articles(cutoff)
        return self._write(
            "UPDATE items SET text = NULL, title = NULL WHERE first_seen < ? AND text IS NOT NULL",
            (cutoff,),
        )

    def item_count(self, feed: str | None = None) -> int:
        if feed is None:
            return int(self._query1("SELECT count(*) FROM items")[0])
        return int(self._query1("SELECT count(*) FROM items WHERE feed = ?", (feed,))[0])

    # -- run status ------------------------------------------------------------------------

    def record_cycle(self, started: float, finished: float, stats: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (started, finished, stats) VALUES (?, ?, ?)",
                (started, finished, json.dumps(stats, default=str)),
            )
            db.execute("DELETE FROM runs WHERE id <= (SELECT max(id) FROM runs) - 100")

    def last_cycle(self) -> dict[str, Any] | None:
        row = self._query1("SELECT started, finished, stats FROM runs ORDER BY id DESC LIMIT 1")
        if row is None:
            return None
        return {"started": row[0], "finished": row[1], "stats": json.loads(row[2] or "{}")}
