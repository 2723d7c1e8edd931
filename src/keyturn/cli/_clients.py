"""``keyturn clients``: OAuth clients."""

from __future__ import annotations

from typing import Any

import click

from keyturn.settings import Settings

from ._common import emit, fail, owner_account, runtime_for, with_config


@click.group()
def clients() -> None:
    """OAuth clients."""


@clients.command("create")
@click.option("--name", required=True, help="Name shown to users on the consent page.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Registered redirect URI (repeatable).")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE required).")
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
    help="Allowed grant (repeatable; default: authorization_code and refresh_token).",
)
@click.option("--scope", "scopes", multiple=True, help="Allowed scope (repeatable).")
@click.option("--allow-implicit", is_flag=True, help="Allow the legacy implicit flow (response_type=token).")
@click.option("--resource-server", is_flag=True, help="A protected API: may introspect every token and API key.")
@click.option(
    "--token-format", type=click.Choice(["opaque", "jwt"]), default=None, help="Override the server's token format."
)
@click.option("--access-token-ttl", type=int, default=None, metavar="SECONDS", help="Override access_token_ttl.")
@click.option("--refresh-token-ttl", type=int, default=None, metavar="SECONDS", help="Override refresh_token_ttl.")
@click.option("--owner", default=None, metavar="EMAIL", help="Owning account (default: the operator account).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def clients_create(
    settings: Settings,
    name: str,
    redirect_uris: tuple[str, ...],
    public: bool,
    grant_types: tuple[str, ...],
    scopes: tuple[str, ...],
    allow_implicit: bool,
    resource_server: bool,
    token_format: str | None,
    access_token_ttl: int | None,
    refresh_token_ttl: int | None,
    owner: str | None,
    as_json: bool,
) -> None:
    """Register an OAuth client. The secret is printed once."""
    from keyturn.core.client_admin import create_client
    from keyturn.core.ports import StoreUnavailable
    from keyturn.core.registration import ClientRequest, RegistrationError
    from keyturn.core.service import run

    runtime = runtime_for(settings)
    try:
        account = owner_account(runtime, owner)
        request = ClientRequest(
            name=name,
            redirect_uris=redirect_uris,
            confidential=not public,
            grant_types=grant_types or None,
            scopes=scopes,
            allow_implicit=allow_implicit,
            resource_server=resource_server,
            token_format=token_format,
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
        )
        created = run(
            create_client(runtime.ctx, account.id, request, via="cli")
        )  # the client and its audit event: one unit
    except (RegistrationError, StoreUnavailable) as exc:
        fail(str(exc))
    finally:
        runtime.close()
    client = created.client
    payload: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "confidential": client.confidential,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        # null: any scope (no restriction registered), the one JSON spelling of "all scopes".
        "scopes": list(client.scopes) or None,
        "allow_implicit": client.allow_implicit,
        "resource_server": client.resource_server,
        "token_format": client.token_format or settings.token_format,
        "access_token_ttl": client.access_token_ttl or settings.access_token_ttl,
        "refresh_token_ttl": client.refresh_token_ttl or settings.refresh_token_ttl,
        "owner": account.email,
    }
    lines = [f"client_id:     {client.client_id}"]
    if created.client_secret is not None:
        payload["client_secret"] = created.client_secret
        lines.append(f"client_secret: {created.client_secret}")
        lines.append("Store the secret now: it is not shown again.")
    emit(as_json, payload, lines)
