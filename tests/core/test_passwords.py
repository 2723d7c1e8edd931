"""The rule for new passwords (NIST SP 800-63B §5.1.1.2): a minimum length, no composition
rules, and none of the most common passwords; each refusal says what to do instead."""

from __future__ import annotations

from importlib.resources import files

import pytest

from keyturn.core.accounts import AccountError, AccountExists, check_new_account, new_password_hash, sign_up
from keyturn.core.context import Context
from keyturn.core.passwords import MIN_LENGTH, common_passwords, password_problem, verify_password

from .conftest import drive


def test_the_default_minimum_is_12_characters() -> None:
    assert MIN_LENGTH == 12
    assert password_problem("eleven chars") is None  # 12 characters
    assert password_problem("eleven char") == "Use at least 12 characters."


def test_the_minimum_is_a_parameter() -> None:
    assert password_problem("a fine passphrase", min_length=20) == "Use at least 20 characters."
    assert password_problem("nine char", min_length=8) is None


def test_the_shipped_list_holds_the_10000_most_common_passwords() -> None:
    listed = common_passwords()
    assert len(listed) == 10_000
    assert {"123456", "password", "qwerty123456", "1qaz2wsx3edc"} <= listed
    assert all(p == p.casefold() and p.strip() == p and p for p in listed)
    # The file is package data (pyproject.toml), read through importlib.resources.
    assert files("keyturn.core").joinpath("common_passwords.txt").is_file()


@pytest.mark.parametrize("password", ["qwerty123456", "QWERTY123456", "1qaz2wsx3edc", "Password"])
def test_a_common_password_is_refused_whatever_its_case(password: str) -> None:
    assert password_problem(password, min_length=8) == "This password is one of the most common; choose another."


@pytest.mark.parametrize(
    "password",
    [
        "password1234",  # a common one with digits added
        "Summer2024!!",  # ... with digits and symbols
        "!!iloveyou!!",
        "qwertyuiop12",
        "monkeymonkey",  # ... repeated
        "123456789012",  # a sequence
        "987654321098",
        "abcdefghijkl",
    ],
)
def test_a_common_password_made_longer_is_refused(password: str) -> None:
    # Nearly all of the 10,000 are shorter than 12: the list alone would refuse none of these.
    assert password.casefold() not in common_passwords()
    assert password_problem(password) == "This password is a common one made longer; choose another."


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "hello world 2024", "mydogisnamedrex1", "abcdabcdabcd", "2024-2025-2026"],
)
def test_what_is_more_than_a_common_password_made_longer_is_accepted(password: str) -> None:
    assert password_problem(password) is None


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("a" * 1025, "Use at most 1024 characters."),
        ("abcabcabcabc", "Use at least 4 different characters."),
        ("Ann@Example.com", "Choose a password that is not your email address."),
        ("correct horse battery staple", None),
    ],
)
def test_each_refusal_says_what_to_do(password: str, problem: str | None) -> None:
    assert password_problem(password, "ann@example.com") == problem


def test_check_new_account_normalises_the_email_and_applies_the_rule() -> None:
    assert check_new_account(" ann@example.com ", "correct horse battery staple") == "ann@example.com"
    with pytest.raises(AccountError, match=r"^Use at least 12 characters\.$"):
        check_new_account("ann@example.com", "too short")
    with pytest.raises(AccountError, match="not an email address"):
        check_new_account("ann", "correct horse battery staple")


def test_signing_up_applies_the_rule_and_says_when_the_email_is_taken(ctx: Context) -> None:
    with pytest.raises(AccountError, match="most common"):
        check_new_account("ann@example.com", "qwerty123456")
    email = check_new_account("ann@example.com", "correct horse battery staple")
    account = drive(ctx, sign_up(ctx, email=email, password_hash=new_password_hash("correct horse battery staple")))
    assert account.password_hash is not None
    assert verify_password(account.password_hash, "correct horse battery staple")
    with pytest.raises(AccountExists, match="exists already"):
        drive(ctx, sign_up(ctx, email="ANN@example.com", password_hash=new_password_hash("another good passphrase")))
