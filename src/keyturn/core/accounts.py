"""Creating user accounts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .clock import Clock
from .models import Account
from .passwords import hash_password, password_problem
from .ports import AccountStore, Conflict

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class AccountError(ValueError):
    """The account cannot be created as asked; the message says why."""


def normalise_email(email: str) -> str:
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise AccountError(f"{email!r} is not an email address")
    return email


def create_account(
    store: AccountStore,
    clock: Clock,
    *,
    email: str,
    password: str,
    name: str = "",
    company: str = "",
    alias: str = "",
    attributes: Mapping[str, Any] | None = None,
) -> Account:
    email = normalise_email(email)
    problem = password_problem(password, email)
    if problem:
        raise AccountError(problem)
    try:
        return store.create_account(
            email=email,
            password_hash=hash_password(password),
            now=clock.now(),
            name=name.strip(),
            company=company.strip(),
            alias=alias.strip(),
            attributes=attributes,
        )
    except Conflict:
        raise AccountError(f"an account with the email {email} exists already") from None
