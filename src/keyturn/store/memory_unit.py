"""The in-memory store's unit of work (core/unit_of_work.py).

Writes are queued and applied by ``commit``, all together under the store's lock, in
the group commit's order: the claim, then the inserts, then the other changes. A unit
whose claim is lost applies nothing. It works on the state of its store (a MemoryStore)
directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from keyturn.core.models import AuthorizationCode, Consent, Token
from keyturn.core.ports import Conflict


class _State(Protocol):
    """What a unit works on: the MemoryStore's tables, lock and audit log."""

    _lock: threading.RLock
    _codes: dict[bytes, AuthorizationCode]
    _tokens: dict[bytes, Token]
    _consents: dict[tuple[int, str], Consent]

    def _revoke_where(self, match: Any, now: int) -> int: ...

    def record(
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

    @property
    def empty(self) -> bool:
        return self._claim is None and not (self._tokens or self._codes or self._audit or self._changes)

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
            if self._claim is not None and not self._claim():
                return True
            store._tokens.update((t.token_hash, t) for t in self._tokens)
            store._codes.update((code.code_hash, code) for code in self._codes)
            for kind, now, account_id, client_id, detail in self._audit:
                store.record(kind, now, account_id=account_id, client_id=client_id, detail=detail)
            for change in self._changes:
                change()
        return False

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

    def _save_consent(self, consent: Consent) -> None:
        key = (consent.account_id, consent.client_id)
        existing = self._store._consents.get(key)
        if existing is not None:  # the first consent's created_at stays
            consent = replace(consent, created_at=existing.created_at)
        self._store._consents[key] = consent
