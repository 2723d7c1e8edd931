"""Keyturn's one settings object.

Values come from, in rising order of precedence: the defaults (``_model``), one TOML file
(``--config FILE`` or ``KEYTURN_CONFIG``), and ``KEYTURN_<KEY>`` environment variables
(sections joined with ``__``, e.g. ``KEYTURN_SCOPES__SMS="Send SMS messages"``); both are
read in ``_sources``.

Everything is checked once, at start-up (``_validators``, one per key); a bad value raises
:class:`SettingsError` naming the key and where it came from, and the CLI turns that into
exit code 2.

The package imports nothing from the rest of Keyturn: settings are read before anything
else is built.
"""

from __future__ import annotations

from ._errors import ConfigFileError, SettingsError
from ._model import Settings
from ._sources import ENV_PREFIX, configured_keys, load_settings
from ._validators import ENVIRONMENTS, ERROR_STYLES, SCOPE_TOKEN, SIGNING_ALGORITHMS, TOKEN_FORMATS

__all__ = [
    "ENVIRONMENTS",
    "ENV_PREFIX",
    "ERROR_STYLES",
    "SCOPE_TOKEN",
    "SIGNING_ALGORITHMS",
    "TOKEN_FORMATS",
    "ConfigFileError",
    "Settings",
    "SettingsError",
    "configured_keys",
    "load_settings",
]
