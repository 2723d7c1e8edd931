"""User passwords: argon2id, and only here. (Issued secrets use a keyed fast hash:
see credentials.py. A slow hash is for low-entropy, human-chosen secrets.)"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 10
MAX_LENGTH = 1024


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    # Imported on first use: the token endpoint never needs it.
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's RFC 9106 defaults


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A real argon2id hash of nothing anyone knows: verifying against it for an unknown
    email costs the same as a wrong password, so timing does not reveal accounts."""
    import secrets

    return hash_password(secrets.token_urlsafe(32))


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, email: str = "") -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"the password must be at most {MAX_LENGTH} characters long"
    if len(set(password)) < 4:
        return "the password must not be one character repeated"
    if email and password.casefold() == email.casefold():
        return "the password must not be the email address"
    return None
