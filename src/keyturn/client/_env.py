"""Configuration from the environment, the twelve-factor way."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

from ._auth import ClientCredentialsAuth

#: Keyturn's token endpoint: its paths are part of its contract, so no discovery
#: round trip is needed (and none happens at import or construction time).
TOKEN_PATH = "/oauth/token"


def from_env(environ: Mapping[str, str] | None = None) -> ClientCredentialsAuth:
    """A ClientCredentialsAuth from ``KEYTURN_ISSUER``, ``KEYTURN_CLIENT_ID``,
    ``KEYTURN_CLIENT_SECRET`` and, if set, ``KEYTURN_CLIENT_SCOPE`` (space-separated).

    ``KEYTURN_ISSUER`` is the server's issuer URL: the very value the server's own
    ``issuer`` setting holds, and the ``issuer`` its metadata announces.
    ``KEYTURN_SCOPE`` is still read, with a DeprecationWarning, when
    ``KEYTURN_CLIENT_SCOPE`` is not set.
    """
    env = os.environ if environ is None else environ
    missing = [name for name in ("KEYTURN_ISSUER", "KEYTURN_CLIENT_ID", "KEYTURN_CLIENT_SECRET") if not env.get(name)]
    if missing:
        raise ValueError(f"Set {', '.join(missing)} to configure the Keyturn client.")
    scope = env.get("KEYTURN_CLIENT_SCOPE")
    if scope is None and env.get("KEYTURN_SCOPE") is not None:
        warnings.warn("KEYTURN_SCOPE is deprecated: set KEYTURN_CLIENT_SCOPE instead", DeprecationWarning, stacklevel=2)
        scope = env["KEYTURN_SCOPE"]
    return ClientCredentialsAuth(
        env["KEYTURN_ISSUER"].rstrip("/") + TOKEN_PATH,
        env["KEYTURN_CLIENT_ID"],
        env["KEYTURN_CLIENT_SECRET"],
        scope=scope or None,
    )
