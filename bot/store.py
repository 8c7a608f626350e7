"""SQLite via sqlite-utils: the schema, its migrations, the run lock and every query."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlite_utils import Database

from bot.errors import AlreadyRunning, StoreError
from bot.models import Feed, Item, Match
from bot.storearticles import ArticleRow, ArticleStore
from bot.storechats import ChatStore, OutboxRow, Subscriber
from bot.storeschema import (
    MIGRATIONS,
    Migration,
    alert_from_json,
    alert_to_json,
    item_rules,
    match_to_json,
    migrate,
)

__all__ = [
    "MIGRATIONS",
    "ArticleRow",
    "FeedState",
    "KnownItem",
    "OutboxRow",
    "Store",
    "Subscriber",
    "alert_from_json",
    "alert_to_json",
    "migrate",
]

_CHUNK = 300  # SQLite's default limit on bound parameters is far above this


@dataclass(frozen=True)
class FeedState:
    """A feed's row: where to fetch it, its validators and its health."""

    name: str
    url: str  # current address (follows permanent redirects)
    config_url: str  # the address in the configuration
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    title: str | None = None
    last_fetch: float | None = None
    last_success: float | None = None
    error_count: int = 0  # consecutive errors
    last_error: str | None = None
    last_error_at: float | None = None
    not_found_since: float | None = None
    next_fetch: float | None = None
    disabled: bool = False
    items: int = 0  # items seen (tombstones included)


@dataclass(frozen=True)
class KnownItem:
    """What the store remembers of one item version (enough to decide what is new)."""

    id: int
    feed: str
    uid: str
    story_key: str
    content_hash: str
    fingerprint: str
    rules: frozenset[str]  # rules this version matched


class Store(ChatStore, ArticleStore):
    """One SQLite connection, used under a lock so any thread may call it (one at a time)."""

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.RLock()
        self._lock_file: IO[str] | None = None
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
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self.db.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._query1("PRAGMA user_version")[0])

    def acquire_run_lock(self) -> None:
        """Hold `<db>.lock` for this process's lifetime; raise AlreadyRunning if another has it.

        An flock dies with its process, so a SIGKILL never leaves a stale lock behind.
        """
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(
                f"another alertbot process (pid {pid}) is already running on {self.path}; "
                "stop it first, or give this one its own database (ALERTBOT_DATABASE)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def check_writable(self) -> None:
        """Raise StoreError when the database cannot be written (for health checks)."""
        try:
            with self._lock, self.db.atomic():
                self.db.execute("UPDATE runs SET id = id WHERE 0")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: the database is not writable: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        with self._lock, self.db.atomic():
            yield self.db

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def _query1(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        with self._lock:
            return self.db.execute(sql, params).fetchone()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.transaction() as db:
            return db.execute(sql, params).rowcount

    # -- feeds -----------------------------------------------------------------------------

    def sync_feeds(self, feeds: Iterable[Feed]) -> None:
        """Add configured feeds; a feed whose configured URL changed starts again from it."""
        with self.transaction() as db:
            for feed in feeds:
                db.execute(
                    "INSERT OR IGNORE INTO feeds (name, url, config_url, added_at) "
                    "VALUES (?, ?, ?, ?)",
                    (feed.name, feed.url, feed.url, self.clock()),
                )
                db.execute(
                    "UPDATE feeds SET url = ?, config_url = ?, etag = NULL, last_modified = NULL, "
                    "body_hash = NULL, disabled = 0, error_count = 0, not_found_since = NULL, "
                    "next_fetch = NULL WHERE name = ? AND config_url != ?",
                    (feed.url, feed.url, feed.name, feed.url),
                )

    def feed_health(self) -> list[FeedState]:
        """Every feed's row, with the number of items seen."""
        return self._feed_states("")

    def feed_state(self, name: str) -> FeedState | None:
        states = self._feed_states("WHERE f.name = ?", (name,))
        return states[0] if states else None

    def _feed_states(self, where: str, params: Sequence[Any] = ()) -> list[FeedState]:
        names = [f for f in FeedState.__dataclass_fields__ if f != "items"]
        columns = ", ".join(f"f.{n}" for n in names)
        sql = (
            f"SELECT {columns}, (SELECT count(*) FROM items i WHERE i.feed = f.name) "
            f"FROM feeds f {where} ORDER BY f.name"
        )
        out = []
        for row in self._query(sql, params):
            values = dict(zip(names, row, strict=False))
            values["disabled"] = bool(values["disabled"])
            out.append(FeedState(**values, items=row[-1]))
        return out

    def due_feeds(
        self, feeds: Iterable[Feed], now: float, force: bool = False
    ) -> list[tuple[Feed, FeedState]]:
        """Configured, enabled, not disabled feeds whose next fetch time has come (or all)."""
        states = {s.name: s for s in self.feed_health()}
        due = []
        for feed in feeds:
            state = states.get(feed.name)
            if not feed.enabled or state is None or state.disabled:
                continue
            if force or state.next_fetch is None or state.next_fetch <= now:
                due.append((feed, state))
        return due

    def record_fetch(self, name: str, **changes: Any) -> None:
        """A successful fetch (or 304): validators, hash and schedule; the error count resets."""
        allowed = {"etag", "last_modified", "body_hash", "title", "next_fetch", "url"}
        if unknown := set(changes) - allowed:
            raise ValueError(f"record_fetch: unknown columns {sorted(unknown)}")
        now = self.clock()
        sets = dict(changes, last_fetch=now, last_success=now, error_count=0)
        sets |= {"not_found_since": None}
        assignments = ", ".join(f"{k} = ?" for k in sets)
        self._write(f"UPDATE feeds SET {assignments} WHERE name = ?", [*sets.values(), name])

    def record_feed_error(
        self,
        name: str,
        error: str,
        *,
        next_fetch: float,
        status: int | None = None,
        count: bool = True,
    ) -> FeedState:
        """Record a failure on the feed; returns the updated state (404 streak included)."""
        now = self.clock()
        self._write(
            "UPDATE feeds SET last_fetch = ?, last_error = ?, last_error_at = ?, next_fetch = ?, "
            "error_count = error_count + ?, "
            "not_found_since = CASE WHEN ? = 404 THEN coalesce(not_found_since, ?) ELSE NULL END "
            "WHERE name = ?",
            (now, error, now, next_fetch, 1 if count else 0, status, now, name),
        )
        state = self.feed_state(name)
        assert state is not None, f"feed {name!r} is not in the store (sync_feeds first)"
        return state

    def disable_feed(self, name: str, reason: str) -> None:
        """Stop fetching this feed (until its configured URL changes); say why in last_error."""
        self._write(
            "UPDATE feeds SET disabled = 1, last_error = ?, last_error_at = ?, next_fetch = NULL "
            "WHERE name = ?",
            (reason, self.clock(), name),
        )

    def set_feed_url(self, name: str, url: str) -> None:
        """A permanent redirect: fetch the new address from now on."""
        self._write("UPDATE feeds SET url = ? WHERE name = ?", (url, name))

    # -- items -----------------------------------------------------------------------------

    def known_items(
        self, feed: str, uids: Iterable[str], story_keys: Iterable[str], fingerprints: Iterable[str]
    ) -> list[KnownItem]:
        """Rows that may be the same item: same uid in this feed, or same story/text anywhere."""
        found: dict[int, KnownItem] = {}
        lookups = [
            ("feed = ? AND uid", [feed], uids),
            ("story_key", [], story_keys),
            ("fingerprint", [], fingerprints),
        ]
        for column, prefix, values in lookups:
            values = sorted({v for v in values if v})
            for start in range(0, len(values), _CHUNK):
                chunk = values[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                for row in self._query(
                    "SELECT id, feed, uid, story_key, content_hash, fingerprint, rules FROM items "
                    f"WHERE {column} IN ({marks})",
                    [*prefix, *chunk],
                ):
                    found[row[0]] = KnownItem(*row[:6], rules=item_rules(row[6]))
        return sorted(found.values(), key=lambda k: k.id)

    def story_alerts(self, story_keys: Iterable[str]) -> dict[tuple[str, str], float]:
        """(story_key, rule_id) -> when that rule last alerted that story."""
        keys = sorted(set(story_keys))
        out: dict[tuple[str, str], float] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
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
    ) -> int | None:
        """Item + matches + outbox rows in one transaction; None if this version is known.

        `matches` are every rule the item matches now; `alerting` the ones that alert (a
        subset): those get `alerted_at` and one outbox row per subscribed chat per story
        (unless `enqueue` is off: alerts printed instead of sent are not owed later).
        """
        now = self.clock()
        with self.transaction() as db:
            item_id = self._write_item_row(db, now, item, matches, fingerprint, update_id)
            if item_id is None:
                return None
            alerting_ids = {m.rule_id for m in alerting}
            for match in matches:
                db.execute(
                    "INSERT INTO matches (item_id, rule_id, story_key, snippets, matched_at, "
                    "alerted_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (item_id, rule_id) DO "
                    "UPDATE SET snippets = excluded.snippets, alerted_at = "
                    "coalesce(excluded.alerted_at, matches.alerted_at)",
                    (
                        item_id,
                        match.rule_id,
                        item.story_key,
                        json.dumps(match_to_json(match)),
                        now,
                        now if match.rule_id in alerting_ids else None,
                    ),
                )
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
        )
        if update_id is not None:
            try:
                db.execute(
                    "UPDATE items SET feed = ?, uid = ?, story_key = ?, content_hash = ?, "
                    "fingerprint = ?, title = ?, link = ?, published = ?, text = ?, rules = ?, "
                    "last_changed = ? WHERE id = ?",
                    (*values, now, update_id),
                )
                return update_id
            except sqlite3.IntegrityError:
                return None  # another row already holds exactly this version
        cursor = db.execute(
            "INSERT OR IGNORE INTO items (feed, uid, story_key, content_hash, fingerprint, title, "
            "link, published, text, rules, first_seen, last_changed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
