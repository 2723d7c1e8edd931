"""``keyturn keys``: signing keys."""

from __future__ import annotations

import click

from keyturn.settings import Settings

from ._common import emit, runtime_for, with_config


@click.group()
def keys() -> None:
    """Signing keys."""


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def keys_rotate(settings: Settings, as_json: bool) -> None:
    """Add a new active signing key; the previous one stays published until every
    token it signed has expired."""
    runtime = runtime_for(settings)
    try:
        key = runtime.keyring.rotate_for_tokens(
            settings.signing_alg, runtime.store.longest_access_token_ttl(), settings.access_token_ttl
        )
        runtime.keys_changed()
        runtime.store.record("keys.rotated", runtime.clock.now(), detail={"kid": key.kid})
        published = [k["kid"] for k in runtime.keyring.jwks["keys"]]
    finally:
        runtime.close()
    emit(
        as_json,
        {"kid": key.kid, "alg": key.alg, "published": published},
        [f"new active signing key {key.kid} ({key.alg}); published: {', '.join(published)}"],
    )
