"""The in-memory reference implementation of the storage contract (core/ports.py).

It backs core's unit tests and is held to the same contract suite as the SQL store. It
is pure Python: importing it pulls in no ORM. Its units of work (store/memory_unit.py)
commit one at a time, each at once; they make every write.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
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
from keyturn.core.ports import Conflict

from .memory_unit import MemoryUnit


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[int, Account] = {}
        self._clients: dict[str, Client] = {}
        self._api_keys: dict[int, ApiKey] = {}
        self._codes: dict[bytes, AuthorizationCode] = {}
        self._tokens: dict[bytes, Token] = {}
        self._consents: dict[tuple[int, str], Consent] = {}
        self._signing_keys: dict[str, SigningKey] = {}
        self._sessions: dict[bytes, Session] = {}
        self._events: list[AuditEvent] = []

    def begin(self) -> MemoryUnit:
        return MemoryUnit(self)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None

    # ---- accounts ----

    def _add_account(self, account: Account) -> int:
        """Its unit's step: ``account`` numbered next; Conflict if the (case-insensitive)
        email is taken."""
        with self._lock:
            if self.find_account_by_email(account.email) is not None:
                raise Conflict(f"an account with email {account.email!r} exists")
            account_id = len(self._accounts) + 1
            self._accounts[account_id] = replace(account, id=account_id)
            return account_id

    def get_account(self, account_id: int) -> Account | None:
        return self._accounts.get(account_id)

    def find_account_by_email(self, email: str) -> Account | None:
        wanted = email.casefold()
        return next((a for a in self._accounts.values() if a.email.casefold() == wanted), None)

    # ---- clients ----

    def get_client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def list_clients(self, owner_id: int) -> list[Client]:
        found = [c for c in self._clients.values() if c.owner_id == owner_id]
        return sorted(found, key=lambda c: (c.created_at, c.client_id))

    def longest_access_token_ttl(self) -> int | None:
        ttls = [c.access_token_ttl for c in self._clients.values() if c.access_token_ttl is not None]
        return max(ttls) if ttls else None

    # ---- API keys ----

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        return next((k for k in self._api_keys.values() if k.key_hash == key_hash), None)

    def list_api_keys(self, owner_id: int) -> list[ApiKey]:
        return sorted((k for k in self._api_keys.values() if k.owner_id == owner_id), key=lambda k: k.id)

    # ---- tokens ----

    def find_token(self, token_hash: bytes) -> Token | None:
        return self._tokens.get(token_hash)

    def _revoke_where(self, match: Any, now: int) -> int:
        with self._lock:
            hits = [h for h, t in self._tokens.items() if match(t) and t.revoked_at is None]
            for token_hash in hits:
                self._tokens[token_hash] = replace(self._tokens[token_hash], revoked_at=now)
            return len(hits)

    # ---- consents ----

    def get_consent(self, account_id: int, client_id: str) -> Consent | None:
        return self._consents.get((account_id, client_id))

    def list_consents(self, account_id: int) -> list[Consent]:
        found = [c for (a, _), c in self._consents.items() if a == account_id]
        return sorted(found, key=lambda c: (c.created_at, c.client_id))

    # ---- sessions ----

    def get_session(self, session_hash: bytes) -> Session | None:
        return self._sessions.get(session_hash)

    def get_session_and_consent(self, session_hash: bytes, client_id: str) -> tuple[Session | None, Consent | None]:
        session = self._sessions.get(session_hash)
        return session, None if session is None else self._consents.get((session.account_id, client_id))

    # ---- signing keys ----

    def _add_signing_key(self, key: SigningKey, retire_active_until: int | None, replaces: str | None) -> None:
        """A unit's step, under the lock."""
        with self._lock:
            if key.kid in self._signing_keys:
                raise Conflict(f"signing key {key.kid!r} exists")
            active = next((k for k in self._signing_keys.values() if k.active), None)
            if (None if active is None else active.kid) != replaces:
                raise Conflict(f"the active signing key is not {replaces!r}")
            if active is not None:
                self._signing_keys[active.kid] = replace(
                    active, retired_at=key.created_at, expires_at=retire_active_until
                )
            self._signing_keys[key.kid] = key

    def list_signing_keys(self, now: int) -> list[SigningKey]:
        # Newest first: dicts keep insertion order.
        return [k for k in reversed(self._signing_keys.values()) if k.expires_at is None or k.expires_at > now]

    # ---- housekeeping ----

    def purge(self, kind: str, before: int, limit: int) -> int:
        with self._lock:
            if kind == "authorization_codes":
                table: dict[Any, Any] = self._codes
                old = [k for k, c in table.items() if c.expires_at < before]
            elif kind == "tokens":
                table = self._tokens
                old = [k for k, t in table.items() if t.expires_at < before]
            elif kind == "sessions":
                table = self._sessions
                old = [k for k, s in table.items() if s.expires_at < before]
            elif kind == "api_keys":
                table = self._api_keys
                old = [k for k, a in table.items() if _api_key_gone_before(a, before)]
            elif kind == "audit_events":
                kept = [e for e in self._events if e.at >= before]
                gone = self._events[: len(self._events) - len(kept)][:limit]
                self._events = [e for e in self._events if e not in gone]
                return len(gone)
            else:
                raise ValueError(f"cannot purge {kind!r}")
            for key in old[:limit]:
                del table[key]
            return min(len(old), limit)

    # ---- audit ----

    def _record(
        self,
        kind: str,
        now: int,
        *,
        account_id: int | None = None,
        client_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self._lock:
            self._events.append(
                AuditEvent(
                    id=len(self._events) + 1,
                    at=now,
                    kind=kind,
                    account_id=account_id,
                    client_id=client_id,
                    detail=dict(detail or {}),
                )
            )

    def list_events(
        self,
        *,
        limit: int = 100,
        kind: str | None = None,
        account_id: int | None = None,
        client_id: str | None = None,
        since: int | None = None,
    ) -> list[AuditEvent]:
        def wanted(event: AuditEvent) -> bool:
            return (
                (kind is None or (event.kind.startswith(kind[:-1]) if kind.endswith("*") else event.kind == kind))
                and (account_id is None or event.account_id == account_id)
                and (client_id is None or event.client_id == client_id)
                and (since is None or event.at >= since)
            )

        return [e for e in reversed(self._events) if wanted(e)][:limit]


def _api_key_gone_before(key: ApiKey, before: int) -> bool:
    ended = key.revoked_at if key.revoked_at is not None else key.expires_at
    return ended is not None and ended < before
