"""The unit of work on SQL (core/unit_of_work.py): the group commit.

A unit queues one request's writes; the units of requests that finish together are then
written by one transaction, and each request answers only after that transaction
committed. On SQLite (requests run on the event loop) that is every unit of one turn of
the loop, committed on the loop; on PostgreSQL (requests run in threads) every unit that
arrived while the previous batch was committing, committed in a thread of its own, one
batch at a time. A commit costs far more than an insert (on PostgreSQL, a WAL flush), so
this is what lets one writer issue thousands of tokens a second without weakening
durability.

A unit may hold one claim: the conditional UPDATE that makes an authorization code or a
refresh token its own (``WHERE consumed_at IS NULL``, ``WHERE rotated_at IS NULL``). A
batch runs the claims first, then the inserts, then the other changes (revocations, which
so also reach tokens inserted by the same batch; consents). A claim that changes no row
means another unit got there first: that unit's writes are skipped and its commit says
its claim was lost. Claims stay atomic across processes, since the database decides
them. On PostgreSQL one statement claims all the rows of one kind of a batch, with one
statement text whatever the batch's size (so that it is prepared once), and the batch is
pipelined: it costs two round trips (claims; the rest and COMMIT), however many units it
holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from keyturn.core.models import AuthorizationCode, Consent, Token
from keyturn.core.unit_of_work import Unassigned, UnitOfWork

from .checkpoint import WalCheckpointer
from .cold_writes import ColdWrites, Step, commit_alone
from .connections import Connections
from .reads import Reads
from .rows import audit_row, code_row, consent_row, token_row
from .workers import Workers
from .writes import Claim, Writes


class GroupUnit(ColdWrites):
    """One request's queued writes (a UnitOfWork). Its cold writes (store/cold_writes.py)
    are ``steps``; a unit that holds any is committed alone."""

    __slots__ = ("_group", "audit", "changes", "claim", "claim_params", "codes", "tokens")

    def __init__(self, group: GroupCommit) -> None:
        self._group = group
        self.claim: Claim | None = None
        self.claim_params: tuple[Any, ...] = ()
        self.tokens: list[Token] = []
        self.codes: list[tuple[Any, ...]] = []
        self.audit: list[tuple[Any, ...]] = []
        #: Statements run after the inserts, in order: (sql, parameters).
        self.changes: list[tuple[str, tuple[Any, ...]]] = []
        self.steps: tuple[()] | list[Step] = ()

    def save_tokens(self, tokens: Sequence[Token]) -> None:
        self.tokens.extend(tokens)

    def save_code(self, code: AuthorizationCode) -> None:
        self.codes.append(code_row(code))

    def claim_code(self, code_hash: bytes, client_id: str, now: int) -> tuple[AuthorizationCode | None, bool]:
        code = self._group.reads.code(code_hash, client_id)
        if code is None:
            return None, False
        if code.consumed_at is not None:
            return code, True
        self._claim(self._group.writes.claim_code, (now, code_hash, client_id))
        return dataclasses.replace(code, consumed_at=now), False

    def rotate_refresh_token(
        self, token_hash: bytes, now: int, retry_blob: bytes | None, new_tokens: Sequence[Token]
    ) -> None:
        self._claim(self._group.writes.claim_rotation, (now, retry_blob, token_hash))
        self.tokens.extend(new_tokens)

    def revoke_token(self, token_hash: bytes, now: int) -> None:
        self.changes.append((self._group.writes.revoke_token, (now, token_hash)))

    def revoke_grant(self, grant_id: str, now: int) -> int:
        self.changes.append((self._group.writes.revoke_grant, (now, grant_id)))
        return self._group.reads.live_tokens_of_grant(grant_id)

    def save_consent(self, consent: Consent) -> None:
        self.changes.append((self._group.writes.save_consent, consent_row(consent)))

    def record(
        self,
        kind: str,
        now: int,
        *,
        account_id: int | None = None,
        client_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            self.audit.append(audit_row(kind, now, account_id, client_id, detail))
        except Unassigned:  # it names an id its unit's commit assigns: a cold write
            self._record_assigned(kind, now, account_id, client_id, detail)

    @property
    def empty(self) -> bool:
        return self.claim is None and not (self.tokens or self.codes or self.audit or self.changes or self.steps)

    def discard_issued(self) -> None:
        self.tokens.clear()
        self.codes.clear()

    def commit(self) -> bool:
        if self.steps:
            commit_alone(self._group, self)
            return False
        return self in self._group.write([self])

    def _claim(self, claim: Claim, params: tuple[Any, ...]) -> None:
        if self.claim is not None:
            raise RuntimeError("a unit of work makes one claim at most")
        self.claim, self.claim_params = claim, params


class GroupCommit:
    def __init__(self, connections: Connections, reads: Reads) -> None:
        self.connections = connections
        self.reads = reads
        self.writes = Writes(connections.mark)
        self._sqlite = connections.sqlite
        self._units: list[GroupUnit] = []
        self._batch: _Batch | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wal = WalCheckpointer(connections.own_connection) if connections.file_backed else None
        self._committer = Workers(1, "keyturn-commit")  # PostgreSQL: one batch at a time

    def begin(self) -> GroupUnit:
        return GroupUnit(self)

    async def commit(self, unit: UnitOfWork) -> bool:
        """Queues ``unit`` for the next group commit and returns once that committed:
        True when the unit's claim was lost (nothing of it was written). SQLite commits in
        the next turn of the loop, on the loop: a commit takes microseconds there.
        PostgreSQL commits in a thread, one batch at a time: what arrives meanwhile
        waits for the next batch. A task that gives up waiting cancels only its wait."""
        assert isinstance(unit, GroupUnit)
        if unit.steps:  # cold writes, in a transaction of their own (store/cold_writes.py)
            if self._sqlite:
                commit_alone(self, unit)
            else:
                await self._committer.run(functools.partial(commit_alone, self, unit))
            return False
        self._units.append(unit)
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            if self._sqlite:
                asyncio.get_running_loop().call_soon(self._write_batch)
            elif self._writer is None:
                self._writer = asyncio.get_running_loop().create_task(self._write_batches())
        if not batch.done:
            waiter = asyncio.get_running_loop().create_future()
            batch.waiters.append(waiter)
            await waiter
        if batch.error is not None:
            raise batch.error
        return unit in batch.lost

    def _take_batch(self) -> tuple[list[GroupUnit], _Batch]:
        units, batch = self._units, self._batch
        self._units, self._batch = [], None
        assert batch is not None
        return units, batch

    def _write_batch(self) -> None:
        units, batch = self._take_batch()
        wal = self._wal
        try:
            if wal is not None and wal.restart_due:
                with self.connections.autocommit() as cursor:
                    wal.catch_up(cursor)
            lost = self.write(units)
        except Exception as exc:  # every waiting request gets the error, none hangs
            batch.finish(error=exc)
            return
        if wal is not None:
            wal.committed()
        batch.finish(lost)

    async def _write_batches(self) -> None:
        try:
            while self._batch is not None:
                units, batch = self._take_batch()
                try:
                    lost = await self._committer.run(functools.partial(self.write, units))
                except Exception as exc:
                    batch.finish(error=exc)
                else:
                    batch.finish(lost)
        finally:
            self._writer = None

    def write(self, units: Sequence[GroupUnit]) -> frozenset[GroupUnit]:
        """One transaction for ``units``, now; returns those whose claim another unit (or
        another process) had made first: none of their writes is kept."""
        writes = self.writes
        lost: set[GroupUnit] = set()
        tokens: list[Token] = []
        codes: list[tuple[Any, ...]] = []
        audit: list[tuple[Any, ...]] = []
        changes: list[tuple[str, tuple[Any, ...]]] = []
        with self.connections.transaction(pipelined=not self._sqlite) as cursor:
            for claim in (writes.claim_code, writes.claim_rotation):
                lost.update(self._decide(cursor, claim, [unit for unit in units if unit.claim is claim]))
            for unit in units:
                if unit not in lost:
                    tokens.extend(unit.tokens)
                    codes.extend(unit.codes)
                    audit.extend(unit.audit)
                    changes.extend(unit.changes)
            if self._sqlite:  # multi-row INSERTs of at most 64 rows each
                for offset in range(0, len(tokens), 64):
                    part = tokens[offset : offset + 64]
                    cursor.execute(writes.insert_token_rows(len(part)), [v for t in part for v in token_row(t)])
            elif tokens:  # pipelined: one prepared INSERT per row costs less than one long text
                cursor.executemany(writes.insert_token, [token_row(token) for token in tokens])
            if codes:
                cursor.executemany(writes.insert_code, codes)
            if audit:
                cursor.executemany(writes.insert_audit, audit)
            for sql, params in changes:
                cursor.execute(sql, params)
        return frozenset(lost)

    def _decide(self, cursor: Any, claim: Claim, units: list[GroupUnit]) -> list[GroupUnit]:
        """Runs one kind of claim for ``units``; returns the units that lost. Rows are
        claimed in key order, so that two processes' batches cannot deadlock on each
        other's rows; within one key, first come first served (the others lose)."""
        units.sort(key=lambda unit: claim.key(unit.claim_params))
        lost: list[GroupUnit] = []
        first: dict[bytes, GroupUnit] = {}
        for unit in units:
            key = claim.key(unit.claim_params)
            if key in first:
                lost.append(unit)
            else:
                first[key] = unit
        if not first:
            return lost
        if self._sqlite:  # a statement costs microseconds here: one per claim
            for unit in first.values():
                cursor.execute(claim.one, unit.claim_params)
                if cursor.rowcount != 1:
                    lost.append(unit)
            return lost
        cursor.execute(claim.many, claim.many_params(unit.claim_params for unit in first.values()))
        won = {bytes(row[0]) for row in cursor.fetchall()}
        lost.extend(unit for key, unit in first.items() if key not in won)
        return lost

    def close(self) -> None:
        """Stops the WAL checkpoints' thread and the commit thread."""
        if self._wal is not None:
            self._wal.close()
        self._committer.close()


class _Batch:
    """One group commit's outcome, and the requests waiting for it. Each waits on a
    future of its own: a request that gives up (its task cancelled) cancels only that."""

    __slots__ = ("done", "error", "lost", "waiters")

    def __init__(self) -> None:
        self.done = False
        self.error: Exception | None = None
        self.lost: frozenset[GroupUnit] = frozenset()
        self.waiters: list[asyncio.Future[None]] = []

    def finish(self, lost: frozenset[GroupUnit] = frozenset(), error: Exception | None = None) -> None:
        self.done, self.lost, self.error = True, lost, error
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
