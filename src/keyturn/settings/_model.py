"""The settings and their defaults, and how a validated Settings is built from raw values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ._errors import SettingsError
from ._validators import VALIDATORS

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class Settings:
    issuer: str = "http://127.0.0.1:8000"
    #: The ``aud`` of access tokens (the protected API); None: the issuer.
    audience: str | None = None
    database_url: str = "sqlite:///keyturn.db"
    redis_url: str | None = None
    env: str = "development"
    #: The server secret: keys the hashes of stored credentials and encrypts signing keys.
    secret: str | None = field(default=None, repr=False)
    default_scopes: tuple[str, ...] = ()
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 2_592_000
    refresh_token_reuse_grace: int = 10
    authorization_code_ttl: int = 60
    #: How long a browser stays signed in.
    session_ttl: int = 43_200
    token_format: str = "opaque"
    signing_alg: str = "ES256"
    error_style: str = "rfc6750"
    api_key_query_parameters: tuple[str, ...] = ("api_key", "apikey")
    require_pkce: bool = False
    #: How long expired codes, tokens and sessions, and revoked or expired API keys, are
    #: kept before housekeeping deletes them (seconds).
    expired_retention: int = 86_400
    #: Which token issuances are audited: "all"; "user" (authorization code, refresh and
    #: implicit: the grants a person consented to); or "none". Client-credentials
    #: issuance is machine traffic, too frequent to audit one by one: it is counted in
    #: /metrics instead.
    audit_token_issuance: str = "user"
    #: How long audit events are kept (days).
    audit_retention_days: int = 90
    #: Rotate the signing key automatically after this many days (0: only with
    #: `keyturn keys rotate`). The previous key stays published until every token it
    #: signed has expired.
    signing_key_rotation_days: int = 0
    #: How often `keyturn serve` runs housekeeping (seconds); 0: never (use `tokens purge`).
    purge_interval: int = 3600
    #: Rate limits per minute (0: none): token, introspection and revocation requests per
    #: client (a public client: per client and address) that authenticated, and checks of
    #: one API key.
    rate_limit_token: int = 600
    rate_limit_introspect: int = 6000
    rate_limit_revoke: int = 600
    rate_limit_api_key: int = 6000
    #: Failed client authentications per minute per (client_id, address); past it, that
    #: pair is refused (0: no limit).
    client_auth_failures_per_client_and_address: int = 30
    #: Failed sign-ins within 15 minutes (0: no limit) per (account, address), or per
    #: (account, device cookie) for a browser holding one, and per address.
    login_failures_per_account_and_address: int = 5
    login_failures_per_address: int = 30
    #: After this many failed sign-ins for one account within 15 minutes from browsers
    #: without its device cookie, attempts from addresses that have failed too are spaced
    #: out, twice as far apart after each failure, up to the maximum delay (seconds).
    #: 0: no slow-down.
    login_failures_before_account_slowdown: int = 10
    login_account_slowdown_max_delay: int = 300
    #: How long the device cookie, earned by signing in, exempts a browser from the
    #: account's slow-down (seconds; 0: no device cookies).
    login_device_cookie_ttl: int = 15_552_000
    #: Sign-ups allowed per client address within an hour (0: no limit).
    signups_per_address_per_hour: int = 10
    #: The shortest password accepted for a new account (NIST SP 800-63B asks at least 8).
    password_min_length: int = 12
    #: Proxies (load balancers) whose X-Forwarded-For / X-Forwarded-Proto are believed,
    #: so that per-address limits and logs see the real client ("*": any, which lets every
    #: caller choose its own address: see docs/deploy.md).
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    #: Client addresses allowed to read /metrics ("*": anyone).
    metrics_addresses: tuple[str, ...] = ("127.0.0.1", "::1")
    #: Level of the JSON logs: debug, info (one line per request), warning, error.
    log_level: str = "info"
    #: Largest request body the protocol endpoints read, in bytes.
    max_body_size: int = 16_384
    #: The scope catalogue: name -> description shown on the consent page.
    scopes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def production(self) -> bool:
        return self.env == "production"

    def with_overrides(self, **changes: Any) -> Settings:
        """A validated copy with some values replaced (used by tests and tools)."""
        merged = {f.name: getattr(self, f.name) for f in fields(self)}
        merged.update(changes)
        return build(merged, {name: "override" for name in changes})


DEFAULTS: dict[str, Any] = {f.name: getattr(Settings(), f.name) for f in fields(Settings)}
assert set(VALIDATORS) == set(DEFAULTS), "every setting needs a validator"


def build(raw: Mapping[str, Any], sources: Mapping[str, str]) -> Settings:
    """Validate raw values (``sources`` says where each came from) over the defaults."""
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        key = unknown[0]
        raise SettingsError(key, "unknown setting (check the spelling)", sources.get(key, ""))

    def src(key: str) -> str:
        return sources.get(key, "")

    values: dict[str, Any] = dict(DEFAULTS)
    for key, value in raw.items():
        try:
            values[key] = VALIDATORS[key](key, value, src(key))
        except SettingsError as exc:
            # A table entry's problem names the entry, and where that entry came from.
            if exc.key != key and exc.key in sources:
                raise SettingsError(exc.key, exc.problem, sources[exc.key]) from None
            raise

    settings = replace(Settings(), **values)
    _check_consistency(settings, src)
    return settings


def _check_consistency(settings: Settings, src: Callable[[str], str]) -> None:
    if settings.scopes:
        for scope in settings.default_scopes:
            if scope not in settings.scopes:
                raise SettingsError(
                    "default_scopes", f"{scope!r} is not in the [scopes] catalogue", src("default_scopes")
                )
    if settings.production:
        issuer = urlsplit(settings.issuer)
        if issuer.scheme != "https" and issuer.hostname not in _LOCAL_HOSTS:
            raise SettingsError("issuer", "must be an https:// URL in production", src("issuer"))
        if settings.secret is None:
            raise SettingsError(
                "secret", "is required in production: set KEYTURN_SECRET to 32+ random characters", src("secret")
            )
