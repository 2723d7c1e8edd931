"""``keyturn keys``: signing keys."""

from __future__ import annotations

import click

from keyturn.settings import Settings

from ._common import emit, fail, runtime_for, with_config


@click.group()
def keys() -> None:
    """Signing keys."""


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def keys_rotate(settings: Settings, as_json: bool) -> None:
    """Add a new active signing key; the previous one stays published until every
    token it signed has expired."""
    from keyturn.core.key_rotation import rotate_for_tokens
    from keyturn.core.ports import Conflict, StoreUnavailable
    from keyturn.core.service import run

    runtime = runtime_for(settings)
    try:
        key = run(rotate_for_tokens(runtime.ctx, runtime.keyring, via="cli"))  # the key and its audit event: one unit
        runtime.keys_changed()
        published = [k["kid"] for k in runtime.keyring.jwks["keys"]]
    except Conflict:
        fail("another signing key was added at the same moment; nothing was changed (run the command again)")
    except StoreUnavailable as exc:
        fail(str(exc))
    finally:
        runtime.close()
    emit(
        as_json,
        {"kid": key.kid, "alg": key.alg, "published": published},
        [f"new active signing key {key.kid} ({key.alg}); published: {', '.join(published)}"],
    )
