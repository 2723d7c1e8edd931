"""``keyturn api-keys``: API keys."""

from __future__ import annotations

import click

from keyturn.settings import Settings

from ._common import emit, fail, owner_account, runtime_for, with_config


@click.group("api-keys")
def api_keys() -> None:
    """API keys."""


@api_keys.command("create")
@click.option("--owner", required=True, metavar="EMAIL", help="The account the key acts for.")
@click.option("--name", default="API key", show_default=True, help="A name to recognise the key by.")
@click.option("--scope", "scopes", multiple=True, help="Restrict the key to this scope (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def api_keys_create(settings: Settings, owner: str, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create an API key. The key is printed once."""
    from keyturn.core.api_keys import create_api_key
    from keyturn.core.ports import StoreUnavailable
    from keyturn.core.registration import RegistrationError
    from keyturn.core.service import run

    runtime = runtime_for(settings)
    try:
        account = owner_account(runtime, owner)
        flow = create_api_key(runtime.ctx, account.id, name=name, scopes=scopes or None, expires_at=None, via="cli")
        created = run(flow)  # the key and its audit event: one unit
    except (RegistrationError, StoreUnavailable) as exc:
        fail(str(exc))
    finally:
        runtime.close()
    key = created.api_key
    payload = {
        "id": key.id,
        "key": created.key,
        "name": key.name,
        "owner": account.email,
        "scopes": None if key.scopes is None else list(key.scopes),
    }
    emit(as_json, payload, [f"key: {created.key}", "Store the key now: it is not shown again."])
