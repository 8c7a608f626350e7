"""A document's entries → Items: uids and story keys from what distinguishes entries there.

Every format (RSS, Atom, RDF through feedparser; JSON Feed) is read into `RawEntry`s; this
module alone decides their identities, so every format follows the same rules:

- uid: the entry's guid/id, else its link, else ``sha256:`` of title, date and text. When one
  document gives several entries the same uid (a constant guid, a podcast whose items all
  carry the page's link) under different links or with different stories, each of them gets
  ``uid#<12 hex>`` of the first thing that tells them apart: the link with its #anchor, the
  enclosure, the date, the title, the text.
- story_key: `normalize_link(link)` (scheme, tracking and #anchor ignored), unless other
  stories (or entries with other guids) in the document share that link: then the link with
  its #anchor when that tells them apart (a daily page with one anchor per entry), else the
  enclosure, else ``text:`` + `text_fingerprint(title, text)`. No link: ``text:`` + the
  fingerprint.
- An entry listed twice (same uid, same link, same story by `same_story`) is kept once; a
  guid or link shared by entries telling different stories never makes them one.

Titles and texts lose their invisible characters here (bidi overrides, zero-width spaces),
whatever the format, before anything is derived from them (a feed's own title too, through
`visible_line`): a headline must not reach readers reversed, nor a keyword hide behind a
zero-width space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.identity import normalize_link, same_story, sha256_hex, text_fingerprint
from bot.models import Item
from bot.rules.text import strip_invisible


@dataclass(frozen=True)
class RawEntry:
    """One entry as the document wrote it (text already plain), before identities."""

    guid: str
    link: str  # absolute http(s) address, or ""
    title: str
    text: str
    date: str  # as written (for the hash uid of entries without guid or link)
    published: datetime | None
    enclosure: str = ""  # the first enclosure's address (a podcast episode's audio)


def to_items(entries: Sequence[RawEntry], feed_name: str) -> list[Item]:
    """Items with uids and story keys (see the module docstring), in document order."""
    entries = _drop_repeats([_visible(e) for e in entries])
    uids = _distinct(entries, [_uid(e) for e in entries], _UID_MARKS, hashed=True, by_link=True)
    links = [normalize_link(e.link) if e.link else "" for e in entries]
    keys = _distinct(entries, links, _STORY_MARKS, hashed=False)
    items = []
    for entry, uid, key in zip(entries, uids, keys, strict=True):
        key = key or "text:" + text_fingerprint(entry.title, entry.text)
        items.append(
            Item(
                feed=feed_name,
                uid=uid,
                story_key=key,
                title=entry.title,
                link=entry.link,
                published=entry.published,
                text=entry.text,
                content_hash=sha256_hex(f"{entry.title}\n{entry.text}"),
            )
        )
    return items


def _visible(entry: RawEntry) -> RawEntry:
    return replace(entry, title=visible_line(entry.title), text=strip_invisible(entry.text))


def visible_line(text: str) -> str:
    """A headline or a feed's own title as shown: invisible characters out, on one line."""
    return " ".join(strip_invisible(text).split())


def _uid(entry: RawEntry) -> str:
    return (
        entry.guid
        or entry.link
        or "sha256:" + sha256_hex(f"{entry.title}\n{entry.date}\n{entry.text}")
    )


def _drop_repeats(entries: Sequence[RawEntry]) -> list[RawEntry]:
    kept: list[RawEntry] = []
    firsts: dict[tuple[str, str], list[RawEntry]] = {}
    for entry in entries:
        key = (_uid(entry), normalize_link(entry.link, fragment=True))
        earlier = firsts.setdefault(key, [])
        if any(same_story(e.title, e.text, entry.title, entry.text) for e in earlier):
            continue  # the same entry listed twice
        earlier.append(entry)
        kept.append(entry)
    return kept


Mark = Callable[[RawEntry], str]
_LINK_ANCHOR: Mark = lambda e: normalize_link(e.link, fragment=True) if e.link else ""  # noqa: E731
_ENCLOSURE: Mark = lambda e: normalize_link(e.enclosure) if e.enclosure else ""  # noqa: E731
_UID_MARKS: tuple[Mark, ...] = (
    _LINK_ANCHOR,
    _ENCLOSURE,
    lambda e: e.date,
    lambda e: e.title,
    lambda e: f"{e.title}\n{e.text}",
)
_STORY_MARKS: tuple[Mark, ...] = (_LINK_ANCHOR, _ENCLOSURE)


def _distinct(
    entries: Sequence[RawEntry],
    values: list[str],
    marks: Sequence[Mark],
    *,
    hashed: bool,
    by_link: bool = False,
) -> list[str]:
    """`values`, except where several entries telling different stories share one value: those
    get the first mark that is non-empty and different for each of them (hashed onto the value
    for uids; as the key itself for story keys), or "" (the caller falls back to the text)."""
    groups: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        if value:
            groups.setdefault(value, []).append(i)
    out = list(values)
    for value, members in groups.items():
        if len(members) < 2 or _one_story([entries[i] for i in members], by_link):
            continue
        for mark in marks:
            found = [mark(entries[i]) for i in members]
            if all(found) and len(set(found)) == len(found):
                break
        else:
            found = [""] * len(members)
        for i, distinct in zip(members, found, strict=True):
            if hashed:
                distinct = distinct or f"{entries[i].title}\n{entries[i].text}\n{i}"
                out[i] = f"{value}#{sha256_hex(distinct)[:12]}"
            else:
                out[i] = distinct
    return out


def _one_story(group: Sequence[RawEntry], by_link: bool) -> bool:
    """Whether a group sharing a value is one story: for uids, under one link; for links,
    under one guid (entries the publisher gave different guids are different entries, however
    alike their text: "Episode 12: … Kursk" and "Episode 13: … Kursk")."""
    first = group[0]
    if by_link and len({_LINK_ANCHOR(e) for e in group}) > 1:
        return False
    if not by_link and len({e.guid for e in group}) > 1:
        return False
    return all(same_story(first.title, first.text, e.title, e.text) for e in group[1:])
