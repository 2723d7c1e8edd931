"""Bounded storage: deleting what has expired, in small batches.

Peers' token tables grow to tens of gigabytes because nothing deletes expired rows.
Here every expired code, token and session, every revoked or expired API key, and every
audit event past retention is deleted after ``expired_retention`` seconds (audit events
after ``audit_retention_days``), a batch at a time so no transaction holds locks long.
"""

from __future__ import annotations

from collections.abc import Callable

from keyturn.settings import Settings

from .clock import Clock
from .ports import PURGEABLE, Housekeeping

BATCH = 1000
_DAY = 86_400


def cutoffs(settings: Settings, now: int) -> dict[str, int]:
    """For each purgeable kind: rows that ended before this time go."""
    expired = now - settings.expired_retention
    limits = dict.fromkeys(PURGEABLE, expired)
    limits["audit_events"] = now - settings.audit_retention_days * _DAY
    return limits


def purge(
    store: Housekeeping,
    clock: Clock,
    settings: Settings,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Deletes everything past retention; returns the count per kind."""
    deleted = dict.fromkeys(PURGEABLE, 0)
    for kind, before in cutoffs(settings, clock.now()).items():
        while True:
            count = store.purge(kind, before, batch)
            deleted[kind] += count
            if progress is not None and count:
                progress(kind, count)
            if count < batch:
                break
    return deleted
