"""One validator per setting: each takes (key, raw value, source) and returns the typed
value, or raises :class:`SettingsError` naming the key and where the value came from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ._errors import SettingsError

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). Settings check scope names
# with it, and core parses scope parameters with it: it lives here, since settings
# imports nothing from Keyturn.
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

TOKEN_FORMATS = ("opaque", "jwt")
ERROR_STYLES = ("rfc6750", "onlinesim")
ENVIRONMENTS = ("development", "production")
SIGNING_ALGORITHMS = ("ES256", "EdDSA")
_MIN_SECRET_LENGTH = 32
_MIN_PASSWORD_LENGTH, _MAX_PASSWORD_LENGTH = 8, 128

_QUERY_PARAMETER = re.compile(r"[A-Za-z0-9_.\-]+")


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


def _days(key: str, value: Any, source: str) -> int:
    number = _integer(key, value, source)
    if number < 0:
        raise SettingsError(key, f"must be zero (never) or a positive number of days, got {number}", source)
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


#: The validator of every setting (``_model`` checks that none is missing).
VALIDATORS: dict[str, Any] = {
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
    "signing_key_rotation_days": _days,
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
