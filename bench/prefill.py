"""Pre-filling Keyturn's token table with N valid-looking rows, in bulk SQL.

Each row is an access token of one real client and account, keyed as Keyturn keys
tokens: the issue time (6 bytes, milliseconds) then 26 random bytes. The rows were
issued one a millisecond up to two hours ago, in order; kind 'access', scope 'sms', a
random grant id; even rows have expired, odd rows are live for another day. Rows go in
by batches of ``batch`` per transaction: generate_series on PostgreSQL, a recursive CTE
on SQLite; 10 million rows are a matter of minutes, not hours.
"""

from __future__ import annotations

import os
import secrets
import sys
import time

from sqlalchemy import text

from keyturn.store.database import create_database_engine, is_sqlite

_COLUMNS = "token_hash, kind, client_id, account_id, scope, grant_id, created_at, expires_at"
# Row i was issued at :origin + i milliseconds; even rows expired, odd rows live a day more.
_CREATED = "((:origin + i) / 1000)"
_EXPIRES = f"({_CREATED} + CASE WHEN i % 2 = 0 THEN 3600 ELSE 86400 + 7200 END)"

# Built from the constants above only; every value is a bound parameter.
_SQLITE = f"""
WITH RECURSIVE seq(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM seq WHERE i < :last)
INSERT INTO tokens ({_COLUMNS})
SELECT token_key(:origin + i), 'access', :client_id, :account_id, 'sms', lower(hex(randomblob(16))),
       {_CREATED}, {_EXPIRES}
FROM seq
"""  # noqa: S608

_POSTGRES = f"""
INSERT INTO tokens ({_COLUMNS})
SELECT decode(lpad(to_hex(:origin + i), 12, '0'), 'hex')
         || substr(sha256(convert_to(:salt || i::text, 'UTF8')), 1, 26),
       'access', :client_id, :account_id, 'sms', md5(:salt || '/' || i::text), {_CREATED}, {_EXPIRES}
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
    origin = time.time_ns() // 1_000_000 - 7_200_000 - rows
    try:
        connection = engine.connect()
        if sqlite:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            raw.create_function("token_key", 1, _token_key)
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
                "origin": origin,
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


def _token_key(issued_ms: int) -> bytes:
    return issued_ms.to_bytes(6, "big") + os.urandom(26)
