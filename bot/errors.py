"""The exception tree; every message says what went wrong and what to do about it.

AlertbotError
├── ConfigError          configuration file or environment is invalid
├── RuleError            one or more rule files are invalid (carries every Problem)
├── FeedError            one feed could not be fetched or parsed
│   ├── FeedGone         410, or 404 for a day: the feed is disabled
│   └── FeedThrottled    429/503 with Retry-After: try again later
├── FullTextError        a linked article could not be fetched or read (the teaser is used)
└── StoreError           the database cannot be used
    ├── AlreadyRunning   another alertbot process holds the database
    ├── StoreUnwritable  writes fail now (disk full, I/O error, file moved): wait, send nothing
    └── StoreCorrupt     the file has damaged pages: recover it or restore a backup
"""

from __future__ import annotations

from dataclasses import dataclass


class AlertbotError(Exception):
    """Base class: anything alertbot reports to its user in words."""


class ConfigError(AlertbotError):
    """The configuration is invalid; the message names file, line and key."""


@dataclass(frozen=True)
class Problem:
    """One problem in one rule file, printed as ``FILE:LINE: message`` (``FILE: message`` when
    `line` is 0: the problem is the file itself)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:  # about the whole file (not a regular file, too large, ...)
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


class RuleError(AlertbotError):
    """The rule set is invalid; nothing of it was loaded."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class FeedError(AlertbotError):
    """A feed failed this time; the poller records it on the feed and goes on.

    `status` is the HTTP status when the server answered (404, 500 …), else None.
    """

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message)
        self.status = status


class FeedGone(FeedError):
    """The feed is gone for good (410, or 404 for a day); it is disabled."""


class FeedThrottled(FeedError):
    """The server asked us to come back later."""

    def __init__(self, message: str, retry_after: float, *, status: int | None = None):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class FullTextError(AlertbotError):
    """A linked article could not be fetched or read; the item is matched on its feed text.

    Not a FeedError: the feed itself is fine, so this never counts towards the feed's backoff.
    `retry_after` is set when the server asked us to come back later (429/503).
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class StoreError(AlertbotError):
    """The database cannot be opened or written."""


class AlreadyRunning(StoreError):
    """Another alertbot process is running on this database."""


class StoreUnwritable(StoreError):
    """The database cannot be written now (disk full, I/O error, read-only, file replaced).

    Nothing may be sent meanwhile: what was sent could not be recorded. It passes when writes
    succeed again (space freed), except for a replaced or deleted file, which needs a restart.
    """


class StoreCorrupt(StoreError):
    """The database file has damaged pages; the message says how to recover it."""
