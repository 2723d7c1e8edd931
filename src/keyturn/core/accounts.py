"""Creating user accounts: sign-up's flow (``sign_up``, which ``keyturn users create``
runs too) and the operator's account (``ensure_account``)."""

from __future__ import annotations

import re
from typing import Any

from .context import Context
from .models import Account
from .passwords import MIN_LENGTH, hash_password, password_problem
from .ports import Conflict
from .service import Flow, in_unit
from .unit_of_work import Assigned, UnitOfWork

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class AccountError(ValueError):
    """The account cannot be created as asked; the message says why."""


class AccountExists(AccountError):
    """An account with this email exists already. Only the operator's tools may say so:
    a page that did would tell anyone which addresses have accounts."""


def normalise_email(email: str) -> str:
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise AccountError(f"{email!r} is not an email address")
    return email


def check_new_account(email: str, password: str, min_length: int = MIN_LENGTH) -> str:
    """The normalised email, if an account with this email and password may be created;
    else AccountError saying what to change. Looks nothing up: the answer tells nothing
    about which accounts exist."""
    email = normalise_email(email)
    problem = password_problem(password, email, min_length)
    if problem:
        raise AccountError(problem)
    return email


def new_password_hash(password: str) -> str:
    """What a new account's password is stored as (argon2id): slow on purpose, so the
    caller runs it where it blocks nothing, before ``sign_up``. Hashed whether or not the
    email is taken: a duplicate costs the same time, so timing does not tell them apart."""
    return hash_password(password)


def sign_up(
    ctx: Context,
    *,
    email: str,
    password_hash: str,
    name: str = "",
    company: str = "",
    alias: str = "",
) -> Flow[Account]:
    """A new account, its password hashed already (``new_password_hash``). AccountExists
    if the email is taken: the caller must answer that as it answers a new account."""
    email = normalise_email(email)
    now = ctx.clock.now()
    values: dict[str, Any] = {"name": name.strip(), "company": company.strip(), "alias": alias.strip()}

    def work(unit: UnitOfWork) -> Assigned:
        return unit.create_account(email=email, password_hash=password_hash, now=now, **values)

    try:
        account_id = yield from in_unit(ctx, work)
    except Conflict:
        raise AccountExists(f"an account with the email {email} exists already") from None
    return Account(
        id=account_id.value, email=email, password_hash=password_hash, created_at=now, updated_at=now, **values
    )


def ensure_account(ctx: Context, *, email: str, name: str) -> Flow[Account]:
    """The account with this email, created without a password (no one signs in as it)
    if there is none yet: the operator's, which owns the clients the operator creates.
    Of two commands that create it at once, the second reads the one the first made."""
    email = normalise_email(email)
    now = ctx.clock.now()

    def work(unit: UnitOfWork) -> Account | Assigned:
        found = ctx.store.find_account_by_email(email)
        if found is not None:
            return found
        return unit.create_account(email=email, password_hash=None, now=now, name=name)

    for _ in range(2):
        try:
            found = yield from in_unit(ctx, work)
        except Conflict:  # created meanwhile: the next run finds it
            continue
        if isinstance(found, Account):
            return found
        return Account(id=found.value, email=email, password_hash=None, name=name, created_at=now, updated_at=now)
    raise AccountError(f"the account {email} was created meanwhile and is gone again")
