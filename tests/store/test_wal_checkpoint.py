"""WAL checkpoints off the event loop (keyturn.store.checkpoint): the log of a busy SQLite
database still starts over, so it stays short, and every commit stays in the database."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from keyturn.store import checkpoint
from keyturn.store.checkpoint import WalCheckpointer
from keyturn.store.database import create_database_engine
from keyturn.store.migrate import upgrade
from keyturn.store.sql import SqlStore

from .test_contract import make_account, make_client, make_token

PAGE = 4096


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def _wal_pages(path: Path) -> int:
    return os.path.getsize(f"{path}-wal") // PAGE


def test_the_log_starts_over_though_the_writer_never_checkpoints(tmp_path: Path) -> None:
    """The writer's own checkpoint on commit is off: only the thread and catch_up keep
    the log short. Without catch_up, 1,500 commits of a page each would leave a log of
    1,500 pages or more."""
    path = tmp_path / "wal.db"
    writer = _connect(path)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    wal = WalCheckpointer(lambda: _connect(path), restart_pages=64)
    restarts = 0
    try:
        for i in range(1500):
            if wal.restart_due:
                wal.catch_up(writer.cursor())
                restarts += not wal.restart_due
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("INSERT INTO t (id, body) VALUES (?, ?)", (i, os.urandom(PAGE)))
            writer.execute("COMMIT")
            wal.committed()
            time.sleep(0.0005)
    finally:
        wal.close()
    assert restarts >= 3
    assert _wal_pages(path) < 600
    assert writer.execute("SELECT count(*), sum(length(body)) FROM t").fetchone() == (1500, 1500 * PAGE)
    assert not [t for t in threading.enumerate() if t.name == "keyturn-wal-checkpoint" and t.is_alive()]
    writer.close()


def test_catch_up_leaves_the_restart_due_while_the_thread_is_copying(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    writer = _connect(path)
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    writer.execute("INSERT INTO t VALUES (1)")
    wal = WalCheckpointer(lambda: _connect(path))
    wal.restart_due = True
    busy = [(1, 5, 3)]

    class Busy:
        def execute(self, sql: str) -> Busy:
            assert sql == "PRAGMA wal_checkpoint(PASSIVE)"
            return self

        def fetchone(self) -> tuple[int, int, int]:
            return busy.pop()

    wal.catch_up(Busy())  # type: ignore[arg-type]
    assert wal.restart_due is True
    wal.catch_up(writer.cursor())  # nothing else is copying: all of the log is copied
    assert wal.restart_due is False
    wal.close()
    writer.close()


def test_a_thread_that_cannot_connect_leaves_checkpoints_to_sqlite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    wal = WalCheckpointer(refuse)
    with caplog.at_level("WARNING", logger="keyturn.store"):
        wal.committed()
        wal.close()
    assert "WAL checkpoints stay on the writer's connection: unable to open database file" in caplog.text
    assert wal.restart_due is False


def test_group_commits_keep_the_log_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the server's group commit, on the event loop: the log starts over soon
    after RESTART_PAGES. Without the catch-up it would hold every page written here (over
    2,000: SQLite's own checkpoint waits for BACKSTOP_PAGES)."""
    monkeypatch.setattr(checkpoint, "RESTART_PAGES", 100)
    url = f"sqlite:///{tmp_path / 'keyturn.db'}"
    engine = create_database_engine(url)
    upgrade(engine)
    store = SqlStore(engine)
    client = make_client(store, make_account(store))

    async def write(batches: int, per_batch: int) -> None:
        for batch in range(batches):
            units = []
            for n in range(per_batch):
                unit = store.begin()
                unit.save_tokens([make_token(client, f"{batch}-{n}", grant_id=f"grant-{batch}-{n}")])
                units.append(unit)
            assert await asyncio.gather(*(store.group.commit(unit) for unit in units)) == [False] * per_batch
            await asyncio.sleep(0.002)

    try:
        asyncio.run(write(batches=600, per_batch=10))
        with store.engine.connect() as connection:
            count = connection.exec_driver_sql("SELECT count(*) FROM tokens").scalar()
        pages = _wal_pages(tmp_path / "keyturn.db")  # the longest the log has been
    finally:
        store.close()
    assert count == 600 * 10
    assert pages < 800


class _Log:
    """A connection whose PASSIVE checkpoints report these log lengths, one per call."""

    def __init__(self, *lengths: int) -> None:
        self.lengths = list(lengths)
        self.calls = 0

    def execute(self, sql: str) -> _Log:
        assert sql == "PRAGMA wal_checkpoint(PASSIVE)"
        self.calls += 1
        return self

    def fetchone(self) -> tuple[int, int, int]:
        length = self.lengths.pop(0)
        return 0, length, length


@pytest.mark.parametrize(
    ("lengths", "passes", "due"),
    [
        ((999,), 1, False),  # short: copied, and left to grow
        ((1000, 1010), 2, True),  # 10 pages arrived during the copy: few enough
        ((1000, 1400, 1450, 1460), 4, True),  # copied again until few arrived
        ((1000, 1400, 1800, 2200, 2600), 5, True),  # at most MAX_PASSES more
    ],
)
def test_before_the_log_starts_over_the_thread_copies_until_little_is_left(
    lengths: tuple[int, ...], passes: int, due: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "MAX_PASSES", 4)
    monkeypatch.setattr(checkpoint, "FEW_PAGES", 32)
    wal = WalCheckpointer(lambda: _connect(Path("unused")), restart_pages=1000)
    connection = _Log(*lengths)
    wal._copy(connection)  # type: ignore[arg-type]
    assert (connection.calls, wal.restart_due) == (passes, due)
