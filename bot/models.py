"""Plain dataclasses that flow between the stages: Feed, Item, Match, Alert, KnownItem and parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Feed:
    """A feed the poller watches, as configured."""

    name: str
    url: str
    interval: float = 600.0  # seconds between fetches
    enabled: bool = True
    backfill: int = 0  # on first sight, alert for at most this many newest entries
    headers: dict[str, str] = field(default_factory=dict)
    full_text: str = "auto"  # auto | always | never


@dataclass(frozen=True)
class Item:
    """One feed entry, reduced to what matching and alerting need."""

    feed: str  # the feed's name
    uid: str  # stable id within the feed: guid, else link, else a content hash
    story_key: str  # the same story across feeds: normalised link, else text fingerprint
    title: str
    link: str
    published: datetime | None  # UTC
    text: str  # plain text, paragraphs separated by blank lines
    content_hash: str = ""  # hash of title + text, to notice edits


@dataclass(frozen=True)
class Window:
    """A stretch of one field of an item (character offsets into that field's text)."""

    field: str  # "title" or "content"
    start: int
    end: int


@dataclass(frozen=True)
class Snippet:
    """A sentence (trimmed) to show the reader, with the matched terms' spans to highlight."""

    text: str
    highlights: tuple[tuple[int, int], ...] = ()

    def marked(self, before: str = "**", after: str = "**") -> str:
        """The text with every highlight wrapped in `before`/`after` (no escaping)."""
        out, pos = [], 0
        for start, end in self.highlights:
            out += [self.text[pos:start], before, self.text[start:end], after]
            pos = end
        out.append(self.text[pos:])
        return "".join(out)


@dataclass(frozen=True)
class Match:
    """One rule that fired on one item: where (windows), why (terms) and what to show."""

    rule_id: str
    title: str
    level: str
    windows: tuple[Window, ...]  # every window that satisfied the rule, in text order
    terms: tuple[str, ...]  # the rule's terms (as written) found in those windows
    snippets: tuple[Snippet, ...] = ()


@dataclass(frozen=True)
class Alert:
    """What one item owes its readers: the item and every rule it matched."""

    item: Item
    matches: tuple[Match, ...]


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
    title: str | None = None  # None once pruned: then its identifiers are trusted as they are
    text: str | None = None
    body: str = ""  # body_fingerprint of its text ("" for short bodies)
