"""What can go wrong with the database file itself: unwritable, corrupt, replaced, taken.

SQLite errors are sorted into two kinds the rest of the bot acts on: the database cannot be
written now (disk full, I/O error, read-only: it may come back by itself) and the file is
corrupt (it will not: a person must recover it). The run lock is an flock on the database
file itself, so it follows the file's identity (device and inode) and a hard link or a second
path to the same file finds it taken. The status file `<db>.lock` says which process holds the
database and whether it can write it, for `alertbot health` (which cannot ask the database
when the disk is full). It is padded once to a fixed size and then rewritten in place, which
needs no new disk blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path

from bot.errors import AlreadyRunning, StoreCorrupt

# Extended result names start with the primary one (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED)
_UNWRITABLE = {
    "SQLITE_FULL": "disk full",
    "SQLITE_IOERR": "I/O error",
    "SQLITE_READONLY_DBMOVED": "the database file was moved or deleted",
    "SQLITE_READONLY": "read-only",
    "SQLITE_CANTOPEN": "cannot open a file beside it",
    "SQLITE_PERM": "permission denied",
}
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
GONE = "database file gone"  # the status written when the file vanished under the bot
STATUS_SIZE = 512  # bytes of the status file, written once, then rewritten in place


def unwritable_reason(exc: BaseException) -> str | None:
    """Why a write failed, when it is the file system's fault (else None)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    for prefix, reason in _UNWRITABLE.items():
        if name.startswith(prefix):
            return reason
    return None


def is_corrupt(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(_CORRUPT) or "malformed" in str(exc)


def corrupt_error(path: Path, exc: BaseException) -> StoreCorrupt:
    """One line naming the file and the ways back."""
    # SQLite's own report can run over several lines ("*** in database main ***\nPage 44: …")
    why = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return StoreCorrupt(
        f"{path}: the database file is corrupt ({why}). Stop alertbot, then recover what can be "
        f"read with `sqlite3 {path} .recover | sqlite3 {path}.recovered` and move "
        f"{path.name}.recovered into its place, or restore the file from a backup"
    )


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Raise StoreCorrupt when SQLite finds damaged pages (reads every page once)."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise corrupt_error(path, exc) from None
    problems = [r[0] for r in rows if r[0] != "ok"]
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise corrupt_error(path, Exception(f"{problems[0]}{more}"))


class RunLock:
    """An flock on the database file, held for the process's lifetime, plus the status file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.status_path = status_path(path)
        self.fd: int | None = None
        self.identity: tuple[int, int] | None = None
        self.state = ""

    def acquire(self) -> None:
        """Raise AlreadyRunning if another process holds this file under any name."""
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = read_status(self.status_path)[0] or "unknown"
            raise AlreadyRunning(
                f"another alertbot process (pid {pid}) is already running on {self.path} "
                "(perhaps under another name for the same file, such as a hard link); stop it "
                "first, or give this one its own database (ALERTBOT_DATABASE)"
            ) from None
        stat = os.fstat(fd)
        self.fd, self.identity = fd, (stat.st_dev, stat.st_ino)
        self.write_status("ok")

    def moved(self) -> str | None:
        """Why the path no longer leads to the file we hold, or None while it does."""
        if self.identity is None:
            return None
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return f"the database file {self.path} was deleted while alertbot was running"
        except OSError as exc:
            return f"the database file {self.path} cannot be examined: {exc}"
        if (stat.st_dev, stat.st_ino) != self.identity:
            return f"the database file {self.path} was replaced while alertbot was running"
        return None

    def write_status(self, state: str) -> None:
        """Tell `alertbot health` how this process sees the database (best effort)."""
        if self.fd is None:
            return
        self.state = state
        text = f"{os.getpid()}\n{state.replace(chr(10), ' ')}\n"
        data = text.encode()[: STATUS_SIZE - 1].ljust(STATUS_SIZE - 1) + b"\n"
        with contextlib.suppress(OSError):  # a full disk may refuse even this
            fd = os.open(self.status_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.pwrite(fd, data, 0)
            finally:
                os.close(fd)

    def release(self, state: str = "stopped") -> None:
        if self.fd is None:
            return
        if not self.state.startswith(GONE):  # the next start must still refuse a lost file
            self.write_status(state)
        os.close(self.fd)  # releases the flock
        self.fd = None


def lost_database(path: Path) -> str | None:
    """Why not to start afresh: the last bot saw this database deleted and it is still gone."""
    status = status_path(path)
    state = read_status(status)[1] or ""
    if state.startswith(GONE) and not path.exists():
        return (
            f"{path} was deleted while alertbot was running ({state}); restore it from a "
            f"backup, or delete {status} to start again with an empty database"
        )
    return None


def status_path(database: Path) -> Path:
    """Where the bot running on `database` writes its pid and what it sees."""
    return database.with_name(database.name + ".lock")


def reported_problem(database: Path) -> tuple[str | None, str] | None:
    """(pid, state) when the bot on `database` reports trouble (a full disk, say), else None."""
    pid, state = read_status(status_path(database))
    return (pid, state) if state not in (None, "ok", "stopped") else None


def read_status(path: Path) -> tuple[str | None, str | None]:
    """(pid, state) from a status file, (None, None) when there is none."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None, None
    pid = lines[0].strip() if lines else ""
    state = lines[1].strip() if len(lines) > 1 else ""
    return pid or None, state or None
