"""One poll cycle, top to bottom: fetch → parse → decide what is new → match → record + enqueue.

The only orchestrator. What is new and what is owed is decided by the pure functions of
bot/poll/decide.py; everything here is the I/O around them. A failing feed
is recorded on the feed, logged with its context, and the cycle goes on with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.errors import FeedError, FeedGone, FeedThrottled, StoreError, StoreUnwritable
from bot.feeds.fetch import Fetcher, FetchResult, backoff_delay
from bot.feeds.parse import ParsedFeed
from bot.feeds.parsepool import ParsePool, parse_job
from bot.identity import body_fingerprint, body_fingerprints, text_fingerprint
from bot.models import Alert, Feed, Item, Match
from bot.poll import neardup
from bot.poll.articles import ArticleSource, FullText
from bot.poll.decide import Decision, decide, select_alerts, with_copies, with_rules
from bot.rules.matcher import Rulebook
from bot.store import FeedState, SketchRow, Store
from bot.store.schema import item_rules

log = logging.getLogger(__name__)

NOT_FOUND_GRACE = 86_400.0  # a feed answering 404 this long is disabled
INDEX_BATCH = 1000  # sketched reports whose band rows are written together (see store.sketches)


# -- the cycle -------------------------------------------------------------------------------


def _prints(
    items: Sequence[Item], prints: Sequence[str], bodies: Sequence[str], extra: Sequence[Item]
) -> tuple[list[str], list[str]]:
    """Text and body fingerprints of the document's items, then of the retried `extra` ones
    (the parser computed the document's already; retried items need theirs)."""
    if len(prints) != len(items):
        prints = [text_fingerprint(i.title, i.text) for i in items]
    if len(bodies) != len(items):
        bodies = body_fingerprints([i.text for i in items])
    return (
        [*prints, *(text_fingerprint(i.title, i.text) for i in extra)],
        [*bodies, *(body_fingerprint(i.text) for i in extra)],
    )


@dataclass
class CycleStats:
    """What one cycle did (printed by --once, stored by record_cycle)."""

    feeds: int = 0  # due feeds polled
    fetched: int = 0  # answered with a new body
    unchanged: int = 0  # 304 or the same body
    failed: int = 0
    disabled: int = 0
    items_new: int = 0
    items_changed: int = 0
    matched: int = 0  # items that matched at least one rule
    alerts: list[Alert] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    fetch_seconds: list[float] = field(default_factory=list)  # each answered fetch's latency

    def summary(self) -> dict[str, int]:
        return {
            "feeds": self.feeds,
            "fetched": self.fetched,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "disabled": self.disabled,
            "items_new": self.items_new,
            "items_changed": self.items_changed,
            "matched": self.matched,
            "alerts": len(self.alerts),
        }


@dataclass(frozen=True)
class Matched:
    """A decision's item as matched: the text it was matched on, its matches and sketch."""

    decision: Decision
    text: FullText
    matches: Sequence[Match] = ()
    sketch: neardup.Sketch | None = None
    matched: bool = True  # False: a retry still without its article (its feed text was matched)


@dataclass
class Poller:
    """Everything a cycle needs; `emit` sees each alert right after it is committed."""

    store: Store
    fetcher: Fetcher
    rulebook: Rulebook
    clock: Callable[[], float] = time.time
    emit: Callable[[Alert], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    concurrency: int = 32  # feeds in flight at once (bounds memory; the Fetcher bounds sockets)
    metrics: Any = None  # a metrics.Metrics, fed by the run loop after each cycle
    enqueue: bool = True  # False when alerts are printed instead of sent (--dry-run, no token)
    articles: ArticleSource | None = None  # full text for teasers (feeds' `full_text`); None: off
    parser: ParsePool | None = None  # parsing in worker processes; None: in a thread

    def use_rules(self, rulebook: Rulebook) -> None:
        """Match with these rules from the next item on (a reload swaps the whole Rulebook)."""
        self.rulebook = rulebook

    async def run_cycle(self, feeds: Sequence[Feed], *, force: bool = False) -> CycleStats:
        """Poll every due feed once (every enabled one with `force`); failures stay per feed."""
        self.store.sync_feeds(feeds)
        due = self.store.due_feeds(feeds, self.clock(), force=force)
        stats = CycleStats(feeds=len(due))
        self._cycle_rules: dict[str, set[str]] = {}  # story -> rules matched in this cycle
        self._index_sketches()  # what a crash or a migration left unindexed, before any lookup
        slots = asyncio.Semaphore(self.concurrency)

        async def one(feed: Feed, state: FeedState) -> None:
            async with slots:
                try:
                    await self.poll_feed(feed, state, stats)
                except StoreUnwritable as exc:  # logged once by the store; fetched again later
                    stats.failed += 1
                    stats.errors[feed.name] = str(exc)

        await asyncio.gather(*(one(feed, state) for feed, state in due))
        self._index_sketches()
        return stats

    def _index_sketches(self, at_least: int = 0) -> None:
        """Write the band rows of the reports sketched since the last time, sorted in one batch,
        once there are `at_least` of them (till then they are looked up in memory)."""
        if self.store.pending_bands.count < at_least:
            return
        # when the disk refuses, the store has told the admins, and the signatures stay marked
        # for the next flush
        with contextlib.suppress(StoreUnwritable):
            self.store.flush_sketch_bands(neardup.band_keys)

    async def poll_feed(self, feed: Feed, state: FeedState, stats: CycleStats) -> None:
        """Refresh one feed, like Miniflux's RefreshFeed; errors end up on the feed's row."""
        try:
            result = await self.fetcher.fetch(
                state.url, etag=state.etag, last_modified=state.last_modified, headers=feed.headers
            )
            stats.fetch_seconds.append(result.elapsed)
            if result.permanent_redirect:
                log.info("feed %s moved permanently to %s", feed.name, result.permanent_redirect)
                self.store.set_feed_url(feed.name, result.permanent_redirect)
            body_hash = hashlib.sha256(result.body).hexdigest() if result.body is not None else None
            if result.status == 304 or body_hash == state.body_hash:
                stats.unchanged += 1
                problems = await self._process(feed, state, [], stats)  # due article retries
                self._succeeded(feed, result, state.body_hash, state.title)
                self._articles_failed(feed, problems)
                return
            assert result.body is not None
            parsed, prints = await self._parse(feed, result)
            if parsed.problem:
                raise FeedError(parsed.problem)
            if parsed.bozo:
                log.info("feed %s is malformed but readable: %s", feed.name, parsed.bozo)
            problems = await self._process(feed, state, parsed.items, stats, prints, parsed.bodies)
            stats.fetched += 1
            self._succeeded(feed, result, body_hash, parsed.title or state.title)
            self._articles_failed(feed, problems)
        except FeedThrottled as exc:
            self._throttled(feed, exc, stats)
        except FeedGone as exc:
            self._disable(feed, f"{exc}; the feed was disabled", stats)
        except StoreError:
            raise  # the database's trouble, not the feed's: nothing could be recorded
        except Exception as exc:  # any failure of one feed is that feed's, not the cycle's
            self._failed(feed, state, exc, stats)

    async def _parse(self, feed: Feed, result: FetchResult) -> tuple[ParsedFeed, list[str]]:
        """Parse off the event loop: in the worker processes when there are some."""
        assert result.body is not None
        job = (result.body, result.headers, feed.name, result.url)
        if self.parser is not None:
            return await self.parser.parse(*job)
        return await asyncio.to_thread(parse_job, *job)

    async def _process(
        self,
        feed: Feed,
        state: FeedState,
        items: Sequence[Item],
        stats: CycleStats,
        prints: Sequence[str] = (),
        bodies: Sequence[str] = (),
    ) -> list[str]:
        """Decide, fetch teasers' articles, match and record; returns full-text failures.

        The feed's items are committed together (each item with its matches and outbox rows,
        all or nothing), and alerts are emitted only once committed. Other feeds may record
        while the articles are awaited: the rules this cycle matched per story (looked up at
        record time) and the story alerts read after the wait keep a story from alerting twice.
        """
        retry = self.articles.retries(feed.name) if self.articles is not None else []
        present = {i.uid for i in items}
        extra = [r for r in retry if r.uid not in present]
        prints, bodies = _prints(items, prints, bodies, extra)
        items = [*items, *extra]
        if not items:
            return []
        uids, stories = [i.uid for i in items], [i.story_key for i in items]
        known = self.store.known_items(feed.name, uids, stories, prints, bodies)
        first_time, refresh = state.last_success is None, {r.uid for r in retry}
        decisions = decide(known, items, first_time, feed.backfill, prints, refresh, bodies)
        texts = await self._full_texts(feed, decisions.to_match)
        last_alerts = self.store.story_alerts({s for d in decisions.to_match for s in d.stories})
        throttles = {rule.id: rule.throttle for rule in self.rulebook.rules}
        document = [i.text for i in items]  # its siblings show an outlet's footer
        found = [self._matched(d, text, document) for d, text in zip(decisions.to_match, texts,
                                                                    strict=True)]  # fmt: skip
        stored = self.store.stored_candidates(b for f in found if f.sketch for b in f.sketch.bands)
        with self.store.transaction():
            alerts = [self._record(f, last_alerts, throttles, stats, stored) for f in found]
        self._index_sketches(at_least=INDEX_BATCH)
        for alert in filter(None, alerts):
            stats.alerts.append(alert)
            log.info("alert: %s on %s (%s)", alert.item.title, alert.item.feed,
                     ", ".join(m.rule_id for m in alert.matches))  # fmt: skip
            if self.emit is not None:
                self.emit(alert)
        return [text.error for text in texts if text.error]

    async def _full_texts(self, feed: Feed, decisions: Sequence[Decision]) -> list[FullText]:
        if self.articles is None:
            return [FullText(d.item) for d in decisions]
        resolve, mode = self.articles.resolve, feed.full_text
        return await asyncio.gather(
            *(resolve(d.item, mode, refresh=d.reason in ("changed", "moved")) for d in decisions)
        )

    def _matched(self, decision: Decision, text: FullText, document: Sequence[str]) -> Matched:
        """The rules the item matches and, when it matches any, its near-duplicate sketch."""
        if decision.reason == "retry" and self.articles is not None and text.item is decision.item:
            return Matched(decision, text, matched=False)
        matches = self.rulebook.match(text.item)  # the article's text when there is one
        sketch = self._sketch(decision.item, document) if matches else None  # only these alert
        return Matched(decision, text, matches, sketch)

    def _record(
        self,
        found: Matched,
        last_alerts: dict[tuple[str, str], float],
        throttles: Mapping[str, float],
        stats: CycleStats,
        stored: Mapping[int, list[SketchRow]],
    ) -> Alert | None:
        decision, text, matches, sketch = found.decision, found.text, found.matches, found.sketch
        item, now = decision.item, self.clock()
        if decision.reason == "retry" and self.articles is not None:
            self.articles.retried(item)
        if not found.matched:
            return None
        earlier = set().union(*(self._cycle_rules.get(s, set()) for s in decision.stories))
        decision = with_rules(decision, earlier)
        alerting = select_alerts(decision, matches, last_alerts, throttles, now)
        if alerting and sketch is not None and (copies := self._copies(sketch, decision, stored)):
            decision = with_copies(decision, copies)
            alerting = select_alerts(decision, matches, last_alerts, throttles, now)
        # the row and the alert keep the feed's own text (the article is in `articles`): the
        # snippets already carry the article's sentences, and outbox rows stay small
        row = self.store.record_item(
            item,
            matches,
            alerting,
            fingerprint=decision.fingerprint,
            body=decision.body if matches else "",  # unmatched items never alert again
            update_id=decision.update_id,
            enqueue=self.enqueue,
            sketch=(sketch.signature, sketch.bands) if sketch is not None else None,
        )
        if row is None:
            return None  # this very version was recorded meanwhile
        if self.articles is not None and decision.may_alert:
            self.articles.schedule_retry(text, row)
        for story in decision.stories:
            self._cycle_rules.setdefault(story, set()).update(m.rule_id for m in matches)
            last_alerts.update({(story, m.rule_id): now for m in alerting})
        stats.items_new += decision.reason in ("new", "elsewhere")
        stats.items_changed += decision.reason in ("changed", "moved")
        stats.matched += bool(matches)
        return Alert(item, alerting) if alerting else None

    @staticmethod
    def _sketch(item: Item, document: Sequence[str]) -> neardup.Sketch | None:
        """The item's near-duplicate sketch, its document's repeated sentences left out."""
        return neardup.sketch(item.text, document)

    def _copies(
        self, sketch: neardup.Sketch, decision: Decision, stored: Mapping[int, list[SketchRow]]
    ) -> list[tuple[str, frozenset[str]]]:
        """(story key, rules) of stored near-duplicates of this report (this row aside)."""
        rows = [r for r in self.store.sketch_candidates(sketch.bands, stored)
                if r.item_id != decision.update_id]  # fmt: skip
        same = set(neardup.copies(sketch, [(r.item_id, r.signature, r.text) for r in rows]))
        found = [(r.story_key, item_rules(r.rules)) for r in rows if r.item_id in same]
        if found:
            log.info("%s is a copy of %d stored report(s)", decision.item.title, len(found))
        return found

    # -- feed bookkeeping ------------------------------------------------------------------

    def _succeeded(
        self, feed: Feed, result: FetchResult, body_hash: str | None, title: str | None
    ) -> None:
        self.store.record_fetch(
            feed.name,
            etag=result.etag,
            last_modified=result.last_modified,
            body_hash=body_hash,
            title=title,
            next_fetch=self.clock() + feed.interval,
        )

    def _articles_failed(self, feed: Feed, problems: Sequence[str]) -> None:
        """Counted on the feed apart from its own errors (no backoff: the feed itself is fine)."""
        if not problems:
            return
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        message = f"full text: {problems[0]}{more}"
        log.warning("feed %s: %s", feed.name, message, extra={"feed": feed.name})
        self.store.record_fulltext_failures(feed.name, message, len(problems))

    def _throttled(self, feed: Feed, exc: FeedThrottled, stats: CycleStats) -> None:
        message = f"{exc} (asked to wait {exc.retry_after:.0f}s)"
        log.warning("feed %s throttled: %s", feed.name, message, extra={"feed": feed.name})
        stats.errors[feed.name] = message
        self.store.record_throttle(feed.name, message, until=self.clock() + exc.retry_after)

    def _disable(self, feed: Feed, message: str, stats: CycleStats) -> None:
        log.error("feed %s disabled: %s", feed.name, message, extra={"feed": feed.name})
        stats.failed += 1
        stats.disabled += 1
        stats.errors[feed.name] = message
        self.store.record_feed_error(feed.name, message, next_fetch=self.clock())
        self.store.disable_feed(feed.name, message)

    def _failed(self, feed: Feed, state: FeedState, exc: Exception, stats: CycleStats) -> None:
        status = getattr(exc, "status", None)
        message = str(exc) if isinstance(exc, FeedError) else f"{type(exc).__name__}: {exc}"
        message = message or type(exc).__name__
        delay = backoff_delay(state.error_count + 1, feed.interval, self.rng)
        updated = self.store.record_feed_error(
            feed.name, message, next_fetch=self.clock() + delay, status=status
        )
        context = {"feed": feed.name, "url": state.url, "errors": updated.error_count}
        if isinstance(exc, FeedError):
            log.warning("feed %s failed: %s", feed.name, message, extra=context)
        else:
            log.exception("feed %s failed unexpectedly: %s", feed.name, message, extra=context)
        stats.failed += 1
        stats.errors[feed.name] = message
        since = updated.not_found_since
        if status == 404 and since is not None and self.clock() - since >= NOT_FOUND_GRACE:
            self._disable(
                feed, f"{message}; still 404 after a day, so the feed was disabled", stats
            )
            stats.failed -= 1
