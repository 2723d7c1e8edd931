"""Rows and records: one mapper per record, each way.

Hot records (tokens, codes, API keys, sessions, consents) map by position, in the order
of their table's columns (store/schema.py): the same mapper serves a SQLAlchemy row of
``select(table)`` and a raw driver row. Scope lists are stored space-separated, as
OAuth writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from keyturn.core.models import (
    Account,
    ApiKey,
    AuditEvent,
    AuthorizationCode,
    Client,
    Consent,
    Session,
    SigningKey,
    Token,
)
from keyturn.core.unit_of_work import Assigned

_CLIENT_LISTS = ("redirect_uris", "grant_types", "scopes", "required_scopes")


def scope_text(scopes: Sequence[str]) -> str:
    return " ".join(scopes)


def scopes_of(text: str | None) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


def _bytes(value: Any) -> bytes | None:
    # psycopg reads bytea as memoryview in some paths; records hold bytes.
    return None if value is None else bytes(value)


def token_row(token: Token) -> tuple[Any, ...]:
    return (
        token.token_hash,
        token.kind,
        token.client_id,
        token.account_id,
        scope_text(token.scopes),
        token.grant_id,
        token.parent_hash,
        token.created_at,
        token.expires_at,
        token.revoked_at,
        token.rotated_at,
        token.retry_blob,
    )


def token_from_row(row: Sequence[Any]) -> Token:
    return Token(
        token_hash=bytes(row[0]),
        kind=row[1],
        client_id=row[2],
        account_id=row[3],
        scopes=scopes_of(row[4]),
        grant_id=row[5],
        parent_hash=_bytes(row[6]),
        created_at=row[7],
        expires_at=row[8],
        revoked_at=row[9],
        rotated_at=row[10],
        retry_blob=_bytes(row[11]),
    )


def code_row(code: AuthorizationCode) -> tuple[Any, ...]:
    return (
        code.code_hash,
        code.client_id,
        code.account_id,
        scope_text(code.scopes),
        code.redirect_uri,
        code.code_challenge,
        code.code_challenge_method,
        code.grant_id,
        code.created_at,
        code.expires_at,
        code.consumed_at,
    )


def code_from_row(row: Sequence[Any]) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=bytes(row[0]),
        client_id=row[1],
        account_id=row[2],
        scopes=scopes_of(row[3]),
        redirect_uri=row[4],
        code_challenge=row[5],
        code_challenge_method=row[6],
        grant_id=row[7],
        created_at=row[8],
        expires_at=row[9],
        consumed_at=row[10],
    )


def api_key_from_row(row: Sequence[Any]) -> ApiKey:
    return ApiKey(
        id=row[0],
        key_hash=bytes(row[1]),
        owner_id=row[2],
        name=row[3],
        display_prefix=row[4],
        # NULL: every scope the owner has.
        scopes=None if row[5] is None else scopes_of(row[5]),
        created_at=row[6],
        expires_at=row[7],
        last_used_at=row[8],
        revoked_at=row[9],
    )


def session_row(session: Session) -> tuple[Any, ...]:
    return (session.session_hash, session.account_id, session.created_at, session.expires_at)


def session_from_row(row: Sequence[Any]) -> Session:
    return Session(bytes(row[0]), row[1], row[2], row[3])


def consent_row(consent: Consent) -> tuple[Any, ...]:
    return (consent.account_id, consent.client_id, scope_text(consent.scopes), consent.created_at, consent.updated_at)


def consent_from_row(row: Sequence[Any]) -> Consent:
    return Consent(row[0], row[1], scopes_of(row[2]), row[3], row[4])


def audit_row(
    kind: str, now: int, account_id: int | None, client_id: str | None, detail: Mapping[str, Any] | None
) -> tuple[Any, ...]:
    """An audit event's row (AUDIT_COLUMNS), its detail as JSON text. An Assigned in the
    detail is written as its id; before the commit assigns it, this raises Unassigned."""
    return (now, kind, account_id, client_id, json.dumps(dict(detail or {}), default=_assigned_id))


def _assigned_id(value: object) -> int:
    if isinstance(value, Assigned):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def audit_event_from_row(row: Any) -> AuditEvent:
    return AuditEvent(**row._mapping)


def account_from_row(row: Any) -> Account:
    values = dict(row._mapping)
    del values["email_key"]  # the look-up key, not part of the record
    return Account(**values)


def client_values(client: Client) -> dict[str, Any]:
    values = {name: getattr(client, name) for name in client.__slots__}
    for name in _CLIENT_LISTS:
        values[name] = list(values[name])
    return values


def client_from_row(row: Any) -> Client:
    values = dict(row._mapping)
    for name in _CLIENT_LISTS:
        values[name] = tuple(values[name])
    return Client(**values)


def signing_key_from_row(row: Any) -> SigningKey:
    values = dict(row._mapping)
    del values["id"], values["current"]
    return SigningKey(**values)
