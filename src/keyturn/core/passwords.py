"""User passwords: argon2id, and only here. (Issued secrets use a keyed fast hash:
see credentials.py. A slow hash is for low-entropy, human-chosen secrets.)"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files
from itertools import pairwise
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

#: The default of the ``password_min_length`` setting.
MIN_LENGTH = 12
MAX_LENGTH = 1024
_MIN_DISTINCT = 4
#: What people put around a common password to pass a length rule: digits, symbols, spaces.
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")


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


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords (lowercase), from the file shipped beside this module."""
    text = files("keyturn.core").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def password_problem(password: str, email: str = "", min_length: int = MIN_LENGTH) -> str | None:
    """Why a new password is not acceptable, said so that its owner knows what to do; or None.

    NIST SP 800-63B §5.1.1.2: at least 8 characters (Keyturn asks 12 by default), no
    composition rules, and "compare the prospective secrets against a list that contains
    values known to be commonly-used, expected, or compromised"."""
    if len(password) < min_length:
        return f"Use at least {min_length} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if len(set(password)) < _MIN_DISTINCT:
        return f"Use at least {_MIN_DISTINCT} different characters."
    if email and password.casefold() == email.casefold():
        return "Choose a password that is not your email address."
    folded = password.casefold()
    if folded in common_passwords():
        return "This password is one of the most common; choose another."
    # Almost all of the 10,000 are shorter than 12: made long enough the usual ways
    # (password1234, Summer2024!!, iloveyouiloveyou, 123456789012) they are as guessable.
    if _common_at_heart(_DECORATION.sub("", folded)) or _sequence(folded):
        return "This password is a common one made longer; choose another."
    return None


def _common_at_heart(word: str) -> bool:
    """Whether ``word`` is a common password, or one repeated."""
    listed = common_passwords()
    for times in range(1, 5):
        size, rest = divmod(len(word), times)
        if size and not rest and word[:size] * times == word and word[:size] in listed:
            return True
    return False


def _sequence(text: str) -> bool:
    """Whether every character follows the one before it by the same step of one, up or
    down (abcdefghijkl, 123456789012, 987654321098; 9 and 0 are neighbours)."""
    steps = {(ord(b) - ord(a)) % 10 if a.isdigit() and b.isdigit() else ord(b) - ord(a) for a, b in pairwise(text)}
    return len(steps) == 1 and steps <= {1, -1, 9}
