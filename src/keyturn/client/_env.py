"""Configuration from the environment, the twelve-factor way."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._auth import ClientCredentialsAuth

#: Keyturn's token endpoint: its paths are part of its contract, so no discovery
#: round trip is needed (and none happens at import or construction time).
TOKEN_PATH = "/oauth/token"


def from_env(environ: Mapping[str, str] | None = None) -> ClientCredentialsAuth:
    """A ClientCredentialsAuth from ``KEYTURN_ISSUER``, ``KEYTURN_CLIENT_ID``,
    ``KEYTURN_CLIENT_SECRET`` and, if set, ``KEYTURN_SCOPE`` (space-separated)."""
    env = os.environ if environ is None else environ
    missing = [name for name in ("KEYTURN_ISSUER", "KEYTURN_CLIENT_ID", "KEYTURN_CLIENT_SECRET") if not env.get(name)]
    if missing:
        raise ValueError(f"Set {', '.join(missing)} to configure the Keyturn client.")
    return ClientCredentialsAuth(
        env["KEYTURN_ISSUER"].rstrip("/") + TOKEN_PATH,
        env["KEYTURN_CLIENT_ID"],
        env["KEYTURN_CLIENT_SECRET"],
        scope=env.get("KEYTURN_SCOPE") or None,
    )
