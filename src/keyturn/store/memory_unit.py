"""The in-memory store's unit of work (core/unit_of_work.py).

Writes are queued and applied by ``commit``, all together under the store's lock, in
the group commit's order: the claim, then the inserts, then the cold writes (accounts,
clients, API keys, sessions) in the order they were queued, then the audit events and
the other changes. A unit whose claim is lost applies nothing; a cold write that fails
(Conflict) undoes the unit's others. It works on the state of its store (a MemoryStore)
directly.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

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
from keyturn.core.ports import Conflict
from keyturn.core.unit_of_work import Assigned

#: The MemoryStore's tables, which a commit that fails midway puts back as they were.
_TABLES = (
    "_accounts",
    "_clients",
    "_api_keys",
    "_codes",
    "_tokens",
    "_consents",
    "_sessions",
    "_signing_keys",
    "_events",
)


class _State(Protocol):
    """What a unit works on: the MemoryStore's tables, lock and audit log."""

    _lock: threading.RLock
    _accounts: dict[int, Account]
    _clients: dict[str, Client]
    _api_keys: dict[int, ApiKey]
    _codes: dict[bytes, AuthorizationCode]
    _tokens: dict[bytes, Token]
    _consents: dict[tuple[int, str], Consent]
    _sessions: dict[bytes, Session]
    _signing_keys: dict[str, SigningKey]
    _events: list[AuditEvent]

    def _add_account(self, account: Account) -> int: ...

    def _revoke_where(self, match: Any, now: int) -> int: ...

    def _add_signing_key(self, key: SigningKey, retire_active_until: int | None, replaces: str | None) -> None: ...

    def _record(
        self,
        kind: str,
        now: int,
        *,
        account_id: int | None = None,
        client_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None: ...


class MemoryUnit:
    def __init__(self, store: _State) -> None:
        self._store = store
        self._claim: Callable[[], bool] | None = None
        self._tokens: list[Token] = []
        self._codes: list[AuthorizationCode] = []
        self._audit: list[tuple[str, int, int | None, str | None, Mapping[str, Any] | None]] = []
        self._changes: list[Callable[[], object]] = []
        self._steps: list[Callable[[], object]] = []

    def save_tokens(self, tokens: Sequence[Token]) -> None:
        self._tokens.extend(tokens)

    def save_code(self, code: AuthorizationCode) -> None:
        self._codes.append(code)

    def claim_code(self, code_hash: bytes, client_id: str, now: int) -> tuple[AuthorizationCode | None, bool]:
        code = self._store._codes.get(code_hash)
        if code is None or code.client_id != client_id:
            return None, False
        if code.consumed_at is not None:
            return code, True
        self._claiming(lambda: self._consume(code_hash, now))
        return replace(code, consumed_at=now), False

    def rotate_refresh_token(
        self, token_hash: bytes, now: int, retry_blob: bytes | None, new_tokens: Sequence[Token]
    ) -> None:
        self._claiming(lambda: self._rotate(token_hash, now, retry_blob))
        self._tokens.extend(new_tokens)

    def revoke_token(self, token_hash: bytes, now: int) -> None:
        self._changes.append(lambda: self._store._revoke_where(lambda t: t.token_hash == token_hash, now))

    def revoke_grant(self, grant_id: str, now: int) -> int:
        self._changes.append(lambda: self._store._revoke_where(lambda t: t.grant_id == grant_id, now))
        live = self._store._tokens.values()
        return sum(1 for t in live if t.grant_id == grant_id and t.revoked_at is None)

    def save_consent(self, consent: Consent) -> None:
        self._changes.append(lambda: self._save_consent(consent))

    def record(
        self,
        kind: str,
        now: int,
        *,
        account_id: int | None = None,
        client_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self._audit.append((kind, now, account_id, client_id, detail))

    # ---- cold writes ----

    def create_account(
        self,
        *,
        email: str,
        password_hash: str | None,
        now: int,
        name: str = "",
        company: str = "",
        alias: str = "",
        attributes: Mapping[str, Any] | None = None,
    ) -> Assigned:
        account = Account(
            id=0,
            email=email,
            password_hash=password_hash,
            name=name,
            company=company,
            alias=alias,
            attributes=dict(attributes or {}),
            created_at=now,
            updated_at=now,
        )
        assigned = Assigned()
        self._steps.append(lambda: assigned.assign(self._store._add_account(account)))
        return assigned

    def add_client(self, client: Client) -> None:
        self._steps.append(lambda: self._add_client(client))

    def update_client(self, client: Client) -> None:
        def update() -> None:
            if client.client_id in self._store._clients:
                self._store._clients[client.client_id] = client

        self._steps.append(update)

    def delete_client(self, client_id: str) -> None:
        self._steps.append(lambda: self._delete_client(client_id))

    def add_api_key(
        self,
        *,
        key_hash: bytes,
        owner_id: int,
        name: str,
        display_prefix: str,
        scopes: tuple[str, ...] | None,
        now: int,
        expires_at: int | None = None,
    ) -> Assigned:
        key = ApiKey(0, key_hash, owner_id, name, display_prefix, scopes, now, expires_at=expires_at)
        assigned = Assigned()
        self._steps.append(lambda: assigned.assign(self._add_api_key(key)))
        return assigned

    def revoke_api_key(self, key_id: int, owner_id: int, now: int) -> None:
        def revoke() -> None:
            key = self._store._api_keys.get(key_id)
            if key is not None and key.owner_id == owner_id and key.revoked_at is None:
                self._store._api_keys[key_id] = replace(key, revoked_at=now)

        self._steps.append(revoke)

    def touch_api_key(self, key_id: int, now: int) -> None:
        def touch() -> None:
            key = self._store._api_keys.get(key_id)
            if key is not None:
                self._store._api_keys[key_id] = replace(key, last_used_at=now)

        self._steps.append(touch)

    def revoke_tokens_of(self, account_id: int, client_id: str, now: int) -> int:
        def mine(token: Token) -> bool:
            return token.account_id == account_id and token.client_id == client_id

        self._steps.append(lambda: self._store._revoke_where(mine, now))
        return sum(1 for t in self._store._tokens.values() if mine(t) and t.revoked_at is None)

    def delete_consent(self, account_id: int, client_id: str) -> None:
        self._steps.append(lambda: self._store._consents.pop((account_id, client_id), None))

    def create_session(self, session: Session) -> None:
        self._steps.append(lambda: self._create_session(session))

    def delete_session(self, session_hash: bytes) -> None:
        self._steps.append(lambda: self._store._sessions.pop(session_hash, None))

    def add_signing_key(self, key: SigningKey, retire_active_until: int | None, *, replaces: str | None) -> None:
        self._steps.append(lambda: self._store._add_signing_key(key, retire_active_until, replaces))

    # ---- the unit ----

    @property
    def empty(self) -> bool:
        return self._claim is None and not (self._tokens or self._codes or self._audit or self._changes or self._steps)

    def discard_issued(self) -> None:
        self._tokens.clear()
        self._codes.clear()

    def commit(self) -> bool:
        store = self._store
        with store._lock:
            hashes = [t.token_hash for t in self._tokens]
            if len(set(hashes)) < len(hashes) or any(h in store._tokens for h in hashes):
                raise Conflict("token exists")
            if any(code.code_hash in store._codes for code in self._codes):
                raise Conflict("code exists")
            if self._steps and (self._claim is not None or self._tokens or self._codes):
                raise RuntimeError("a unit of cold writes claims nothing and issues nothing")
            if self._claim is not None and not self._claim():
                return True
            before = {name: copy.copy(getattr(store, name)) for name in _TABLES} if self._steps else {}
            try:
                self._apply()
            except BaseException:
                for name, table in before.items():
                    setattr(store, name, table)
                raise
        return False

    def _apply(self) -> None:
        store = self._store
        store._tokens.update((t.token_hash, t) for t in self._tokens)
        store._codes.update((code.code_hash, code) for code in self._codes)
        for step in self._steps:
            step()
        for kind, now, account_id, client_id, detail in self._audit:
            if detail is not None and self._steps:  # it may name an id just assigned
                detail = {name: v.value if isinstance(v, Assigned) else v for name, v in detail.items()}
            store._record(kind, now, account_id=account_id, client_id=client_id, detail=detail)
        for change in self._changes:
            change()

    def _claiming(self, claim: Callable[[], bool]) -> None:
        if self._claim is not None:
            raise RuntimeError("a unit of work makes one claim at most")
        self._claim = claim

    def _consume(self, code_hash: bytes, now: int) -> bool:
        code = self._store._codes.get(code_hash)
        if code is None or code.consumed_at is not None:
            return False
        self._store._codes[code_hash] = replace(code, consumed_at=now)
        return True

    def _rotate(self, token_hash: bytes, now: int, retry_blob: bytes | None) -> bool:
        token = self._store._tokens.get(token_hash)
        if token is None or token.rotated_at is not None or token.revoked_at is not None:
            return False
        self._store._tokens[token_hash] = replace(token, rotated_at=now, retry_blob=retry_blob)
        return True

    def _add_client(self, client: Client) -> None:
        if client.client_id in self._store._clients:
            raise Conflict(f"client {client.client_id!r} exists")
        self._store._clients[client.client_id] = client

    def _delete_client(self, client_id: str) -> None:
        """With its codes, tokens and consents, as the SQL foreign keys cascade."""
        store = self._store
        if store._clients.pop(client_id, None) is not None:
            store._codes = {h: c for h, c in store._codes.items() if c.client_id != client_id}
            store._tokens = {h: t for h, t in store._tokens.items() if t.client_id != client_id}
            store._consents = {k: c for k, c in store._consents.items() if k[1] != client_id}

    def _add_api_key(self, key: ApiKey) -> int:
        keys = self._store._api_keys
        if any(k.key_hash == key.key_hash for k in keys.values()):
            raise Conflict("an API key with this hash exists")
        key_id = max(keys, default=0) + 1
        keys[key_id] = replace(key, id=key_id)
        return key_id

    def _create_session(self, session: Session) -> None:
        if session.session_hash in self._store._sessions:
            raise Conflict("session exists")
        self._store._sessions[session.session_hash] = session

    def _save_consent(self, consent: Consent) -> None:
        key = (consent.account_id, consent.client_id)
        existing = self._store._consents.get(key)
        if existing is not None:  # the first consent's created_at stays
            consent = replace(consent, created_at=existing.created_at)
        self._store._consents[key] = consent
