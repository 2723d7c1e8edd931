"""Tests' accounts, clients and API keys, made by the operations that make them for real
(``sign_up``, ``ensure_account``, ``create_client``, ``create_api_key``), each run in its
unit of work with ``service.run``: a fixture is stored as the portal and the keyturn
command store one, with the same audit events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from keyturn.core.accounts import check_new_account, ensure_account, new_password_hash, sign_up
from keyturn.core.api_keys import create_api_key
from keyturn.core.client_admin import create_client
from keyturn.core.context import Context
from keyturn.core.models import Account
from keyturn.core.registration import ClientRequest, NewApiKey, NewClient
from keyturn.core.service import commit_now, run
from keyturn.core.unit_of_work import Assigned, UnitOfWork
from keyturn.runtime import Runtime


def _context(where: Context | Runtime) -> Context:
    return where.ctx if isinstance(where, Runtime) else where


def add_account(
    where: Context | Runtime,
    email: str,
    password: str | None = None,
    *,
    name: str = "",
    company: str = "",
    alias: str = "",
    attributes: Mapping[str, Any] | None = None,
) -> Account:
    """An account as the sign-up form makes it (with a password, which must pass the
    rule), or as the operator's is made (without one: ``ensure_account``).

    No operation stores a profile without a password, nor attributes (what /me passes
    through from the platform's own records of the account): such an account is queued
    in a unit as ``sign_up`` queues one."""
    ctx = _context(where)
    if attributes is None and password is not None:
        email = check_new_account(email, password)
        password_hash = new_password_hash(password)
        return run(sign_up(ctx, email=email, password_hash=password_hash, name=name, company=company, alias=alias))
    if attributes is None and not (company or alias):
        return run(ensure_account(ctx, email=email, name=name))
    password_hash = None if password is None else new_password_hash(password)
    now = ctx.clock.now()

    def work(unit: UnitOfWork) -> Assigned:
        return unit.create_account(
            email=email,
            password_hash=password_hash,
            now=now,
            name=name,
            company=company,
            alias=alias,
            attributes=attributes,
        )

    assigned = commit_now(ctx.store, work)
    account = ctx.store.get_account(assigned.value)
    assert account is not None
    return account


def add_client(where: Context | Runtime, owner: Account, *, name: str, **options: Any) -> NewClient:
    """A client of ``owner``'s, with any option of ``create_client`` (the operator's);
    the catalogue and production or not are the context's settings."""
    ctx = _context(where)
    via = options.pop("via", None)
    return run(create_client(ctx, owner.id, ClientRequest(name=name, **options), via=via))


def add_api_key(
    where: Context | Runtime,
    owner: Account,
    *,
    name: str = "API key",
    scopes: Iterable[str] | None = None,
    expires_at: int | None = None,
) -> NewApiKey:
    """An API key of ``owner``'s, as the portal creates one."""
    ctx = _context(where)
    return run(create_api_key(ctx, owner.id, name=name, scopes=scopes, expires_at=expires_at))
