"""Creating user accounts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .clock import Clock
from .models import Account
from .passwords import MIN_LENGTH, hash_password, password_problem
from .ports import AccountStore, Conflict

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


def create_account(
    store: AccountStore,
    clock: Clock,
    *,
    email: str,
    password: str,
    min_length: int = MIN_LENGTH,
    name: str = "",
    company: str = "",
    alias: str = "",
    attributes: Mapping[str, Any] | None = None,
) -> Account:
    email = check_new_account(email, password, min_length)
    # Hashed before the insert, whether or not the email is taken: a duplicate costs the
    # same argon2 time as a new account, so timing does not tell them apart.
    password_hash = hash_password(password)
    try:
        return store.create_account(
            email=email,
            password_hash=password_hash,
            now=clock.now(),
            name=name.strip(),
            company=company.strip(),
            alias=alias.strip(),
            attributes=attributes,
        )
    except Conflict:
        raise AccountExists(f"an account with the email {email} exists already") from None
