"""Pre-filling Keyturn's token table with N valid-looking rows, in bulk SQL.

Each row is an access token of one real client and account: a random 32-byte token_hash,
kind 'access', scope 'sms', a random grant id, and a one-hour lifetime that has either
ended (even rows) or not (odd rows). Rows go in by batches of ``batch`` per transaction:
generate_series on PostgreSQL, a recursive CTE on SQLite; 10 million rows are a matter
of minutes, not hours.
"""

from __future__ import annotations

import secrets
import sys
import time

from sqlalchemy import text

from keyturn.store.database import create_database_engine, is_sqlite

_COLUMNS = "token_hash, kind, client_id, account_id, scope, grant_id, created_at, expires_at"
# Even rows expired an hour ago or more, odd rows are live; creation times spread over an hour.
_CREATED = "(:now - (i % 3600) - CASE WHEN i % 2 = 0 THEN 7200 ELSE 0 END)"

# Built from the constants above only; every value is a bound parameter.
_SQLITE = f"""
WITH RECURSIVE seq(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM seq WHERE i < :last)
INSERT INTO tokens ({_COLUMNS})
SELECT randomblob(32), 'access', :client_id, :account_id, 'sms', lower(hex(randomblob(16))),
       {_CREATED}, {_CREATED} + 3600
FROM seq
"""  # noqa: S608

_POSTGRES = f"""
INSERT INTO tokens ({_COLUMNS})
SELECT sha256(convert_to(:salt || i::text, 'UTF8')), 'access', :client_id, :account_id, 'sms',
       md5(:salt || '/' || i::text), {_CREATED}, {_CREATED} + 3600
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
"""  # noqa: S608


def prefill_tokens(
    database_url: str, rows: int, *, client_id: str, account_id: int, batch: int = 500_000, quiet: bool = False
) -> float:
    """Inserts ``rows`` token rows; returns the seconds it took."""
    started = time.monotonic()
    engine = create_database_engine(database_url)
    sqlite = is_sqlite(database_url)
    statement = text(_SQLITE if sqlite else _POSTGRES)
    salt = secrets.token_hex(16)
    now = int(time.time())
    try:
        connection = engine.connect()
        if sqlite:
            # A big page cache: the random token_hash keys land all over the primary key's B-tree.
            connection.exec_driver_sql("PRAGMA cache_size = -524288")
        else:
            # Each batch is its own transaction; no need to wait for the WAL flush of each.
            connection.exec_driver_sql("SET synchronous_commit = off")
        connection.commit()
        done = 0
        while done < rows:
            count = min(batch, rows - done)
            params = {
                "first": done + 1,
                "last": done + count,
                "client_id": client_id,
                "account_id": account_id,
                "now": now,
                "salt": salt,
            }
            with connection.begin():
                connection.execute(statement, params)
            done += count
            if not quiet:
                elapsed = time.monotonic() - started
                print(
                    f"bench: prefill {done:,}/{rows:,} token rows ({done / elapsed:,.0f} rows/s)",
                    file=sys.stderr,
                    flush=True,
                )
        with connection.begin():
            connection.execute(text("ANALYZE tokens" if not sqlite else "ANALYZE"))
        connection.close()
    finally:
        engine.dispose()
    return time.monotonic() - started
