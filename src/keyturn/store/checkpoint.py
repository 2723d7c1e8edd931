"""SQLite's WAL checkpoints, moved off the event loop.

In WAL mode every commit appends pages to the write-ahead log, and a *checkpoint* copies
them back into the database file. By default SQLite checkpoints on the connection whose
commit took the log to 1,000 pages: milliseconds of copying and two fsyncs. On a server
that connection is the event loop's, and every request in flight waits for it; those
waits were the slowest writing requests (bench/RESULTS.md).

So a thread of its own copies the log (a PASSIVE checkpoint: it never blocks a writer, and
the sqlite3 module lets go of the GIL meanwhile). That alone would never let the log start
over: SQLite reuses the log from its beginning only when a writer starts a transaction and
finds every page of the log copied, and with commits arriving all the time some always
arrived during the copy. So once the log is long enough, the thread copies again what
arrived meanwhile, until that is only a few milliseconds' worth, and the event loop
copies what is left just before its next write transaction (a small part of a whole
log's copy). That transaction then starts the log over.

The log is bounded either way: at RESTART_PAGES by this, and, if the thread falls behind
or stops, at BACKSTOP_PAGES by SQLite's own checkpoint on commit.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

log = logging.getLogger("keyturn.store")

#: The log is started over once it holds this many pages (4 KiB each: 4 MiB, the length
#: at which SQLite itself would checkpoint).
RESTART_PAGES = 1000
#: SQLite's own checkpoint on commit, on the writer's connection, at this many pages:
#: only if the thread falls behind (SQLite's default is 1,000).
BACKSTOP_PAGES = 4000
#: The thread copies at most this often: each copy costs two fsyncs, and competes with
#: the event loop for the CPU (copies of many more commits at once raised the tail).
INTERVAL = 0.02
#: Passes the thread makes before the log starts over, and what it leaves to the writer.
MAX_PASSES = 4
FEW_PAGES = 32


def _checkpoint(connection: sqlite3.Connection | sqlite3.Cursor) -> tuple[bool, int, int]:
    """Copies what it can of the log; returns whether another checkpoint was running
    (then nothing was copied), the log's length and how much of it is copied, in pages."""
    busy, pages, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return bool(busy), int(pages), int(copied)


class WalCheckpointer:
    """Copies the WAL of one SQLite database in a background thread; see the module's
    docstring. ``connect`` opens a connection of the thread's own (to the same file)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], restart_pages: int | None = None) -> None:
        self._connect = connect
        self._restart_pages = RESTART_PAGES if restart_pages is None else restart_pages
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Set by the thread once the log is long enough to start over; the writer then
        #: calls :meth:`catch_up` before its next write transaction.
        self.restart_due = False

    def committed(self) -> None:
        """A writer committed: wakes the thread (started on the first call)."""
        if self._wake.is_set():
            return
        if self._thread is None:
            if self._stopping:
                return
            self._thread = threading.Thread(target=self._run, name="keyturn-wal-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def catch_up(self, cursor: sqlite3.Cursor) -> None:
        """On the writer's connection, before its write transaction: copies what the
        thread has not copied yet, so that the transaction starts the log over."""
        busy, pages, copied = _checkpoint(cursor)
        if not busy and copied == pages:  # busy: the thread is copying; try again next time
            self.restart_due = False

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _copy(self, connection: sqlite3.Connection) -> None:
        _busy, pages, _copied = _checkpoint(connection)
        if pages < self._restart_pages:
            return
        # The log is to start over. Copy again what arrived during the copy, until that
        # is a few milliseconds' worth: what arrives after the last pass is left for the
        # writer to copy (catch_up), and the writer waits while it does.
        for _ in range(MAX_PASSES):
            before, (_busy, pages, _copied) = pages, _checkpoint(connection)
            if pages - before <= FEW_PAGES:
                break
        self.restart_due = True

    def _run(self) -> None:
        try:
            connection = self._connect()
        except (sqlite3.Error, OSError) as exc:
            log.warning("WAL checkpoints stay on the writer's connection: %s", exc)
            return
        try:
            while True:
                self._wake.wait()
                if self._stopping:
                    return
                self._wake.clear()
                try:
                    self._copy(connection)
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed (SQLite will checkpoint on commit instead): %s", exc)
                if not self._stopping:
                    # Commits during this pause are copied together on the next wake.
                    time.sleep(INTERVAL)
        finally:
            connection.close()
