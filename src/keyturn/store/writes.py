"""The statements of the group commit (store/group_commit.py), for one dialect.

Column names and markers are constants; the values travel as parameters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .schema import AUDIT_COLUMNS, CODE_COLUMNS, CONSENT_COLUMNS, TOKEN_COLUMNS


def _values(mark: str, count: int) -> str:
    return "(" + ", ".join([mark] * count) + ")"


class Writes:
    def __init__(self, mark: str) -> None:
        self.token_values = _values(mark, len(TOKEN_COLUMNS))
        self.insert_tokens = f"INSERT INTO tokens ({', '.join(TOKEN_COLUMNS)}) VALUES "  # noqa: S608
        self.insert_token = self.insert_tokens + self.token_values
        self.insert_code = (
            f"INSERT INTO authorization_codes ({', '.join(CODE_COLUMNS)}) "  # noqa: S608
            f"VALUES {_values(mark, len(CODE_COLUMNS))}"
        )
        # The detail is JSON text: PostgreSQL is told so.
        audit_marks = [mark] * (len(AUDIT_COLUMNS) - 1) + [mark if mark == "?" else "%s::json"]
        self.insert_audit = f"INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) VALUES ({', '.join(audit_marks)})"  # noqa: S608
        self.revoke_token = f"UPDATE tokens SET revoked_at = {mark} WHERE token_hash = {mark} AND revoked_at IS NULL"  # noqa: S608
        self.revoke_grant = f"UPDATE tokens SET revoked_at = {mark} WHERE grant_id = {mark} AND revoked_at IS NULL"  # noqa: S608
        # The first consent's created_at stays; the scope and updated_at are replaced.
        self.save_consent = (
            f"INSERT INTO consents ({', '.join(CONSENT_COLUMNS)}) VALUES {_values(mark, len(CONSENT_COLUMNS))} "  # noqa: S608
            "ON CONFLICT (account_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at"
        )
        # The two claims: whoever changes the row first owns the code, or the rotation.
        self.claim_code = Claim(
            "authorization_codes",
            sets=(("consumed_at", "bigint"),),
            match=(("code_hash", "bytea"), ("client_id", "text")),
            unset=("consumed_at",),
            mark=mark,
        )
        self.claim_rotation = Claim(
            "tokens",
            sets=(("rotated_at", "bigint"), ("retry_blob", "bytea")),
            match=(("token_hash", "bytea"),),
            unset=("rotated_at", "revoked_at"),
            mark=mark,
        )

    def insert_token_rows(self, count: int) -> str:
        """One INSERT of ``count`` token rows."""
        return self.insert_tokens + ", ".join([self.token_values] * count)


class Claim:
    """A conditional UPDATE that makes a row a unit's own: whoever changes the row first
    owns it. Its parameters, per row: the new values of ``sets``, then the values of
    ``match`` (the first is the table's primary key, the claim's key). ``one`` claims one
    row; ``many`` (PostgreSQL) claims any number of rows in one statement, its parameters
    one array per column (``many_params``), and returns the keys of the rows it changed."""

    def __init__(
        self,
        table: str,
        sets: tuple[tuple[str, str], ...],
        match: tuple[tuple[str, str], ...],
        unset: tuple[str, ...],
        mark: str,
    ) -> None:
        self.table, self.sets, self.match, self.unset = table, sets, match, unset
        assignments = ", ".join(f"{name} = {mark}" for name, _ in sets)
        where = " AND ".join([f"{name} = {mark}" for name, _ in match] + [f"{name} IS NULL" for name in unset])
        self.one = f"UPDATE {table} SET {assignments} WHERE {where}"  # noqa: S608 - constant names
        self.many = self._many_sql() if mark == "%s" else ""

    def key(self, params: Sequence[Any]) -> bytes:
        """The claimed row's primary key, out of its parameters."""
        key: bytes = params[len(self.sets)]
        return key

    def many_params(self, rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
        """``many``'s parameters: one array per column, an element per row."""
        return [list(column) for column in zip(*rows, strict=True)]

    def _many_sql(self) -> str:
        # One text whatever the number of rows (arrays, not a VALUES list): psycopg
        # converts it once and PostgreSQL prepares it once per connection. The rows
        # are locked (FOR UPDATE, after ORDER BY) in key order before they are
        # changed; a row that another transaction claims meanwhile is checked again
        # once that one commits, and drops out.
        table, key = self.table, self.match[0][0]
        columns = (*self.sets, *self.match)
        names = ", ".join(name for name, _ in columns)
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
        joined = " AND ".join(
            [f"t.{name} = v.{name}" for name, _ in self.match] + [f"t.{name} IS NULL" for name in self.unset]
        )
        assignments = ", ".join(f"{name} = v.{name}" for name, _ in self.sets)
        return (
            f"WITH v AS (SELECT * FROM unnest({arrays}) AS v ({names})), "  # noqa: S608 - constant names
            f"claimed AS (SELECT t.{key} FROM {table} t JOIN v ON {joined} ORDER BY t.{key} FOR UPDATE OF t) "
            f"UPDATE {table} SET {assignments} FROM v, claimed "
            f"WHERE {table}.{key} = claimed.{key} AND v.{key} = claimed.{key} RETURNING {table}.{key}"
        )
