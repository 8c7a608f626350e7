"""The store's side for readers' "Not relevant" marks, and the sent alerts they mark (a mixin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.models import Alert, Match
from bot.store.schema import alert_from_json

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from sqlite_utils import Database


@dataclass(frozen=True)
class SentAlert:
    """An outbox row as a button under its message needs it."""

    id: int
    chat_id: int
    alert: Alert
    message_id: int | None


@dataclass(frozen=True)
class MarkedStory:
    """One story readers marked "Not relevant" for one rule."""

    rule_id: str
    story_key: str
    feed: str
    title: str
    link: str
    published: float | None
    text: str  # the story's text as alerted (title not included)
    snippet: str  # the sentence that fired (the first snippet, plain)
    readers: int  # how many readers marked it
    last_marked: float


class FeedbackStore:
    """Feedback queries; mixed into Store, which provides the connection and the clock."""

    clock: Callable[[], float]
    transaction: Callable[[], AbstractContextManager[Database]]
    _query: Callable[..., list[tuple[Any, ...]]]
    _write: Callable[..., int]

    def sent_alert(self, row_id: int) -> SentAlert | None:
        """The outbox row behind a button (None once /stop deleted it)."""
        rows = self._query(
            "SELECT id, chat_id, alert, message_id FROM outbox WHERE id = ?", (row_id,)
        )
        if not rows:
            return None
        row_id, chat_id, alert, message_id = rows[0]
        return SentAlert(row_id, chat_id, alert_from_json(alert), message_id)

    def digest_alerts(self, chat_id: int, row_id: int) -> list[SentAlert]:
        """Every row sent in the same digest as `row_id` (they share its message id)."""
        rows = self._query(
            "SELECT o.id, o.chat_id, o.alert, o.message_id FROM outbox o JOIN outbox d "
            "ON d.id = ? AND d.chat_id = o.chat_id AND d.message_id = o.message_id "
            "WHERE o.chat_id = ? AND o.state = 'sent' ORDER BY o.id",
            (row_id, chat_id),
        )
        return [SentAlert(r[0], r[1], alert_from_json(r[2]), r[3]) for r in rows]

    def add_feedback(self, sent: SentAlert, user_id: int, match: Match) -> bool:
        """Record one reader's mark on one story and rule; False when it was there already."""
        item = sent.alert.item
        snippet = match.snippets[0].text if match.snippets else ""
        published = item.published.timestamp() if item.published else None
        return bool(
            self._write(
                "INSERT OR IGNORE INTO feedback (chat_id, user_id, story_key, rule_id, "
                "outbox_id, feed, title, link, published, text, snippet, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sent.chat_id,
                    user_id,
                    item.story_key,
                    match.rule_id,
                    sent.id,
                    item.feed,
                    item.title,
                    item.link,
                    published,
                    item.text,
                    snippet,
                    self.clock(),
                ),
            )
        )

    def remove_feedback(self, chat_id: int, user_id: int, story_key: str, rule_id: str) -> bool:
        """Undo one reader's mark; False when there was none."""
        return bool(
            self._write(
                "DELETE FROM feedback WHERE chat_id = ? AND user_id = ? AND story_key = ? "
                "AND rule_id = ?",
                (chat_id, user_id, story_key, rule_id),
            )
        )

    def feedback_marks(self, chat_id: int, user_id: int) -> set[tuple[str, str]]:
        """(story_key, rule_id) of every mark this reader made in this chat."""
        return set(
            self._query(
                "SELECT story_key, rule_id FROM feedback WHERE chat_id = ? AND user_id = ?",
                (chat_id, user_id),
            )
        )

    def feedback_counts(self) -> dict[str, tuple[int, int]]:
        """rule_id -> (marks, distinct stories marked)."""
        return {
            rule: (marks, stories)
            for rule, marks, stories in self._query(
                "SELECT rule_id, count(*), count(DISTINCT story_key) FROM feedback "
                "GROUP BY rule_id ORDER BY rule_id"
            )
        }

    def marked_stories(self, since: float, rule_id: str | None = None) -> list[MarkedStory]:
        """Stories marked since `since`, per rule, most marked first."""
        where, params = "created >= ?", [since]
        if rule_id is not None:
            where, params = where + " AND rule_id = ?", [since, rule_id]
        # the latest mark's copy of the story speaks for it (bare columns follow max())
        rows = self._query(
            "SELECT rule_id, story_key, feed, title, link, published, text, snippet, "
            "count(*), max(created) FROM feedback "
            f"WHERE {where} GROUP BY rule_id, story_key ORDER BY rule_id, count(*) DESC, "
            "max(created) DESC",
            params,
        )
        return [
            MarkedStory(
                r[0],
                r[1],
                r[2] or "",
                r[3] or "",
                r[4] or "",
                r[5],
                r[6] or "",
                r[7] or "",
                r[8],
                r[9],
            )
            for r in rows
        ]
