"""Full text during a poll cycle: the stored copy of an article, else one polite fetch of it.

The poller asks `ArticleSource.resolve` for each entry it is about to match. Entries that are
not teasers (see bot.feeds.fulltext) come back as they are. For a teaser the article is looked up by
its normalised link: a stored text is reused (a changed entry re-validates it with a
conditional GET), otherwise the page is fetched once, even when several feeds link it in the
same cycle. A failed fetch leaves the feed's own text to match and, for entries that may alert,
asks for one retry at the feed's next poll (or when the server's Retry-After has passed); a host
that answered 429/503 is not asked again before its Retry-After, in this cycle or later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.errors import FullTextError
from bot.feeds.fetch import Fetcher
from bot.feeds.fulltext import best_text, fetch_article, needs_full_text
from bot.identity import normalize_link
from bot.models import Item
from bot.store import ArticleRow, Store

log = logging.getLogger(__name__)

MAX_TRIES = 2  # the first fetch and one retry


@dataclass(frozen=True)
class FullText:
    """The item to match (with the article's text when it says more) and what went wrong."""

    item: Item
    error: str | None = None  # why the article could not be used: the feed's text was
    retry_at: float | None = None  # when to fetch the article again and re-match the item


@dataclass(frozen=True)
class _Outcome:
    text: str | None
    error: str | None = None
    retry_at: float | None = None


class ArticleSource:
    """Articles for the poller, through the store and the feeds' Fetcher."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        *,
        clock: Callable[[], float] = time.time,
        concurrency: int = 8,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)  # article fetches in flight, all feeds
        self._inflight: dict[str, asyncio.Task[_Outcome]] = {}
        self._hold: dict[str, float] = {}  # host -> clock time before which it asked for peace

    def retries(self, feed: str) -> list[Item]:
        """Items of this feed whose article fetch failed once and is due to be tried again."""
        return self.store.article_retries(feed, self.clock())

    async def resolve(self, item: Item, mode: str, *, refresh: bool = False) -> FullText:
        """What to match for `item` under the feed's `full_text` mode; never raises."""
        if not needs_full_text(item, mode):
            return FullText(item)
        key = normalize_link(item.link)
        row = self.store.article(key)
        if row is not None and not refresh:
            if row.text is not None:
                return FullText(best_text(item, row.text))
            if row.tries >= MAX_TRIES:
                return FullText(item)  # given up on; the error was recorded at the time
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(key, item.link, row))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        outcome = await asyncio.shield(task)
        if outcome.text is None:
            return FullText(item, outcome.error, outcome.retry_at)
        return FullText(best_text(item, outcome.text), outcome.error)

    def schedule_retry(self, full: FullText, item_id: int) -> None:
        """After the item is recorded: fetch its article again at `full.retry_at`."""
        if full.retry_at is not None:
            key = normalize_link(full.item.link)
            self.store.schedule_article_retry(key, item_id, full.retry_at)

    def retried(self, item: Item) -> None:
        """The item was matched again after its retry (or its article given up on)."""
        self.store.clear_article_retry(normalize_link(item.link))

    async def _fetch(self, key: str, url: str, row: ArticleRow | None) -> _Outcome:
        cached = row.text if row is not None else None
        etag = row.etag if row is not None and cached is not None else None
        modified = row.last_modified if row is not None and cached is not None else None
        try:
            self._check_hold(url)
            async with self._slots:
                article = await fetch_article(self.fetcher, url, etag=etag, last_modified=modified)
        except FullTextError as exc:
            return self._failed(key, url, str(exc), exc.retry_after, cached)
        except Exception as exc:  # a bug in extraction must cost one article, not the feed
            log.exception("full text of %s failed unexpectedly", url)
            error = f"article {url}: {type(exc).__name__}: {exc}"
            return self._failed(key, url, error, None, cached)
        if article is None:  # 304: what we stored is still the article
            assert row is not None and cached is not None
            self.store.save_article(key, url, cached, row.etag, row.last_modified)
            return _Outcome(cached)
        self.store.save_article(key, url, article.text, article.etag, article.last_modified)
        return _Outcome(article.text)

    def _check_hold(self, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        wait = self._hold.get(host, 0.0) - self.clock()
        if wait > 0:
            raise FullTextError(
                f"article {url}: {host} asked us to slow down; not asking again for {wait:.0f} s",
                retry_after=wait,
            )

    def _failed(
        self, key: str, url: str, error: str, retry_after: float | None, cached: str | None
    ) -> _Outcome:
        now = self.clock()
        if retry_after:
            host = (urlsplit(url).hostname or "").lower()
            self._hold[host] = max(self._hold.get(host, 0.0), now + retry_after)
        log.info("full text unavailable, matching the feed's text: %s", error)
        tries = self.store.article_failed(key, url, error)
        if cached is not None:
            return _Outcome(cached, error)  # a re-validation failed: the stored text still holds
        retry_at = now + (retry_after or 0.0) if tries < MAX_TRIES else None
        return _Outcome(None, error, retry_at)
