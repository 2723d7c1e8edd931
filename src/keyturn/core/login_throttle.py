"""Throttling sign-ins so that guessing is slow and nobody can lock anyone else out.

RFC 6749 §10.10: "The authorization server MUST prevent attackers from guessing ...
resource owner passwords". Counting per account alone would hand that power to anyone: five
wrong passwords from anywhere would lock the owner out. So what is limited is what the
guesser controls, within 15-minute windows (see docs/deploy.md for the whole scheme):

- failures per (account, address): ``login_failures_per_account_and_address``; an IPv6
  address counts for its /64 (``ratelimit.counted_address``);
- failures per address, whatever the account: ``login_failures_per_address``;
- per account, only a slow-down: past ``login_failures_before_account_slowdown`` failures
  from browsers without the account's device cookie, an attempt from an address that has
  failed before must wait, twice as long after each failure (at most
  ``login_account_slowdown_max_delay`` s). An address with no failures passes at once;
- a browser with the account's device cookie (OWASP "Slow Down Online Guessing Attacks
  with Device Cookies"), earned by signing in, is a source of its own: only its own
  failures count against it, per (account, device), with the per-(account, address) limit.

An attempt is counted *before* the password hash runs, in one atomic ``take`` over all its
keys, and given back if it succeeds: parallel guesses cannot all pass a check made before
any of them failed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .context import Context
from .ratelimit import UNLIMITED, Slot, counted_address

#: Seconds of a sign-in window.
WINDOW = 900
DEVICE_COOKIE = "kt_device"
_VERSION = "d1"
_MAX_EMAIL = 320


@dataclass(frozen=True, slots=True)
class Attempt:
    """A sign-in attempt that got past the limits: its reserved slots, given back if the
    password is right."""

    slots: tuple[Slot, ...]


def account_key(email: str) -> str:
    """The account a sign-in names, as counted: the email as typed, trimmed and casefolded
    (whether or not such an account exists, so that a refusal tells nothing). Text too
    long to be an email address names no account; its digest keeps the key short."""
    key = email.strip().casefold()
    return key if len(key) <= _MAX_EMAIL else "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


class LoginThrottle:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def begin(self, email: str, address: str, device_cookie: str | None) -> Attempt | int:
        """Reserves the attempt in every limit it falls under; returns it, or the seconds
        to wait (counting nothing) when a limit is spent. Blocking (the limiter may be
        Redis): call through Blocking."""
        settings = self.ctx.settings
        account = account_key(email)
        address = counted_address(address)
        per_pair = settings.login_failures_per_account_and_address
        device = self.device(device_cookie, account)
        if device is not None:
            slots = [Slot(f"login_failed:device:{device} {account}", per_pair, WINDOW)] if per_pair else []
        else:
            slots = self._untrusted(account, address)
        wait = self.ctx.limiter.take(slots) if slots else None
        return Attempt(tuple(slots)) if wait is None else wait

    def _untrusted(self, account: str, address: str) -> list[Slot]:
        settings = self.ctx.settings
        slots: list[Slot] = []
        if settings.login_failures_per_account_and_address:
            slots.append(
                Slot(f"login_failed:{address} {account}", settings.login_failures_per_account_and_address, WINDOW)
            )
        address_key = f"login_failed:{address}"
        # Counted even with no limit of its own: the slow-down asks whether the address failed.
        slots.append(Slot(address_key, settings.login_failures_per_address or UNLIMITED, WINDOW))
        threshold = settings.login_failures_before_account_slowdown
        if threshold:
            account_failures = f"login_failed_account:{account}"
            failed, from_here = self.ctx.limiter.counts([account_failures, address_key])
            slots.append(Slot(account_failures, UNLIMITED, WINDOW))
            if failed >= threshold and from_here > 0:
                delay = min(2 ** min(failed - threshold, 30), settings.login_account_slowdown_max_delay)
                # One attempt per delay: the first to take the slot opens its window.
                slots.append(Slot(f"login_slowdown:{account}", 1, delay))
        return slots

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the attempt is no failure (blocking)."""
        if attempt.slots:
            self.ctx.limiter.give_back(attempt.slots)

    # ---- device cookies ----

    def device_cookie(self, email: str) -> str | None:
        """A new device cookie for the account that just signed in, or None when device
        cookies are off. It is ``d1.<expiry>.<nonce>.<HMAC>``: the HMAC (keyed by the
        server secret) binds it to the account, which it does not carry in clear."""
        ttl = self.ctx.settings.login_device_cookie_ttl
        if ttl <= 0:
            return None
        expires = str(self.ctx.clock.now() + ttl)
        nonce = secrets.token_urlsafe(16)
        return f"{_VERSION}.{expires}.{nonce}.{self._sign(account_key(email), expires, nonce)}"

    def device(self, cookie: str | None, email: str) -> str | None:
        """The device's id (its nonce) if ``cookie`` is a live device cookie for the
        account ``email`` names; else None."""
        if not cookie or self.ctx.settings.login_device_cookie_ttl <= 0:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit() or not cookie.isascii():
            return None
        _, expires, nonce, signature = parts
        if not hmac.compare_digest(self._sign(account_key(email), expires, nonce), signature):
            return None
        return nonce if int(expires) > self.ctx.clock.now() else None

    def _sign(self, account: str, expires: str, nonce: str) -> str:
        digest = self.ctx.hasher.digest(f"device-cookie:{_VERSION}:{expires}:{nonce}:{account}")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
