"""The store's schema as ordered migrations (PRAGMA user_version), and the JSON forms of alerts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence, Sized
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlite_utils import Database

from bot.errors import StoreError
from bot.identity import normalize_link
from bot.models import Alert, Item, Match, Snippet, Window

Migration = Callable[[Database], None]

_V1 = [
    """CREATE TABLE feeds (
        name TEXT PRIMARY KEY, url TEXT NOT NULL, config_url TEXT NOT NULL,
        etag TEXT, last_modified TEXT, body_hash TEXT, title TEXT, added_at REAL,
        last_fetch REAL, last_success REAL, error_count INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, last_error_at REAL, not_found_since REAL, next_fetch REAL,
        disabled INTEGER NOT NULL DEFAULT 0)""",
    # one row per item version we know; rows are never deleted (tombstones), only pruned
    """CREATE TABLE items (
        id INTEGER PRIMARY KEY, feed TEXT NOT NULL, uid TEXT NOT NULL, story_key TEXT NOT NULL,
        content_hash TEXT NOT NULL, fingerprint TEXT NOT NULL DEFAULT '', title TEXT, link TEXT,
        published REAL, text TEXT, rules TEXT NOT NULL DEFAULT '[]',
        first_seen REAL NOT NULL, last_changed REAL NOT NULL,
        UNIQUE (feed, uid, content_hash))""",
    "CREATE INDEX items_story ON items (story_key)",
    "CREATE INDEX items_fingerprint ON items (fingerprint)",
    """CREATE TABLE matches (
        id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items (id),
        rule_id TEXT NOT NULL, story_key TEXT NOT NULL, snippets TEXT NOT NULL DEFAULT '{}',
        matched_at REAL NOT NULL, alerted_at REAL, UNIQUE (item_id, rule_id))""",
    "CREATE INDEX matches_story ON matches (story_key, rule_id)",
    """CREATE TABLE subscribers (
        chat_id INTEGER PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'private',
        title TEXT NOT NULL DEFAULT '', mode TEXT NOT NULL DEFAULT 'instant',
        digest_time TEXT NOT NULL DEFAULT '08:00', timezone TEXT NOT NULL DEFAULT 'UTC',
        muted_until REAL, active INTEGER NOT NULL DEFAULT 1, created REAL,
        deactivated_reason TEXT)""",
    """CREATE TABLE subscriptions (
        chat_id INTEGER NOT NULL REFERENCES subscribers (chat_id)
            ON UPDATE CASCADE ON DELETE CASCADE,
        rule_id TEXT NOT NULL, created REAL, PRIMARY KEY (chat_id, rule_id))""",
    "CREATE INDEX subscriptions_rule ON subscriptions (rule_id)",
    # one row per chat per story: the UNIQUE key is the never-twice promise
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, item_id INTEGER NOT NULL,
        story_key TEXT NOT NULL, alert TEXT NOT NULL, rules TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL, last_error TEXT, message_id INTEGER,
        created REAL NOT NULL, sent_at REAL, UNIQUE (chat_id, story_key))""",
    "CREATE INDEX outbox_due ON outbox (state, next_attempt)",
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL, finished REAL, stats TEXT)",
]


def _v1(db: Database) -> None:
    for statement in _V1:
        db.execute(statement)


def _v2(db: Database) -> None:
    # full text of teaser entries, one row per article (normalised link), pruned with its items;
    # retry_item names the item to match again when the first fetch failed (one retry)
    db.execute(
        """CREATE TABLE articles (
        key TEXT PRIMARY KEY, url TEXT NOT NULL, text TEXT, etag TEXT, last_modified TEXT,
        fetched_at REAL NOT NULL, tries INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        retry_item INTEGER, retry_at REAL)"""
    )
    db.execute("CREATE INDEX articles_retry ON articles (retry_item) WHERE retry_item IS NOT NULL")


def _feed_notices(db: Database) -> None:
    # admin notices decided by time failing, told once per incident across restarts
    db.execute("ALTER TABLE feeds ADD COLUMN failing_since REAL")
    db.execute("ALTER TABLE feeds ADD COLUMN notice TEXT NOT NULL DEFAULT ''")
    db.execute(
        "UPDATE feeds SET failing_since = coalesce(last_success, added_at) WHERE error_count > 0"
    )


def _message_series(db: Database) -> None:
    # a message sent in parts (a long alert, a digest): its texts and how many parts Telegram
    # confirmed, so a crash or a failure mid-series resumes at the part in flight; `rows` are
    # the outbox ids it settles (JSON list); `probe` takes health checks' test writes
    db.execute(
        """CREATE TABLE series (
        id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, rows TEXT NOT NULL,
        texts TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0, message_id INTEGER,
        created REAL NOT NULL)"""
    )
    db.execute("CREATE INDEX series_chat ON series (chat_id)")
    db.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, pad BLOB)")


def _feedback(db: Database) -> None:
    # readers' "Not relevant" marks: one row per reader, story and rule, self-contained (the
    # story's title, text and the sentence that fired are copied in) so that pruning item texts
    # or outbox rows never empties a mark; /stop deletes a chat's rows
    db.execute(
        """CREATE TABLE feedback (
        id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
        story_key TEXT NOT NULL, rule_id TEXT NOT NULL, outbox_id INTEGER, feed TEXT,
        title TEXT, link TEXT, published REAL, text TEXT, snippet TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL, UNIQUE (chat_id, user_id, story_key, rule_id))"""
    )
    db.execute("CREATE INDEX feedback_rule ON feedback (rule_id, created)")


def _identity_and_health(db: Database) -> None:
    # near-duplicate reports: a MinHash signature per matched item and its LSH band keys
    db.execute(
        "CREATE TABLE item_sketches (item_id INTEGER PRIMARY KEY REFERENCES items (id), "
        "signature BLOB NOT NULL)"
    )
    db.execute("CREATE TABLE item_bands (band INTEGER NOT NULL, item_id INTEGER NOT NULL)")
    db.execute("CREATE INDEX item_bands_band ON item_bands (band)")
    db.execute("CREATE INDEX item_bands_item ON item_bands (item_id)")
    # the body's words alone: a story whose headline, link and guid all changed at once
    db.execute("ALTER TABLE items ADD COLUMN body_fingerprint TEXT NOT NULL DEFAULT ''")
    # kept for matched items only (the others can never alert again), so the index stays small
    db.execute("CREATE INDEX items_body ON items (body_fingerprint) WHERE body_fingerprint != ''")
    # health: a throttled feed (429/503 with Retry-After) and its full-text failures, apart
    # from last_error, which stays the feed's own fetch or parse error
    # story keys from links are now blind to the scheme and to more tracking parameters: bring
    # the stored ones (and the article cache's keys) to the new form so old stories stay known
    db.conn.create_function("alertbot_story_key", 1, normalize_link, deterministic=True)
    for table, column in (("items", "story_key"), ("matches", "story_key"),
                          ("outbox", "story_key"), ("articles", "key")):  # fmt: skip
        db.execute(
            f"UPDATE OR IGNORE {table} SET {column} = alertbot_story_key({column}) "
            f"WHERE {column} LIKE 'http%'"
        )
    for column in (
        "throttled_until REAL",
        "throttle_reason TEXT",
        "fulltext_failures INTEGER NOT NULL DEFAULT 0",
        "fulltext_error TEXT",
        "fulltext_error_at REAL",
    ):
        db.execute(f"ALTER TABLE feeds ADD COLUMN {column}")


def _sketch_bands_in_batches(db: Database) -> None:
    # band rows are written in sorted batches after their items (a row per band per item at
    # each feed's commit touched 14 random pages: 380 MB per first cycle), into one b-tree
    # (no rowid table, no index by item: an edited item's old rows stay, harmless, as every
    # candidate is checked against its current signature), under new keys (mixed in numpy,
    # not hashed band by band): every signature is indexed anew by the poller's first flush,
    # as after a crash; the partial index finds those left to write
    db.execute("DROP TABLE item_bands")
    db.execute(
        "CREATE TABLE item_bands (band INTEGER NOT NULL, item_id INTEGER NOT NULL, "
        "PRIMARY KEY (band, item_id)) WITHOUT ROWID"
    )
    db.execute("ALTER TABLE item_sketches ADD COLUMN banded INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX item_sketches_unbanded ON item_sketches (item_id) WHERE banded = 0")


# Append new migrations at the end; never edit one that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    _v1,
    _v2,
    _feed_notices,
    _message_series,
    _feedback,
    _identity_and_health,
    _sketch_bands_in_batches,
)


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Run the migrations this database has not seen, each in its own transaction."""
    while (version := _version(db, len(migrations))) < len(migrations):
        # BEGIN IMMEDIATE takes the write lock before the version is read again, so two
        # processes opening a fresh database never both run the same migration
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            version = _version(db, len(migrations))
            if version < len(migrations):
                migrations[version](db)
                db.execute(f"PRAGMA user_version = {version + 1}")
            db.conn.execute("COMMIT")
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
    return len(migrations)


def _version(db: Database, known: int) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > known:
        raise StoreError(
            f"the database is at schema version {version}, newer than this alertbot knows "
            f"({known}): upgrade alertbot, or point it at another database"
        )
    return version


IN_CHUNK = 300  # values per `IN (...)`: SQLite's limit on bound parameters is far above this
T = TypeVar("T")


def in_chunks(values: Sequence[T]) -> Iterator[tuple[Sequence[T], str]]:
    """`values` in slices of at most IN_CHUNK, each with its placeholders ("?, ?, ?")."""
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        yield chunk, placeholders(chunk)


def placeholders(values: Sized) -> str:
    return ", ".join("?" * len(values))


# -- JSON forms ------------------------------------------------------------------------------


def item_from_row(
    feed: str,
    uid: str,
    story_key: str,
    title: str | None,
    link: str | None,
    published: float | None,
    text: str,
    content_hash: str,
) -> Item:
    """An Item from the items table's columns, in the table's order."""
    when = datetime.fromtimestamp(published, UTC) if published is not None else None
    return Item(feed, uid, story_key, title or "", link or "", when, text, content_hash)


def item_rules(text: str | None) -> frozenset[str]:
    return frozenset(json.loads(text or "[]"))


def item_to_json(item: Item) -> dict[str, Any]:
    return {
        "feed": item.feed,
        "uid": item.uid,
        "story_key": item.story_key,
        "title": item.title,
        "link": item.link,
        "published": item.published.isoformat() if item.published else None,
        "text": item.text,
        "content_hash": item.content_hash,
    }


def item_from_json(data: dict[str, Any]) -> Item:
    published = data.get("published")
    return Item(**{**data, "published": datetime.fromisoformat(published) if published else None})


def match_to_json(match: Match) -> dict[str, Any]:
    return {
        "rule_id": match.rule_id,
        "title": match.title,
        "level": match.level,
        "windows": [[w.field, w.start, w.end] for w in match.windows],
        "terms": list(match.terms),
        "snippets": [
            {"text": s.text, "highlights": [list(h) for h in s.highlights]} for s in match.snippets
        ],
    }


def match_from_json(data: dict[str, Any]) -> Match:
    return Match(
        rule_id=data["rule_id"],
        title=data["title"],
        level=data["level"],
        windows=tuple(Window(f, s, e) for f, s, e in data.get("windows", [])),
        terms=tuple(data.get("terms", [])),
        snippets=tuple(
            Snippet(s["text"], tuple((a, b) for a, b in s.get("highlights", [])))
            for s in data.get("snippets", [])
        ),
    )


def alert_to_json(alert: Alert) -> str:
    """The alert as a JSON document (what an outbox row holds)."""
    return json.dumps(
        {"item": item_to_json(alert.item), "matches": [match_to_json(m) for m in alert.matches]},
        ensure_ascii=False,
    )


def alert_from_json(text: str) -> Alert:
    data = json.loads(text)
    return Alert(
        item=item_from_json(data["item"]),
        matches=tuple(match_from_json(m) for m in data["matches"]),
    )
