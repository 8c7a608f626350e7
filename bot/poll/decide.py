"""What is new and what is owed: pure decisions of the poll cycle, data in and data out.

Like lemon24/reader's Decider: the poller gathers what the store knows and what the feed
says, these functions decide, and the poller writes the outcome. Tested without any I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.identity import body_fingerprints, same_story, text_fingerprint
from bot.models import Item, KnownItem, Match

_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Decision:
    """One entry to match and record, with what the store already knows of its story."""

    item: Item
    fingerprint: str
    previous_rules: frozenset[str]  # rules that matched this story before: they never re-alert
    stories: frozenset[str]  # story keys (and "fp:" fingerprints) this entry is known under
    may_alert: bool  # False for entries beyond the backfill on a feed's first sight
    update_id: int | None = None  # overwrite this row (same entry, new version or new guid)
    body: str = ""  # body_fingerprint of the entry ("" when short or shared in its document)
    reason: str = "new"  # new | changed | moved (new guid or link) | elsewhere (other feed)
    # | retry (unchanged, matched again now that its article could be fetched)


@dataclass(frozen=True)
class Decisions:
    to_match: list[Decision]
    unchanged: int  # entries known in exactly this version: nothing to do


def decide(
    known: Sequence[KnownItem],
    entries: Sequence[Item],
    first_time: bool,
    backfill: int,
    fingerprints: Sequence[str] | None = None,
    refresh: Collection[str] = (),
    bodies: Sequence[str] | None = None,
) -> Decisions:
    """What to match among `entries` (one feed's document), given the rows the store holds.

    An entry is the same as a known row when its uid matches in this feed (the version with
    the same story, else the same text, else the latest); failing that, when its story key or
    text fingerprint (or body fingerprint: headline, link and guid all changed) matches a row
    in this feed (guid regenerated, title or URL edited) or in another feed (the story was
    reported elsewhere). Same uid and same content: unchanged.
    In this feed a uid or link shared with a row that tells another story (`same_story`)
    proves nothing: a constant guid, a podcast page link. Such an entry is new, and when the
    link is what it shares, its story key becomes its text's (``text:`` + fingerprint).
    `fingerprints` (text_fingerprint of each entry) and `bodies` (body_fingerprints of the
    document) may be passed when already computed.
    Unchanged entries whose uid is in `refresh` are matched again (reason "retry").
    """
    index = _Index(known)
    alertable = _newest(entries, backfill) if first_time else set(range(len(entries)))
    present_uids = {e.uid for e in entries}
    to_match, unchanged = [], 0
    if fingerprints is None:
        fingerprints = [text_fingerprint(e.title, e.text) for e in entries]
    if bodies is None:
        bodies = body_fingerprints([e.text for e in entries])
    for position, (entry, fp, body) in enumerate(zip(entries, fingerprints, bodies, strict=True)):
        decision = _one(index, entry, fp, body, present_uids, refresh)
        if decision is None:
            unchanged += 1
        else:
            to_match.append(replace(decision, may_alert=position in alertable))
    return Decisions(to_match, unchanged)


def _one(
    index: _Index,
    entry: Item,
    fp: str,
    body: str,
    present_uids: set[str],
    refresh: Collection[str],
) -> Decision | None:
    """The decision for one entry; None when it is known in exactly this version."""
    if index.link_shared(entry):
        entry = replace(entry, story_key="text:" + fp)
    same = index.same_entry(entry, fp, body, present_uids)
    related = index.related(entry, fp, body, same)
    if same is not None and same.content_hash == entry.content_hash and same.uid == entry.uid:
        if entry.uid not in refresh:
            return None
        reason = "retry"
    elif same is not None:
        reason = "changed" if same.uid == entry.uid else "moved"
    else:
        reason = "elsewhere" if related else "new"
    return Decision(
        item=entry,
        fingerprint=fp,
        previous_rules=frozenset().union(*(k.rules for k in related)),
        stories=frozenset({entry.story_key, "fp:" + fp} | _stories(related)),
        may_alert=True,
        update_id=same.id if same is not None else None,
        reason=reason,
        body=body,
    )


class _Index:
    """Known rows by uid (this feed), story key and fingerprint; each row claimed once."""

    def __init__(self, known: Sequence[KnownItem]) -> None:
        self.by_uid: dict[tuple[str, str], list[KnownItem]] = {}
        self.by_story: dict[str, list[KnownItem]] = {}
        self.by_print: dict[str, list[KnownItem]] = {}
        self.by_body: dict[str, list[KnownItem]] = {}
        for k in known:
            if k.body:
                self.by_body.setdefault(k.body, []).append(k)
            self.by_uid.setdefault((k.feed, k.uid), []).append(k)
            self.by_story.setdefault(k.story_key, []).append(k)
            if k.fingerprint:
                self.by_print.setdefault(k.fingerprint, []).append(k)
        self.claimed: set[int] = set()

    def link_shared(self, entry: Item) -> bool:
        """Whether a row of this feed with the entry's story key (its link) is another story."""
        if entry.story_key.startswith("text:"):
            return False
        return any(_other_story(k, entry) for k in self.by_story.get(entry.story_key, []))

    def related(self, entry: Item, fp: str, body: str, same: KnownItem | None) -> list[KnownItem]:
        """The entry's earlier version and every row of the same story (by link or text)."""
        rows = [same] if same is not None else []
        rows += [k for k in self.by_story.get(entry.story_key, []) if not _other_story(k, entry)]
        rows += self.by_print.get(fp, []) + self.by_body.get(body, [])
        return list({k.id: k for k in rows}.values())

    def same_entry(
        self, entry: Item, fp: str, body: str, present_uids: set[str]
    ) -> KnownItem | None:
        """The row that is this very entry (in an earlier version), claimed so no other takes it."""
        same_uid = [
            k
            for k in self.by_uid.get((entry.feed, entry.uid), [])
            if k.id not in self.claimed and not _other_story(k, entry)
        ]
        if same_uid:
            found = _best(same_uid, entry, fp) or same_uid[-1]
        else:
            # another guid in this feed for the same story, as long as that guid is gone now
            by_link = [
                k for k in self.by_story.get(entry.story_key, []) if not _other_story(k, entry)
            ]
            moved = by_link + self.by_print.get(fp, []) + self.by_body.get(body, [])
            candidates = [
                k for k in moved
                if k.feed == entry.feed and k.uid not in present_uids and k.id not in self.claimed
            ]  # fmt: skip
            found = _best(candidates, entry, fp)
        if found is not None:
            self.claimed.add(found.id)
        return found


def _other_story(known: KnownItem, entry: Item) -> bool:
    """A row of the entry's feed that shares an identifier with it but tells another story
    (rows of other feeds sharing a link are that article: they are trusted)."""
    if known.feed != entry.feed or known.text is None or known.content_hash == entry.content_hash:
        return False
    return not same_story(known.title or "", known.text, entry.title, entry.text)


def _best(rows: list[KnownItem], entry: Item, fp: str) -> KnownItem | None:
    for test in (
        lambda k: k.content_hash == entry.content_hash,
        lambda k: k.story_key == entry.story_key,
        lambda k: k.fingerprint == fp,
    ):
        hits = [k for k in rows if test(k)]
        if hits:
            return hits[-1]
    return None


def _stories(rows: Sequence[KnownItem]) -> set[str]:
    return {k.story_key for k in rows} | {"fp:" + k.fingerprint for k in rows if k.fingerprint}


def _newest(entries: Sequence[Item], count: int) -> set[int]:
    """Positions of the `count` newest entries (by date; undated ones in document order)."""
    order = sorted(
        range(len(entries)),
        key=lambda i: (entries[i].published or _OLDEST, -i),
        reverse=True,
    )
    undated_first = all(e.published is None for e in entries)
    return set(range(count) if undated_first else order[:count])


def select_alerts(
    decision: Decision,
    matches: Sequence[Match],
    last_alerts: Mapping[tuple[str, str], float],
    throttles: Mapping[str, float],
    now: float,
) -> tuple[Match, ...]:
    """The matches that alert: rules new to the story, not alerted for it within `throttle`."""
    if not decision.may_alert:
        return ()
    out = []
    for match in matches:
        if match.rule_id in decision.previous_rules:
            continue
        times = [last_alerts[(s, match.rule_id)] for s in decision.stories
                 if (s, match.rule_id) in last_alerts]  # fmt: skip
        if times and now - max(times) < throttles.get(match.rule_id, 0.0):
            continue
        out.append(match)
    return tuple(out)


def with_copies(decision: Decision, copies: Sequence[tuple[str, frozenset[str]]]) -> Decision:
    """The decision knowing near-duplicate reports (story key, rules matched) elsewhere: their
    rules never alert again for this copy, and their stories' throttles apply to it."""
    if not copies:
        return decision
    rules = frozenset().union(*(r for _, r in copies))
    stories = decision.stories | {key for key, _ in copies}
    return replace(decision, previous_rules=decision.previous_rules | rules, stories=stories)


def with_rules(decision: Decision, rules: set[str]) -> Decision:
    if not rules:
        return decision
    return Decision(**{**decision.__dict__, "previous_rules": decision.previous_rules | rules})
