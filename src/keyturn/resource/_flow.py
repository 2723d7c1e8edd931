"""How an I/O-free flow asks for HTTP, and how a driver answers it (httpx's ``auth_flow``).

A flow is a generator: it yields the requests it needs and receives their responses; a
request that could not be made is raised inside the flow, at the ``yield``, as the
AuthServerUnavailable it met. The flow returns its outcome. Whatever it decides (what to
ask, what to remember, what to keep when the server is unavailable) it decides between
two yields, without I/O, so that a blocking and an async driver run the same decisions
and differ only in how they wait.

What all requests share (the authorization server's metadata, its JWKS) is fetched in a
:class:`Shared` step: a flow of its own that the driver runs under its lock, so that
requests needing it at the same moment fetch it one after the other, each asking first
whether the one before already did.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

import httpx

from ._errors import AuthError

T = TypeVar("T")

#: A fetch of something all requests share: yields only requests, and never a Shared step
#: (the driver holds its lock while running it).
Fetch: TypeAlias = Generator[httpx.Request, httpx.Response | None, T]


class Shared:
    """A step that fetches what every request shares: ``flow``, run under the driver's lock."""

    __slots__ = ("flow",)

    def __init__(self, fetching: Fetch[None]) -> None:
        #: The fetch, returning its error rather than raising it: the driver hands it back,
        #: and it is raised in the flow that yielded this step.
        self.flow: Fetch[AuthError | None] = _error_of(fetching)


#: A step a flow asks its driver for.
Step: TypeAlias = httpx.Request | Shared
#: A request's flow: None is what a Shared step sends back (the flow reads what it fetched
#: from the state it changed).
Flow: TypeAlias = Generator[Step, httpx.Response | None, T]
#: What a driver hands back for a step: the response, or the error that stood in its way.
Reply: TypeAlias = httpx.Response | AuthError | None


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A flow's outcome."""

    value: T


def resume(flow: Flow[T], reply: Reply) -> Step | Done[T]:
    """Hands ``reply`` to ``flow`` (raises it there, if it is an error); the flow's next
    step, or its outcome. ``resume(flow, None)`` starts it."""
    try:
        if isinstance(reply, AuthError):
            return flow.throw(reply)
        return flow.send(reply)
    except StopIteration as done:
        return Done(done.value)


def fetch(request: httpx.Request) -> Fetch[httpx.Response]:
    """``response = yield from fetch(request)``: the response to ``request``."""
    response = yield request
    if response is None:
        raise TypeError(f"no response to {request.method} {request.url}")
    return response


def _error_of(fetching: Fetch[None]) -> Fetch[AuthError | None]:
    try:
        yield from fetching
    except AuthError as exc:
        return exc
    return None
