"""The store's side for feeds: their addresses, validators, schedule and health (a Store mixin)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.logs import redact
from bot.models import Feed

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from sqlite_utils import Database


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
    failing_since: float | None = None  # the first error of the current streak
    notice: str = ""  # what admins were last told: "" | failing | disabled
    throttled_until: float | None = None  # the server asked us to wait (429/503 Retry-After)
    throttle_reason: str | None = None
    fulltext_failures: int = 0  # article pages that could not be read, since the feed was added
    fulltext_error: str | None = None  # the latest of them
    fulltext_error_at: float | None = None
    items: int = 0  # items seen (tombstones included)


class FeedStore:
    """Feed rows and their health; mixed into Store, which provides the connection."""

    clock: Callable[[], float]
    transaction: Callable[[], AbstractContextManager[Database]]
    _query: Callable[..., list[tuple[Any, ...]]]
    _write: Callable[..., int]

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
            values["notice"] = values["notice"] or ""
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
        sets |= {"not_found_since": None, "failing_since": None}
        sets |= {"throttled_until": None, "throttle_reason": None}
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
            "error_count = error_count + ?, failing_since = coalesce(failing_since, ?), "
            "not_found_since = CASE WHEN ? = 404 THEN coalesce(not_found_since, ?) ELSE NULL END "
            "WHERE name = ?",
            (now, redact(error), now, next_fetch, 1 if count else 0, now, status, now, name),
        )
        state = self.feed_state(name)
        assert state is not None, f"feed {name!r} is not in the store (sync_feeds first)"
        return state

    def record_throttle(self, name: str, reason: str, *, until: float) -> None:
        """The server asked us to wait: not an error (no backoff), but not a success either."""
        now = self.clock()
        self._write(
            "UPDATE feeds SET last_fetch = ?, throttled_until = ?, throttle_reason = ?, "
            "next_fetch = ? WHERE name = ?",
            (now, until, reason, until, name),
        )

    def record_fulltext_failures(self, name: str, error: str, count: int) -> None:
        """`count` article pages of this feed could not be read; `error` says why (the first)."""
        self._write(
            "UPDATE feeds SET fulltext_failures = fulltext_failures + ?, fulltext_error = ?, "
            "fulltext_error_at = ? WHERE name = ?",
            (count, error, self.clock(), name),
        )

    def disable_feed(self, name: str, reason: str) -> None:
        """Stop fetching this feed (until its configured URL changes); say why in last_error."""
        self._write(
            "UPDATE feeds SET disabled = 1, last_error = ?, last_error_at = ?, next_fetch = NULL "
            "WHERE name = ?",
            (redact(reason), self.clock(), name),
        )

    def feed_titles(self) -> dict[str, str]:
        """Feed name -> the title the feed gives itself (feeds without one are left out)."""
        return dict(self._query("SELECT name, title FROM feeds WHERE coalesce(title, '') != ''"))

    def set_feed_notice(self, name: str, notice: str) -> None:
        """Remember what admins were told about this feed (survives restarts)."""
        self._write("UPDATE feeds SET notice = ? WHERE name = ?", (notice, name))

    def set_feed_url(self, name: str, url: str) -> None:
        """A permanent redirect: fetch the new address from now on."""
        self._write("UPDATE feeds SET url = ? WHERE name = ?", (url, name))
