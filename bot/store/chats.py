"""The store's side for Telegram: subscribers, subscriptions and the outbox (a Store mixin)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.logs import redact
from bot.models import Alert, Item, Match
from bot.store.schema import alert_from_json, alert_to_json, placeholders

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from sqlite_utils import Database

MODES = ("instant", "digest")


@dataclass(frozen=True)
class Subscriber:
    """A chat that receives alerts."""

    chat_id: int
    kind: str = "private"  # private | group | supergroup | channel
    title: str = ""
    mode: str = "instant"  # instant | digest
    digest_time: str = "08:00"  # HH:MM in `timezone`
    timezone: str = "UTC"
    muted_until: float | None = None
    active: bool = True


@dataclass(frozen=True)
class OutboxRow:
    """One message owed to one chat: an alert for one story."""

    id: int
    chat_id: int
    alert: Alert
    state: str  # pending | sent | failed | cancelled
    attempts: int
    next_attempt: float
    last_error: str | None
    created: float = 0.0  # when the story was queued: the digest it belongs to follows from it


@dataclass(frozen=True)
class Series:
    """A message going out in parts: the rows it settles, its texts, the parts confirmed."""

    id: int
    chat_id: int
    row_ids: tuple[int, ...]
    texts: tuple[str, ...]  # Telegram HTML, one per message
    sent: int  # parts Telegram confirmed
    message_id: int | None  # the first part's


class ChatStore:
    """Subscribers and outbox queries; mixed into Store, which provides the connection."""

    clock: Callable[[], float]
    transaction: Callable[[], AbstractContextManager[Database]]
    _query: Callable[..., list[tuple[Any, ...]]]
    _write: Callable[..., int]

    # -- subscribers -----------------------------------------------------------------------

    def add_subscriber(self, chat_id: int, kind: str = "private", title: str = "") -> Subscriber:
        """Create the subscriber, or reactivate it (keeping its settings)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO subscribers (chat_id, kind, title, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (chat_id) DO UPDATE SET kind = excluded.kind, "
                "title = excluded.title, active = 1, deactivated_reason = NULL",
                (chat_id, kind, title, self.clock()),
            )
        subscriber = self.get_subscriber(chat_id)
        assert subscriber is not None
        return subscriber

    def get_subscriber(self, chat_id: int) -> Subscriber | None:
        rows = self._query(
            "SELECT chat_id, kind, title, mode, digest_time, timezone, muted_until, active "
            "FROM subscribers WHERE chat_id = ?",
            (chat_id,),
        )
        return Subscriber(*rows[0][:7], active=bool(rows[0][7])) if rows else None

    def subscribers(self, active_only: bool = False) -> list[Subscriber]:
        where = "WHERE active = 1" if active_only else ""
        return [
            Subscriber(*r[:7], active=bool(r[7]))
            for r in self._query(
                "SELECT chat_id, kind, title, mode, digest_time, timezone, muted_until, active "
                f"FROM subscribers {where} ORDER BY chat_id"
            )
        ]

    def set_delivery_mode(self, chat_id: int, mode: str, digest_time: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self._write(
            "UPDATE subscribers SET mode = ?, digest_time = coalesce(?, digest_time) "
            "WHERE chat_id = ?",
            (mode, digest_time, chat_id),
        )

    def set_timezone(self, chat_id: int, tz: str) -> None:
        self._write("UPDATE subscribers SET timezone = ? WHERE chat_id = ?", (tz, chat_id))

    def mute(self, chat_id: int, until: float | None) -> None:
        """Mute until a time (None unmutes)."""
        self._write("UPDATE subscribers SET muted_until = ? WHERE chat_id = ?", (until, chat_id))

    def deactivate(self, chat_id: int, reason: str) -> int:
        """Stop sending to this chat; its pending outbox rows are cancelled (count returned)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE subscribers SET active = 0, deactivated_reason = ? WHERE chat_id = ?",
                (redact(reason), chat_id),
            )
            db.execute("DELETE FROM series WHERE chat_id = ?", (chat_id,))
            return db.execute(
                "UPDATE outbox SET state = 'cancelled', last_error = ? "
                "WHERE chat_id = ? AND state = 'pending'",
                (redact(reason), chat_id),
            ).rowcount

    def delete_subscriber(self, chat_id: int) -> None:
        """Forget the chat entirely: subscriber, subscriptions, outbox rows and feedback."""
        with self.transaction() as db:
            db.execute("DELETE FROM feedback WHERE chat_id = ?", (chat_id,))
            db.execute("DELETE FROM outbox WHERE chat_id = ?", (chat_id,))
            db.execute("DELETE FROM series WHERE chat_id = ?", (chat_id,))
            db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,))
            db.execute("DELETE FROM subscribers WHERE chat_id = ?", (chat_id,))

    def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: its subscriber, subscriptions and outbox move along."""
        with self.transaction() as db:
            exists = db.execute(
                "SELECT 1 FROM subscribers WHERE chat_id = ?", (new_chat_id,)
            ).fetchone()
            if exists:
                db.execute(
                    "INSERT OR IGNORE INTO subscriptions (chat_id, rule_id, created) "
                    "SELECT ?, rule_id, created FROM subscriptions WHERE chat_id = ?",
                    (new_chat_id, old_chat_id),
                )
                db.execute("DELETE FROM subscribers WHERE chat_id = ?", (old_chat_id,))
            else:  # subscriptions follow through ON UPDATE CASCADE
                db.execute(
                    "UPDATE subscribers SET chat_id = ? WHERE chat_id = ?",
                    (new_chat_id, old_chat_id),
                )
            db.execute(
                "UPDATE OR IGNORE outbox SET chat_id = ? WHERE chat_id = ?",
                (new_chat_id, old_chat_id),
            )
            db.execute("DELETE FROM outbox WHERE chat_id = ?", (old_chat_id,))
            db.execute(
                "UPDATE series SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
            )
            db.execute(
                "UPDATE OR IGNORE feedback SET chat_id = ? WHERE chat_id = ?",
                (new_chat_id, old_chat_id),
            )
            db.execute("DELETE FROM feedback WHERE chat_id = ?", (old_chat_id,))

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(self, chat_id: int, rule_ids: Iterable[str]) -> None:
        """Subscribe (creating the subscriber as a private chat if it is unknown)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO subscribers (chat_id, created) VALUES (?, ?)",
                (chat_id, self.clock()),
            )
            for rule_id in rule_ids:
                db.execute(
                    "INSERT OR IGNORE INTO subscriptions (chat_id, rule_id, created) "
                    "VALUES (?, ?, ?)",
                    (chat_id, rule_id, self.clock()),
                )

    def unsubscribe(self, chat_id: int, rule_ids: Iterable[str]) -> None:
        with self.transaction() as db:
            for rule_id in rule_ids:
                db.execute(
                    "DELETE FROM subscriptions WHERE chat_id = ? AND rule_id = ?",
                    (chat_id, rule_id),
                )

    def subscriptions(self, chat_id: int) -> set[str]:
        rows = self._query("SELECT rule_id FROM subscriptions WHERE chat_id = ?", (chat_id,))
        return {r[0] for r in rows}

    def subscriber_counts(self) -> dict[str, int]:
        """rule_id -> number of active subscribers."""
        return dict(
            self._query(
                "SELECT s.rule_id, count(*) FROM subscriptions s JOIN subscribers c "
                "USING (chat_id) WHERE c.active = 1 GROUP BY s.rule_id"
            )
        )

    # -- outbox ----------------------------------------------------------------------------

    def _enqueue(
        self, db: Database, now: float, item_id: int, item: Item, alerting: Sequence[Match]
    ) -> int:
        """One outbox row per active subscribed chat, naming the rules that chat follows."""
        by_rule = {m.rule_id: m for m in alerting}
        chats: dict[int, list[str]] = {}
        for chat_id, rule_id in db.execute(
            "SELECT s.chat_id, s.rule_id FROM subscriptions s JOIN subscribers c USING (chat_id) "
            f"WHERE c.active = 1 AND s.rule_id IN ({placeholders(by_rule)}) ORDER BY s.chat_id",
            list(by_rule),
        ).fetchall():
            chats.setdefault(chat_id, []).append(rule_id)
        created = 0
        for chat_id, rule_ids in chats.items():
            matches = tuple(m for m in alerting if m.rule_id in rule_ids)
            created += db.execute(
                "INSERT OR IGNORE INTO outbox (chat_id, item_id, story_key, alert, rules, "
                "next_attempt, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    chat_id,
                    item_id,
                    item.story_key,
                    alert_to_json(Alert(item, matches)),
                    json.dumps([m.rule_id for m in matches]),
                    now,
                    now,
                ),
            ).rowcount
        return created

    def due_outbox(self, now: float, limit: int = 100) -> list[OutboxRow]:
        """Pending rows whose time has come, oldest first."""
        return self._outbox_rows("state = 'pending' AND next_attempt <= ?", (now,), limit)

    def outbox_rows(self, state: str | None = None, limit: int = 10_000) -> list[OutboxRow]:
        if state is None:
            return self._outbox_rows("1", (), limit)
        return self._outbox_rows("state = ?", (state,), limit)

    def _outbox_rows(self, where: str, params: Sequence[Any], limit: int) -> list[OutboxRow]:
        return [
            OutboxRow(r[0], r[1], alert_from_json(r[2]), *r[3:])
            for r in self._query(
                "SELECT id, chat_id, alert, state, attempts, next_attempt, last_error, created "
                "FROM outbox "
                f"WHERE {where} ORDER BY id LIMIT ?",
                (*params, limit),
            )
        ]

    def mark_sent(self, row_id: int, message_id: int | None, note: str | None = None) -> None:
        """Telegram has the message; `note` keeps a warning (an answer that could not be read)."""
        self._write(
            "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ?, "
            "attempts = attempts + 1, last_error = ? WHERE id = ?",
            (message_id, self.clock(), redact(note) if note else None, row_id),
        )

    def mark_retry(
        self, row_id: int, error: str, next_attempt: float, attempts: int | None = None
    ) -> None:
        """A failed attempt: counted (or set to `attempts`), tried again at `next_attempt`."""
        self._write(
            "UPDATE outbox SET attempts = coalesce(?, attempts + 1), last_error = ?, "
            "next_attempt = ? WHERE id = ?",
            (attempts, redact(error), next_attempt, row_id),
        )

    def postpone(self, row_id: int, next_attempt: float) -> None:
        """Hold a row back (mute, digest slot) without counting a delivery attempt."""
        self._write("UPDATE outbox SET next_attempt = ? WHERE id = ?", (next_attempt, row_id))

    def reschedule_chat(self, chat_id: int, next_attempt: float) -> int:
        """Make a chat's pending rows due at `next_attempt` (after /unmute, /instant)."""
        with self.transaction() as db:
            return db.execute(
                "UPDATE outbox SET next_attempt = ? WHERE chat_id = ? AND state = 'pending'",
                (next_attempt, chat_id),
            ).rowcount

    def mark_failed(self, row_id: int, error: str) -> None:
        """Given up on; a message in parts it belonged to is forgotten with it."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ? "
                "WHERE id = ?",
                (redact(error), row_id),
            )
            db.execute(
                "DELETE FROM series WHERE EXISTS "
                "(SELECT 1 FROM json_each(series.rows) WHERE value = ?)",
                (row_id,),
            )

    # -- messages in parts -----------------------------------------------------------------

    def start_series(self, chat_id: int, row_ids: Sequence[int], texts: Sequence[str]) -> Series:
        """Record a message in parts before its first part goes out."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO series (chat_id, rows, texts, created) VALUES (?, ?, ?, ?)",
                (chat_id, json.dumps(list(row_ids)), json.dumps(list(texts)), self.clock()),
            )
            series_id = int(cursor.lastrowid or 0)
        return Series(series_id, chat_id, tuple(row_ids), tuple(texts), 0, None)

    def open_series(self, chat_id: int) -> Series | None:
        """The chat's unfinished message in parts (the oldest), if any."""
        rows = self._query(
            "SELECT id, chat_id, rows, texts, sent, message_id FROM series WHERE chat_id = ? "
            "ORDER BY id LIMIT 1",
            (chat_id,),
        )
        if not rows:
            return None
        sid, chat, row_ids, texts, sent, message_id = rows[0]
        return Series(sid, chat, tuple(json.loads(row_ids)), tuple(json.loads(texts)), sent,
                      message_id)  # fmt: skip

    def series_progress(self, series_id: int, sent: int, message_id: int | None) -> None:
        """Parts 1..`sent` are confirmed: a restart resumes after them."""
        self._write(
            "UPDATE series SET sent = ?, message_id = coalesce(message_id, ?) WHERE id = ?",
            (sent, message_id, series_id),
        )

    def finish_series(self, series: Series, message_id: int | None, note: str | None) -> None:
        """Every part is out: its pending rows are sent, and the series is forgotten."""
        now, error = self.clock(), redact(note) if note else None
        with self.transaction() as db:
            db.conn.executemany(
                "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ?, "
                "attempts = attempts + 1, last_error = ? WHERE id = ? AND state = 'pending'",
                [(message_id, now, error, row_id) for row_id in series.row_ids],
            )
            db.execute("DELETE FROM series WHERE id = ?", (series.id,))

    def outbox_counts(self) -> dict[str, int]:
        counts = {"pending": 0, "sent": 0, "failed": 0, "cancelled": 0}
        counts.update(dict(self._query("SELECT state, count(*) FROM outbox GROUP BY state")))
        return counts
