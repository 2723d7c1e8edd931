"""Browser sessions and CSRF tokens for the server-rendered pages.

The session cookie carries 256 random bits; the database keeps only their keyed digest.
It is HttpOnly, SameSite=Lax, Secure under an https issuer or in production, and replaced
at every login (no session fixation); in production its name, and the pre-session
cookie's, carry the ``__Host-`` prefix. A CSRF token is the keyed digest of the cookie it
is bound to: the session cookie once signed in, a pre-session cookie on the login page.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from keyturn.core.context import Context
from keyturn.core.login_throttle import DEVICE_COOKIE
from keyturn.core.models import Account, Consent, Session

SESSION_COOKIE = "kt_session"
PRE_SESSION_COOKIE = "kt_pre"
#: RFC 6265bis §4.1.3.2: a browser stores a "__Host-" cookie only if it is Secure, has
#: Path=/ and no Domain, and was set from a secure origin: no sibling subdomain and no
#: plain-http page can set or shadow it. http://127.0.0.1 in development cannot set Secure
#: cookies, so there the names stay plain.
HOST_PREFIX = "__Host-"
#: RFC 6265bis §4.1.3.1: a "__Secure-" cookie is stored only if it is Secure and was set
#: from a secure origin. The device cookie is sent to /login alone, so it cannot be
#: "__Host-" (Path=/); in production it carries this prefix instead.
SECURE_PREFIX = "__Secure-"
_PRE_SESSION_TTL = 3600


class Sessions:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        production = ctx.settings.production
        self.secure = production or ctx.settings.issuer.startswith("https://")
        prefix = HOST_PREFIX if production else ""
        self.session_cookie = prefix + SESSION_COOKIE
        self.pre_session_cookie = prefix + PRE_SESSION_COOKIE
        self.device_cookie = (SECURE_PREFIX if production else "") + DEVICE_COOKIE

    def _digest(self, purpose: str, value: str) -> bytes:
        return self.ctx.hasher.digest(f"{purpose}:{value}")

    # ---- sessions ----

    def account(self, request: Request) -> Account | None:
        """The signed-in account, or None (blocking: call through Blocking)."""
        return self.account_of(request.cookies.get(self.session_cookie))

    def account_of(self, value: str | None) -> Account | None:
        """The account signed in with this session cookie value, or None (blocking)."""
        if not value:
            return None
        return self._account(self.ctx.store.get_session(self._digest("session", value)))

    def account_and_consent(self, value: str, client_id: str) -> tuple[Account | None, Consent | None]:
        """``account_of``, and the account's consent to ``client_id``, in one look-up."""
        session, consent = self.ctx.store.get_session_and_consent(self._digest("session", value), client_id)
        account = self._account(session)
        return account, None if account is None else consent

    def _account(self, session: Session | None) -> Account | None:
        if session is None or session.expires_at <= self.ctx.clock.now():
            return None
        account = self.ctx.accounts.get(session.account_id)
        return None if account is None or account.disabled else account

    def new_session(self) -> tuple[str, bytes]:
        """A new session's cookie value and the digest the database keeps of it (the
        session itself is written by core.sign_in's flow)."""
        value = secrets.token_urlsafe(32)
        return value, self._digest("session", value)

    def current(self, request: Request) -> bytes | None:
        """The digest of the session the browser has, if any: a sign-in or a sign-out
        ends it."""
        value = request.cookies.get(self.session_cookie)
        return self._digest("session", value) if value else None

    def set_session(self, response: Response, value: str) -> None:
        """The new session's cookie; it replaces the browser's old one (one Set-Cookie
        per name, RFC 6265 §4.1.1), and the pre-session cookie goes."""
        self._set(response, self.session_cookie, value, self.ctx.settings.session_ttl)
        response.delete_cookie(self.pre_session_cookie, path="/", secure=self.secure, httponly=True, samesite="lax")

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.session_cookie, path="/", secure=self.secure, httponly=True, samesite="lax")

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure, httponly=True, samesite="lax")

    # ---- CSRF ----

    def csrf_binding(self, request: Request) -> tuple[str, bool]:
        """The cookie value a CSRF token is bound to, and whether it is a new pre-session
        value that the response must set (see ``set_pre_session``)."""
        value = request.cookies.get(self.session_cookie) or request.cookies.get(self.pre_session_cookie)
        if value:
            return value, False
        return secrets.token_urlsafe(32), True

    def set_pre_session(self, response: Response, value: str) -> None:
        self._set(response, self.pre_session_cookie, value, _PRE_SESSION_TTL)

    def csrf_token(self, binding: str) -> str:
        return self._digest("csrf", binding).hex()

    def csrf_valid(self, request: Request, presented: str | None) -> bool:
        value = request.cookies.get(self.session_cookie) or request.cookies.get(self.pre_session_cookie)
        if not value or not presented:
            return False
        return hmac.compare_digest(self.csrf_token(value), presented)
