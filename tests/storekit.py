"""What tests do to a store's file from outside: fill the disk under it, then free space."""

from __future__ import annotations

import sqlite3

from bot.store import Store


def fill_disk(store: Store) -> None:
    """SQLITE_FULL from now on, as on a full disk: no free page left and no growth allowed."""
    with store._lock:
        conn = store.db.conn
        conn.execute("CREATE TABLE IF NOT EXISTS filler (pad BLOB)")
        conn.commit()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        while True:
            try:
                conn.execute("INSERT INTO filler VALUES (zeroblob(512))")
                conn.commit()
            except sqlite3.OperationalError:
                conn.rollback()
                break


def free_space(store: Store) -> None:
    with store._lock:
        store.db.conn.execute("PRAGMA max_page_count = 1073741823")
