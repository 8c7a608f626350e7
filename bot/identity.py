"""What makes two entries the same story: normalised links, fingerprints and shingles of words.

Pure and shared: the parser uses it to give items their keys, the poll decisions to compare them.

Story keys from links ignore what publishers change without changing the story: the scheme
(http and https give one key), a leading ``www.``, default ports, a trailing slash, the
``#fragment`` and tracking parameters. Tracking parameters are recognised by courlan's list (the
URL cleaner trafilatura uses, kept up to date there: ``utm_*``, ``fbclid``, ``*_medium``,
``*_campaign`` …) plus the news publishers' own ones it lacks (heise ``wt_mc``, DW ``maca``,
Guardian ``CMP``, Reuters ``taid`` …).
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# seen in real news feeds and missing from courlan's pattern (it checks the rest)
_TRACKING = frozenset(
    "wt_mc wt_zmc wt_ref maca cmp taid ito ns_mchannel ns_source ns_campaign ns_linkname "
    "ns_fee at_custom1 at_custom2 at_custom3 at_custom4 cmpid ncid ocid spm sr_share smid "
    "mkt_tok yclid soc_src soc_trk dmcid rss intcmp icid s_cid".split()
)
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_", "at_", "ns_", "wt_", "_ga", "_gl")


def normalize_link(url: str, *, fragment: bool = False) -> str:
    """A story key from a link: same story, same key, whatever tracking, scheme or case changed.

    `fragment` keeps the ``#anchor`` (for a page whose entries differ only by it).
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return url
    host = parts.hostname.removeprefix("www.")
    host = f"[{host}]" if ":" in host else host
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    return urlunsplit(
        (
            "https",  # http and https are the same story
            netloc,
            parts.path.rstrip("/"),
            _clean_query(parts.query),
            parts.fragment if fragment else "",
        )
    )


def _clean_query(query: str) -> str:
    if not query:
        return ""
    # only here: importing courlan costs 14 MB, and most links carry no query at all
    from courlan.clean import clean_query

    kept = parse_qsl(clean_query(query), keep_blank_values=True)
    return urlencode(sorted((k, v) for k, v in kept if not _tracking(k)), quote_via=quote)


def _tracking(name: str) -> bool:
    name = name.lower()
    return name in _TRACKING or name.startswith(_TRACKING_PREFIXES)


def text_fingerprint(title: str, text: str) -> str:
    """A hash of the words of title and text, blind to case, punctuation and spacing."""
    folded = unicodedata.normalize("NFKC", f"{title}\n{text}").casefold()
    return sha256_hex(fingerprint_words(folded))[:32]


def fingerprint_words(folded: str) -> str:
    """The `\\w+` words of `folded`, joined by single spaces (ASCII text, the usual case, by
    str.translate, three times faster than the regex: a new feed's 50 items pay it each)."""
    if folded.isascii():
        return " ".join(folded.translate(_ASCII_SEPARATORS).split())
    return " ".join(_WORDS.findall(folded))


_WORDS = re.compile(r"\w+")
_ASCII_SEPARATORS = {c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")}


BODY_MIN_WORDS = 12  # shorter bodies ("Watch the video.") are shared by unrelated stories


def body_fingerprint(text: str) -> str:
    """A hash of the body's words alone (outlets and editors change headlines, not bodies), or
    "" for a body too short to name one story."""
    folded = fingerprint_words(unicodedata.normalize("NFKC", text).casefold())
    if folded.count(" ") + 1 < BODY_MIN_WORDS:
        return ""
    return sha256_hex(folded)[:32]


def body_fingerprints(texts: list[str]) -> list[str]:
    """`body_fingerprint` of each of one document's bodies, "" for a body found twice there (a
    standard blurb under every entry tells none of them apart)."""
    prints = [body_fingerprint(text) for text in texts]
    seen: dict[str, int] = {}
    for p in prints:
        seen[p] = seen.get(p, 0) + 1
    return [p if seen[p] == 1 else "" for p in prints]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def words(text: str) -> list[str]:
    """The casefolded words of `text` (NFKC), as fingerprints see them."""
    return fingerprint_words(unicodedata.normalize("NFKC", text).casefold()).split()


def shingles(text: str, size: int = 3) -> set[str]:
    """Every run of `size` consecutive words (the whole text when it is shorter)."""
    ws = words(text)
    if len(ws) <= size:
        return {" ".join(ws)} if ws else set()
    return {" ".join(ws[i : i + size]) for i in range(len(ws) - size + 1)}


def same_story(title_a: str, text_a: str, title_b: str, text_b: str) -> bool:
    """Whether two entries sharing an identifier (guid or link) tell the same story.

    An edit keeps most of the body: at least half of the shorter body's 3-word runs are in the
    other (a headline edit, an added paragraph). Bodies that differ more are different stories
    that happen to share an identifier (a podcast page, a constant guid), whatever their
    headlines say ("Daily briefing"). Without a body on one side, the headlines decide.
    """
    a, b = shingles(text_a), shingles(text_b)
    if a and b:
        return len(a & b) >= 0.5 * min(len(a), len(b))
    return words(title_a) == words(title_b)


_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# soft hyphens, word joiners and stray byte-order marks are invisible and split words apart
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u2060\ufeff\u200b"), None)


def clean_text(text: str) -> str:
    """Text as read: entities a publisher escaped twice decoded, invisible hyphens removed."""
    for _ in range(2):  # `&amp;#39;` decodes to `&#39;` in the parser; once more here
        if "&" not in text or not _ENTITY.search(text):
            break
        text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    return text.translate(_INVISIBLE)
