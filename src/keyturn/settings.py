"""Keyturn's one settings object.

Values come from, in rising order of precedence: the defaults below, one TOML file
(``--config FILE`` or ``KEYTURN_CONFIG``), and ``KEYTURN_<KEY>`` environment variables
(sections joined with ``__``, e.g. ``KEYTURN_SCOPES__SMS="Send SMS messages"``).

Everything is checked once, at start-up; a bad value raises :class:`SettingsError`
naming the key and where it came from, and the CLI turns that into exit code 2.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). Settings check scope names
# with it, and core parses scope parameters with it: it lives here, since settings
# imports nothing from Keyturn.
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

ENV_PREFIX = "KEYTURN_"
#: Environment variables that share the prefix but are not server settings
#: (``KEYTURN_CONFIG`` names the file; the client SDK reads the other two).
_NOT_SETTINGS = frozenset({"CONFIG", "CLIENT_ID", "CLIENT_SECRET"})

TOKEN_FORMATS = ("opaque", "jwt")
ERROR_STYLES = ("rfc6750", "onlinesim")
ENVIRONMENTS = ("development", "production")
SIGNING_ALGORITHMS = ("ES256", "EdDSA")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_MIN_SECRET_LENGTH = 32
_MIN_PASSWORD_LENGTH, _MAX_PASSWORD_LENGTH = 8, 128

_QUERY_PARAMETER = re.compile(r"[A-Za-z0-9_.\-]+")


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe; the message names the key."""

    def __init__(self, key: str, problem: str, source: str = "") -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f" (from {source})" if source else ""
        super().__init__(f"invalid setting {key}{where}: {problem}")


class ConfigFileError(SettingsError):
    """The configuration file cannot be read or parsed."""

    def __init__(self, path: str, problem: str) -> None:
        self.key = "config"
        self.problem = problem
        self.source = path
        ValueError.__init__(self, f"config file {path}: {problem}")


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
    #: issuance can run at thousands a second: it is counted in /metrics instead.
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
        return _build(merged, {name: "override" for name in changes})


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the TOML file and the environment, validate, and return the settings."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}

    path = config_path if config_path is not None else environ.get(ENV_PREFIX + "CONFIG")
    if path:
        for key, value in _read_toml(os.fspath(path)).items():
            raw[key] = value
            sources[key] = os.fspath(path)
            if isinstance(value, dict):
                sources.update({f"{key}.{sub}": os.fspath(path) for sub in value})

    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if rest in _NOT_SETTINGS:
            continue
        key, _, sub = rest.lower().partition("__")
        if sub:
            section = raw.setdefault(key, {})
            if not isinstance(section, dict):
                raise SettingsError(key, "is not a table, so it has no sub-keys", name)
            section[sub] = value
            sources[f"{key}.{sub}"] = name
            sources.setdefault(key, name)
        else:
            raw[key] = _parse_env_value(key, value, name)
            sources[key] = name

    return _build(raw, sources)


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ConfigFileError(path, "is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigFileError(path, "permission denied") from None
    except OSError as exc:
        raise ConfigFileError(path, exc.strerror or str(exc)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigFileError(path, f"not valid TOML: {exc}") from None


def _parse_env_value(key: str, value: str, source: str) -> Any:
    """Environment values are strings; lists may be JSON or comma/space separated."""
    default = _DEFAULTS.get(key)
    if isinstance(default, tuple):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SettingsError(key, f"is not a valid JSON list: {exc.msg}", source) from None
            return parsed
        return [item for item in re.split(r"[,\s]+", text) if item]
    return value


_DEFAULTS: dict[str, Any] = {f.name: getattr(Settings(), f.name) for f in fields(Settings)}


def _build(raw: Mapping[str, Any], sources: Mapping[str, str]) -> Settings:
    unknown = sorted(set(raw) - set(_DEFAULTS))
    if unknown:
        key = unknown[0]
        raise SettingsError(key, "unknown setting (check the spelling)", sources.get(key, ""))

    def src(key: str) -> str:
        return sources.get(key, "")

    values: dict[str, Any] = dict(_DEFAULTS)
    for key, value in raw.items():
        try:
            values[key] = _VALIDATORS[key](key, value, src(key))
        except SettingsError as exc:
            # A table entry's problem names the entry, and where that entry came from.
            if exc.key != key and exc.key in sources:
                raise SettingsError(exc.key, exc.problem, sources[exc.key]) from None
            raise

    settings = replace(Settings(), **values)
    _check_consistency(settings, src)
    return settings


# ---- validators: each takes (key, raw value, source) and returns the typed value ----


def _string(key: str, value: Any, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(key, f"must be a non-empty string, got {value!r}", source)
    return value.strip()


def _optional_string(key: str, value: Any, source: str) -> str | None:
    if value in (None, ""):
        return None
    return _string(key, value, source)


def _choice(options: tuple[str, ...]) -> Any:
    def check(key: str, value: Any, source: str) -> str:
        if value not in options:
            allowed = ", ".join(repr(o) for o in options)
            raise SettingsError(key, f"must be one of {allowed}, got {value!r}", source)
        return str(value)

    return check


def _seconds(key: str, value: Any, source: str) -> int:
    number = _integer(key, value, source)
    if number < 0:
        raise SettingsError(key, f"must be zero or a positive number of seconds, got {number}", source)
    return number


def _count(key: str, value: Any, source: str) -> int:
    number = _integer(key, value, source)
    if number < 0:
        raise SettingsError(key, f"must be zero (no limit) or a positive number, got {number}", source)
    return number


def _positive_seconds(key: str, value: Any, source: str) -> int:
    number = _integer(key, value, source)
    if number <= 0:
        raise SettingsError(key, f"must be a positive number of seconds, got {number}", source)
    return number


def _positive_days(key: str, value: Any, source: str) -> int:
    number = _integer(key, value, source)
    if number <= 0:
        raise SettingsError(key, f"must be a positive number of days, got {number}", source)
    return number


def _integer(key: str, value: Any, source: str) -> int:
    if isinstance(value, bool):
        raise SettingsError(key, f"must be an integer, got {value!r}", source)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise SettingsError(key, f"must be an integer, got {value!r}", source)


def _boolean(key: str, value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise SettingsError(key, f"must be true or false, got {value!r}", source)


def _string_list(pattern: re.Pattern[str], what: str) -> Any:
    def check(key: str, value: Any, source: str) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise SettingsError(key, f"must be a list of {what}, got {value!r}", source)
        for item in value:
            if not isinstance(item, str) or not pattern.fullmatch(item):
                raise SettingsError(key, f"{item!r} is not a valid {what}", source)
        return tuple(dict.fromkeys(value))

    return check


def _issuer(key: str, value: Any, source: str) -> str:
    text = _string(key, value, source)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(key, f"must be an http(s) URL such as https://auth.example.com, got {text!r}", source)
    # RFC 8414 §2: the issuer is a URL "that has no query or fragment components".
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise SettingsError(key, "must not have a query or fragment (RFC 8414 §2)", source)
    return text.rstrip("/")


def _database_url(key: str, value: Any, source: str) -> str:
    text = _string(key, value, source)
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise SettingsError(
            key, f"{text!r} is not a URL; use sqlite:///path/to/keyturn.db or postgresql://user@host/db", source
        )
    driver = scheme.split("+", 1)[0]
    if driver == "sqlite":
        if not (rest == "" or rest.startswith("/")):
            raise SettingsError(
                key, f"a SQLite URL is sqlite:///relative.db or sqlite:////absolute.db, got {text!r}", source
            )
        return text
    if driver in ("postgresql", "postgres"):
        if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise SettingsError(key, f"driver {scheme!r} is not supported; use postgresql://", source)
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 -- raises ValueError on a malformed port
        except ValueError as exc:
            raise SettingsError(key, f"malformed PostgreSQL URL: {exc}", source) from None
        if not parts.path.strip("/"):
            raise SettingsError(
                key, "a PostgreSQL URL must name the database, e.g. postgresql://user@host/keyturn", source
            )
        return text
    raise SettingsError(key, f"unsupported database {driver!r}; use sqlite:/// or postgresql://", source)


def _redis_url(key: str, value: Any, source: str) -> str | None:
    text = _optional_string(key, value, source)
    if text is not None and urlsplit(text).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(key, f"must be a redis:// or rediss:// URL, got {text!r}", source)
    return text


def _secret(key: str, value: Any, source: str) -> str | None:
    text = _optional_string(key, value, source)
    if text is not None and len(text) < _MIN_SECRET_LENGTH:
        raise SettingsError(
            key,
            f"must be at least {_MIN_SECRET_LENGTH} characters of random text "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))")',
            source,
        )
    return text


def _password_length(key: str, value: Any, source: str) -> int:
    number = _integer(key, value, source)
    # NIST SP 800-63B §5.1.1.2: "at least 8 characters in length"; past 128 no one could sign up.
    if not _MIN_PASSWORD_LENGTH <= number <= _MAX_PASSWORD_LENGTH:
        raise SettingsError(
            key, f"must be between {_MIN_PASSWORD_LENGTH} and {_MAX_PASSWORD_LENGTH} characters, got {number}", source
        )
    return number


def _body_size(key: str, value: Any, source: str) -> int:
    number = _integer(key, value, source)
    if not 1024 <= number <= 10_485_760:
        raise SettingsError(key, f"must be between 1024 and 10485760 bytes, got {number}", source)
    return number


def _scope_catalogue(key: str, value: Any, source: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise SettingsError(key, "must be a table of scope = description", source)
    catalogue: dict[str, str] = {}
    for name, description in value.items():
        if not SCOPE_TOKEN.fullmatch(name):
            raise SettingsError(f"{key}.{name}", "is not a valid scope name (RFC 6749 §3.3)", source)
        if not isinstance(description, str):
            raise SettingsError(f"{key}.{name}", "the description must be a string", source)
        catalogue[name] = description
    return MappingProxyType(catalogue)


_VALIDATORS: dict[str, Any] = {
    "issuer": _issuer,
    "audience": _optional_string,
    "database_url": _database_url,
    "redis_url": _redis_url,
    "env": _choice(ENVIRONMENTS),
    "secret": _secret,
    "default_scopes": _string_list(SCOPE_TOKEN, "scope name"),
    "access_token_ttl": _positive_seconds,
    "refresh_token_ttl": _positive_seconds,
    "refresh_token_reuse_grace": _seconds,
    "authorization_code_ttl": _positive_seconds,
    "session_ttl": _positive_seconds,
    "token_format": _choice(TOKEN_FORMATS),
    "signing_alg": _choice(SIGNING_ALGORITHMS),
    "error_style": _choice(ERROR_STYLES),
    "api_key_query_parameters": _string_list(_QUERY_PARAMETER, "query parameter name"),
    "require_pkce": _boolean,
    "expired_retention": _seconds,
    "audit_retention_days": _positive_days,
    "audit_token_issuance": _choice(("all", "user", "none")),
    "purge_interval": _seconds,
    "signing_key_rotation_days": _seconds,
    "max_body_size": _body_size,
    "rate_limit_token": _seconds,
    "rate_limit_introspect": _seconds,
    "rate_limit_revoke": _seconds,
    "rate_limit_api_key": _seconds,
    "client_auth_failures_per_client_and_address": _count,
    "login_failures_per_account_and_address": _count,
    "login_failures_per_address": _count,
    "login_failures_before_account_slowdown": _count,
    "login_account_slowdown_max_delay": _positive_seconds,
    "login_device_cookie_ttl": _seconds,
    "signups_per_address_per_hour": _count,
    "password_min_length": _password_length,
    "forwarded_allow_ips": _string_list(re.compile(r"\*|[0-9A-Fa-f.:/]+"), "IP address, network or *"),
    "metrics_addresses": _string_list(re.compile(r"\*|[0-9A-Fa-f.:]+"), "IP address or *"),
    "log_level": _choice(("debug", "info", "warning", "error")),
    "scopes": _scope_catalogue,
}
assert set(_VALIDATORS) == set(_DEFAULTS), "every setting needs a validator"


def _check_consistency(settings: Settings, src: Any) -> None:
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
