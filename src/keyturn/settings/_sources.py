"""Where values come from: one TOML file, then ``KEYTURN_<KEY>`` environment variables."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from ._errors import ConfigFileError, SettingsError
from ._model import DEFAULTS, Settings, build

ENV_PREFIX = "KEYTURN_"
#: Environment variables that share the prefix but are not server settings:
#: ``KEYTURN_CONFIG`` names the file; the client SDK (``keyturn.client.from_env``) reads
#: ``KEYTURN_CLIENT_ID``, ``KEYTURN_CLIENT_SECRET`` and ``KEYTURN_CLIENT_SCOPE``, and
#: ``KEYTURN_SCOPE``, its deprecated spelling of the last. (``KEYTURN_ISSUER`` is both the
#: server's issuer setting and the issuer the SDK discovers: one URL, one meaning.) The list
#: is closed, not a ``CLIENT_`` prefix, so that a misspelt ``KEYTURN_CLIENT_AUTH_...``
#: setting still stops the process.
_NOT_SETTINGS = frozenset({"CONFIG", "CLIENT_ID", "CLIENT_SECRET", "CLIENT_SCOPE", "SCOPE"})
#: Every ``KEYTURN_TEST_*`` variable belongs to the test suite (``KEYTURN_TEST_POSTGRES_URL``),
#: never to the server: no setting starts with ``test_``.
_NOT_SETTINGS_PREFIX = "TEST_"


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the TOML file and the environment, validate, and return the settings."""
    return build(*_read(config_path, environ))


def configured_keys(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> frozenset[str]:
    """The settings the file or the environment set (the others keep their defaults)."""
    raw, _ = _read(config_path, environ)
    return frozenset(raw)


def _read(
    config_path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None
) -> tuple[dict[str, Any], dict[str, str]]:
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
        if rest in _NOT_SETTINGS or rest.startswith(_NOT_SETTINGS_PREFIX):
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
    return raw, sources


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
    default = DEFAULTS.get(key)
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
