"""``keyturn audit``: the audit log, newest first."""

from __future__ import annotations

import json

import click

from keyturn.settings import Settings

from ._common import emit, owner_account, runtime_for, with_config


@click.command()
@click.option("--kind", default=None, help='Event kind, e.g. login.failed, or a prefix such as "token.*".')
@click.option("--account", "account_email", default=None, metavar="EMAIL", help="Events of this account.")
@click.option("--client", "client_id", default=None, help="Events of this client.")
@click.option("--since", default=None, type=int, metavar="SECONDS", help="Only the last SECONDS seconds.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def audit(
    settings: Settings,
    kind: str | None,
    account_email: str | None,
    client_id: str | None,
    since: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """List audit events, newest first."""
    import time

    runtime = runtime_for(settings)
    try:
        account_id = None
        if account_email is not None:
            account_id = owner_account(runtime, account_email).id
        events = runtime.store.list_events(
            limit=limit,
            kind=kind,
            account_id=account_id,
            client_id=client_id,
            since=None if since is None else runtime.clock.now() - since,
        )
    finally:
        runtime.close()
    rows = [
        {
            "id": e.id,
            "at": e.at,
            "kind": e.kind,
            "account_id": e.account_id,
            "client_id": e.client_id,
            "detail": dict(e.detail),
        }
        for e in events
    ]
    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(r['at']))}  {r['kind']:<28} "
        f"account={r['account_id'] or '-'} client={r['client_id'] or '-'} {json.dumps(r['detail'])}"
        for r in rows
    ] or ["no audit events match"]
    emit(as_json, {"events": rows}, lines)
