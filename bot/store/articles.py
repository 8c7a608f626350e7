"""The store's side for full text: fetched articles by normalised link, and their retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.logs import redact
from bot.models import Item
from bot.store.schema import item_from_row

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from sqlite_utils import Database


@dataclass(frozen=True)
class ArticleRow:
    """What the store holds of one article page (text None until a fetch succeeded)."""

    key: str  # normalize_link(item.link)
    url: str
    text: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: float
    tries: int  # failed fetches since the last success
    last_error: str | None
    retry_item: int | None  # the item to match again once this article can be read
    retry_at: float | None


class ArticleStore:
    """Article queries; mixed into Store, which provides the connection and the clock."""

    clock: Callable[[], float]
    transaction: Callable[[], AbstractContextManager[Database]]
    _query: Callable[..., list[tuple[Any, ...]]]
    _write: Callable[..., int]

    def article(self, key: str) -> ArticleRow | None:
        rows = self._query(
            f"SELECT {', '.join(ArticleRow.__dataclass_fields__)} FROM articles WHERE key = ?",
            (key,),
        )
        return ArticleRow(*rows[0]) if rows else None

    def save_article(
        self, key: str, url: str, text: str, etag: str | None, last_modified: str | None
    ) -> None:
        """A successful fetch (or a 304 with the text we had); a pending retry stays pending."""
        self._write(
            "INSERT INTO articles (key, url, text, etag, last_modified, fetched_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET url = excluded.url, "
            "text = excluded.text, etag = excluded.etag, last_modified = excluded.last_modified, "
            "fetched_at = excluded.fetched_at, tries = 0, last_error = NULL",
            (key, url, text, etag, last_modified, self.clock()),
        )

    def article_failed(self, key: str, url: str, error: str) -> int:
        """Count a failed fetch (keeping any text from before); returns the failures in a row."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO articles (key, url, fetched_at, tries, last_error) "
                "VALUES (?, ?, ?, 1, ?) ON CONFLICT (key) DO UPDATE SET "
                "tries = tries + 1, last_error = excluded.last_error",
                (key, url, self.clock(), redact(error)),
            )
            return int(db.execute("SELECT tries FROM articles WHERE key = ?", (key,)).fetchone()[0])

    def schedule_article_retry(self, key: str, item_id: int, at: float) -> None:
        """Fetch this article again at `at` (the feed's next poll after it); re-match the item."""
        self._write(
            "UPDATE articles SET retry_item = ?, retry_at = ? WHERE key = ?", (item_id, at, key)
        )

    def clear_article_retry(self, key: str) -> None:
        """The item waiting for this article was matched again (or given up on)."""
        self._write("UPDATE articles SET retry_item = NULL, retry_at = NULL WHERE key = ?", (key,))

    def article_retries(self, feed: str, now: float) -> list[Item]:
        """This feed's items (as recorded) whose article retry is due; pruned ones are dropped."""
        rows = self._query(
            "SELECT i.feed, i.uid, i.story_key, i.title, i.link, i.published, i.text, "
            "i.content_hash FROM articles a JOIN items i ON i.id = a.retry_item "
            "WHERE i.feed = ? AND a.retry_at <= ? AND i.text IS NOT NULL ORDER BY i.id",
            (feed, now),
        )
        return [item_from_row(*row) for row in rows]

    def prune_articles(self, cutoff: float) -> int:
        """Forget articles fetched before `cutoff` (their items' bodies go at the same age)."""
        return self._write("DELETE FROM articles WHERE fetched_at < ?", (cutoff,))
