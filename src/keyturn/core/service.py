"""Running core's work in a unit of work, and again when its claim was lost.

``in_unit`` is I/O-free in the manner of httpx's ``auth_flow``: a generator that opens a
unit, runs the work in it, *yields* the unit to be committed and receives whether its
claim was lost. Drivers only perform the commit it asks for: ``run`` below commits at
once (the keyturn command, tests); the server's driver (keyturn.runtime.Blocking) runs
the work where blocking I/O belongs and hands the unit to the store's group commit.
Core's functions that write (``token_endpoint.token``, ``revocation.revoke``,
``authorize.approve``, the portal's and the command's operations) return such flows;
``commit_now`` commits a unit that claims nothing at once, without a flow (an API key's
last use, tests' fixtures).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Generic, TypeVar

from .context import Context
from .errors import OAuthError
from .ports import Conflict, Store, StoreUnavailable
from .unit_of_work import UnitOfWork

T = TypeVar("T")

#: A flow: yields units to commit, is sent whether the claim was lost, returns T.
Flow = Generator[UnitOfWork, bool, T]

#: A work whose claim lost runs again and then sees the claim, so a second run settles
#: it; the third is a margin, not an expected path.
RUNS = 3


def in_unit(ctx: Context, work: Callable[[UnitOfWork], T]) -> Flow[T]:
    """Runs ``work`` in a unit and has the unit committed; runs it again, in a fresh unit,
    when the unit's claim was lost (a concurrent request claimed the same code or refresh
    token first: the run again answers as core does for a code or token already used).

    When ``work`` raises an OAuthError, the credentials it was to issue are dropped and
    the rest of its unit (audit events, a used-up code, a revoked family) is committed
    all the same before the error is raised: the error is the answer, whatever the commit
    says. Once a commit lost nothing, the flow returns or raises without I/O (drivers may
    resume it where they like)."""
    for _ in range(RUNS):
        unit = ctx.store.begin()
        try:
            result = work(unit)
        except OAuthError as error:
            unit.discard_issued()
            if not unit.empty:
                with contextlib.suppress(StoreUnavailable, Conflict):
                    yield unit
            raise error from None
        if unit.empty or not (yield unit):
            return result
    raise StoreUnavailable("a request lost its claim repeatedly")


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A flow's result."""

    value: T


def advance(flow: Flow[T], lost: bool | None = None) -> UnitOfWork | Done[T]:
    """Runs a flow to its next unit (first with ``lost`` None, then with what the last
    commit said), or to its end. Its exceptions propagate; StopIteration does not (it
    cannot cross a future)."""
    try:
        return next(flow) if lost is None else flow.send(lost)
    except StopIteration as stop:
        return Done(stop.value)


def failed(flow: Flow[T], error: Exception) -> UnitOfWork | Done[T]:
    """Tells a flow that committing its unit failed; it raises, or goes on."""
    try:
        return flow.throw(error)
    except StopIteration as stop:
        return Done(stop.value)


def run(flow: Flow[T]) -> T:
    """Drives a flow, committing each unit at once, in this thread."""
    step = advance(flow)
    while not isinstance(step, Done):
        try:
            lost = step.commit()
        except Exception as exc:
            step = failed(flow, exc)
        else:
            step = advance(flow, lost)
    return step.value


def commit_now(store: Store, work: Callable[[UnitOfWork], T]) -> T:
    """Runs ``work`` in a unit of ``store`` and commits it at once, in this thread. For
    work that claims nothing (so nothing to run again), by callers without a Context."""
    unit = store.begin()
    result = work(unit)
    if unit.commit():
        raise RuntimeError("a unit without a claim lost one")
    return result
