"""Client authentication under rate limits, at the token, introspection and revocation
endpoints.

RFC 6749 §2.3.1: "the authorization server MUST protect any endpoint utilizing it against
brute force attacks". What is throttled is what the caller controls:
- failed authentications count per (client_id, caller's address), at most
  ``client_auth_failures_per_client_and_address`` a minute; past it, that pair is refused
  before its credentials are checked. Someone failing with a client's id, from anywhere
  else, never slows the client itself down;
- the per-client request rate (``rate_limit_token`` etc.) counts only requests whose
  client authenticated. A public client proves nothing (anyone may send its client_id),
  so its rate is counted per (client_id, address).

On success this costs one limiter call, as a plain rate limit does: the request's slot and
the check of its failure count are one atomic ``take``. A failure gives the slot back and
counts the failure.
"""

from __future__ import annotations

from .client_auth import PresentedClient, authenticate_client
from .context import Context
from .errors import InvalidClient, RateLimited
from .models import Client
from .ratelimit import Slot, counted_address

_MINUTE = 60


def failure_key(client_id: str, address: str) -> str:
    # An address holds no space, so "address client_id" names one pair only.
    return f"client_auth_failed:{address} {client_id}"


def authenticate(ctx: Context, presented: PresentedClient, address: str, what: str, per_minute: int) -> Client:
    """The client, once its credentials check out and no limit is spent; InvalidClient
    or RateLimited otherwise. ``what`` names the endpoint's rate limit, ``per_minute`` its
    size (0: none); ``address`` is the caller's network address (an IPv6 one counts for
    its /64)."""
    address = counted_address(address)
    slots: list[Slot] = []
    if per_minute > 0:
        key = f"{what}:{presented.client_id}"
        if presented.secret is None:
            key += " " + address
        slots.append(Slot(key, per_minute, _MINUTE))
    failures = ctx.settings.client_auth_failures_per_client_and_address
    if failures > 0:
        slots.append(Slot(failure_key(presented.client_id, address), failures, _MINUTE, cost=0))
    if slots:
        wait = ctx.limiter.take(slots)
        if wait is not None:
            raise RateLimited(wait)
    try:
        return authenticate_client(presented, ctx.clients, ctx.hasher)
    except InvalidClient:
        if per_minute > 0:
            ctx.limiter.give_back(slots[:1])
        if failures > 0:
            ctx.limiter.hit(failure_key(presented.client_id, address), failures, _MINUTE)
        raise
