"""The signed-in user's own records. A record that is not theirs is answered exactly as
one that does not exist: ids are not secrets, and another answer would tell one user
what another has."""

from __future__ import annotations

from .context import Context
from .models import ApiKey, Client, ClientKind


class NotFound(Exception):
    """The record does not exist, or is not the signed-in user's (or not of the kind the
    operation is for); nothing was changed."""


def own_client(ctx: Context, account_id: int, client_id: str, kind: ClientKind) -> Client:
    client = ctx.store.get_client(client_id)
    if client is None or client.owner_id != account_id or client.kind != kind.value:
        raise NotFound
    return client


def own_api_key(ctx: Context, account_id: int, key_id: int) -> ApiKey:
    """The user's key, unless it is revoked: a revoked key is there no more for its owner."""
    key = next((k for k in ctx.store.list_api_keys(account_id) if k.id == key_id), None)
    if key is None or key.revoked_at is not None:
        raise NotFound
    return key
