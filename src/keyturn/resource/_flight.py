"""One question at a time about a credential no cached answer covers.

The first request presenting it asks, in a :class:`Flight`; the requests presenting it
meanwhile wait for that flight's outcome instead of asking too (a client starting fifty
calls with a new key costs one introspection, not fifty).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

from ._errors import AuthError
from ._flow import Flow
from ._principal import Principal

_Done = TypeVar("_Done", threading.Event, anyio.Event)


@dataclass(eq=False)
class Flight(Generic[_Done]):
    """One request's question about a credential; the requests presenting that credential
    meanwhile wait for its outcome."""

    #: Set once the question has its outcome (threading.Event on the blocking path).
    done: _Done
    #: The event loop of an async question (None: blocking, or not asyncio).
    loop: object = None
    principal: Principal | None = None
    error: AuthError | None = field(default=None, repr=False)

    def record(self, flow: Flow[Principal]) -> Flow[Principal]:
        """``flow``, its outcome kept for the requests waiting on this flight."""
        try:
            self.principal = yield from flow
        except AuthError as exc:
            self.error = exc
            raise
        return self.principal

    def outcome(self) -> Principal | None:
        """The answer, raised if it was an error; None when the asking request ended
        without one (it was cancelled): then the waiting request asks itself."""
        if self.error is not None:
            raise self.error.with_traceback(None)
        return self.principal
