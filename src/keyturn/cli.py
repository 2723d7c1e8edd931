"""The ``keyturn`` command.

Every command takes ``--config FILE``; ``--json`` prints exactly one JSON object on stdout
and nothing else (messages go to stderr). Errors are one line: exit code 2 for bad
settings or usage, 1 for everything else.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from keyturn.settings import Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])

OPERATOR_EMAIL = "operator@keyturn.local"


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"keyturn: {message}", err=True)
    sys.exit(code)


def _settings(config: str | None) -> Settings:
    try:
        return load_settings(config)
    except SettingsError as exc:
        fail(str(exc), 2)


def _runtime(settings: Settings, *, migrate: bool = True) -> Any:
    from keyturn.runtime import StartupError, open_runtime

    try:
        return open_runtime(settings, migrate=migrate)
    except StartupError as exc:
        fail(str(exc), exc.exit_code)


def with_config(func: F) -> F:
    """Adds ``--config FILE`` and hands the command validated settings."""

    @click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        help="TOML settings file (default: $KEYTURN_CONFIG; KEYTURN_* variables override it).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, config: str | None, **kwargs: Any) -> Any:
        click.get_current_context().meta["keyturn.config"] = config
        return func(*args, settings=_settings(config), **kwargs)

    return wrapper  # type: ignore[return-value]


def _emit(as_json: bool, payload: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(payload))
    else:
        for line in lines:
            click.echo(line)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keyturn")
def main() -> None:
    """Keyturn: OAuth 2.0 authorization server, API keys and developer portal."""
    logging.basicConfig(level=logging.WARNING, format="keyturn: %(message)s", stream=sys.stderr)


# ---- serve ----


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"cannot listen on {host}:{port}: the address is already in use "
                "(is Keyturn already running? choose another with --port)"
            )
        if exc.errno == errno.EACCES:
            fail(f"cannot listen on {host}:{port}: permission denied (ports below 1024 need privileges)")
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
            fail(f"cannot listen on {host}:{port}: this machine has no such address")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Worker processes.")
@with_config
def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run the server (migrates the database and creates signing keys if needed)."""
    import uvicorn

    runtime = _runtime(settings)
    sock = _bind(host, port)
    from keyturn.web.observability import configure_logging

    configure_logging(settings.log_level)
    bound_port = sock.getsockname()[1]
    click.echo(
        f"keyturn: listening on http://{host}:{bound_port} (issuer {settings.issuer}, "
        f"database {_redacted(settings.database_url)}, {workers} worker{'s' if workers > 1 else ''})",
        err=True,
    )
    if "*" in settings.forwarded_allow_ips:
        # uvicorn then takes the leftmost X-Forwarded-For entry, which the caller wrote
        # itself (a proxy appends what it saw): every per-address limit counts what the
        # caller chooses.
        click.echo(
            'keyturn: warning: forwarded_allow_ips = "*" lets every caller choose its own address '
            "with X-Forwarded-For, and so pass the per-address sign-in, sign-up and client limits; "
            "list your load balancers' addresses or networks instead",
            err=True,
        )
    options: dict[str, Any] = {
        "access_log": False,  # the access log would print query strings, which may carry API keys
        "log_level": "warning",
        "lifespan": "on",
        "http": "httptools",
        "loop": "uvloop",
        "server_header": False,
        "proxy_headers": True,
        "forwarded_allow_ips": list(settings.forwarded_allow_ips),
    }
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal with the
    # handlers it found: make those a no-op, so that a clean stop exits 0, not -15 or a
    # KeyboardInterrupt traceback.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    if workers == 1:
        from keyturn.web.app import create_app

        config = uvicorn.Config(create_app(runtime, freeze_heap=True), **options)
        uvicorn.Server(config).run(sockets=[sock])
        return

    # Workers are separate processes: each opens its own runtime from the same settings.
    runtime.close()
    from uvicorn.supervisors import Multiprocess

    config_path = click.get_current_context().meta.get("keyturn.config")
    if config_path is not None:
        os.environ["KEYTURN_CONFIG"] = os.path.abspath(config_path)
    config = uvicorn.Config("keyturn.web.asgi:app_from_environment", factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[sock]).run()


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# ---- db ----


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@with_config
def db_upgrade(settings: Settings) -> None:
    """Migrate the database to the schema this Keyturn needs."""
    from keyturn.core.ports import StoreUnavailable
    from keyturn.store.database import create_database_engine
    from keyturn.store.migrate import HEAD, SchemaError, upgrade

    engine = create_database_engine(settings.database_url)
    try:
        applied = upgrade(engine)
    except (StoreUnavailable, SchemaError) as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    click.echo(f"keyturn: database {'migrated to' if applied else 'already at'} schema revision {HEAD}", err=True)


# ---- users ----


@main.group()
def users() -> None:
    """User accounts."""


@users.command("create")
@click.option("--email", required=True, help="The account's email (its login).")
@click.option(
    "--password",
    default=None,
    help=(
        "The password: at least password_min_length characters (12 unless configured), not one of the"
        " most common; asked for when omitted; stored as argon2id."
    ),
)
@click.option("--name", default="", help="Display name.")
@click.option("--company", default="", help="Company, as /me returns it.")
@click.option("--alias", default="", help="Alias, as /me returns it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def users_create(
    settings: Settings, email: str, password: str | None, name: str, company: str, alias: str, as_json: bool
) -> None:
    """Create a user account."""
    from keyturn.core.accounts import AccountError, create_account

    min_length = settings.password_min_length
    if password is None:
        password = _ask_password(email, min_length)
    runtime = _runtime(settings)
    try:
        account = create_account(
            runtime.store,
            runtime.clock,
            email=email,
            password=password,
            min_length=min_length,
            name=name,
            company=company,
            alias=alias,
        )
    except AccountError as exc:
        fail(str(exc))
    finally:
        runtime.close()
    payload = {
        "id": account.id,
        "email": account.email,
        "name": account.name,
        "company": account.company,
        "alias": account.alias,
    }
    _emit(as_json, payload, [f"created account {account.id} <{account.email}>"])


def _ask_password(email: str, min_length: int, tries: int = 3) -> str:
    """Asks for a new password, saying the rule, until one is accepted. The prompts go to
    stderr: with --json, stdout holds the JSON object alone."""
    from keyturn.core.accounts import AccountError, check_new_account, normalise_email

    try:
        normalise_email(email)  # a bad email is refused before a password is typed
    except AccountError as exc:
        fail(str(exc))
    for _ in range(tries):
        password: str = click.prompt(
            f"Password (at least {min_length} characters, not one of the most common)",
            hide_input=True,
            confirmation_prompt=True,
            err=True,
        )
        try:
            check_new_account(email, password, min_length)
        except AccountError as exc:
            click.echo(f"keyturn: {exc}", err=True)
            continue
        return password
    fail(f"no acceptable password after {tries} tries")


# ---- clients ----


def _record(settings: Settings, kind: str, account_id: int | None, client_id: str | None, **detail: Any) -> None:
    """An audit event for a change made from the command line."""
    runtime = _runtime(settings, migrate=False)
    try:
        runtime.store.record(
            kind, runtime.clock.now(), account_id=account_id, client_id=client_id, detail={**detail, "via": "cli"}
        )
    finally:
        runtime.close()


def _owner(runtime: Any, email: str | None) -> Any:
    if email is None:
        # Clients created by the operator act for a no-login operator account.
        account = runtime.store.find_account_by_email(OPERATOR_EMAIL)
        if account is None:
            account = runtime.store.create_account(
                email=OPERATOR_EMAIL, password_hash=None, now=runtime.clock.now(), name="Keyturn operator"
            )
        return account
    account = runtime.store.find_account_by_email(email)
    if account is None:
        runtime.close()
        fail(f"no account with the email {email} (create one with `keyturn users create --email {email}`)")
    return account


@main.group()
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
    from keyturn.core.registration import RegistrationError, register_client

    runtime = _runtime(settings)
    try:
        account = _owner(runtime, owner)
        created = register_client(
            runtime.store,
            runtime.hasher,
            runtime.clock,
            name=name,
            owner_id=account.id,
            catalogue=settings.scopes,
            production=settings.production,
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
    except RegistrationError as exc:
        fail(str(exc))
    finally:
        runtime.close()
    client = created.client
    _record(settings, "client.created", account.id, client.client_id)
    payload: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "confidential": client.confidential,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "scopes": list(client.scopes),
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
    _emit(as_json, payload, lines)


# ---- API keys ----


@main.group("api-keys")
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
    from keyturn.core.registration import RegistrationError, issue_api_key

    runtime = _runtime(settings)
    try:
        account = _owner(runtime, owner)
        created = issue_api_key(
            runtime.store,
            runtime.hasher,
            runtime.clock,
            owner_id=account.id,
            name=name,
            catalogue=settings.scopes,
            scopes=scopes or None,
        )
    except RegistrationError as exc:
        fail(str(exc))
    finally:
        runtime.close()
    key = created.api_key
    _record(settings, "api_key.created", account.id, None, key_id=key.id)
    payload = {
        "id": key.id,
        "key": created.key,
        "name": key.name,
        "owner": account.email,
        "scopes": None if key.scopes is None else list(key.scopes),
    }
    _emit(as_json, payload, [f"key: {created.key}", "Store the key now: it is not shown again."])


# ---- signing keys ----


@main.group()
def keys() -> None:
    """Signing keys."""


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def keys_rotate(settings: Settings, as_json: bool) -> None:
    """Add a new active signing key; the previous one stays published until every
    token it signed has expired."""
    runtime = _runtime(settings)
    try:
        key = runtime.keyring.rotate_for_tokens(
            settings.signing_alg, runtime.store.longest_access_token_ttl(), settings.access_token_ttl
        )
        runtime.keys_changed()
        runtime.store.record("keys.rotated", runtime.clock.now(), detail={"kid": key.kid})
        published = [k["kid"] for k in runtime.keyring.jwks["keys"]]
    finally:
        runtime.close()
    _emit(
        as_json,
        {"kid": key.kid, "alg": key.alg, "published": published},
        [f"new active signing key {key.kid} ({key.alg}); published: {', '.join(published)}"],
    )


# ---- audit ----


@main.command()
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

    runtime = _runtime(settings)
    try:
        account_id = None
        if account_email is not None:
            account_id = _owner(runtime, account_email).id
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
    _emit(as_json, {"events": rows}, lines)


# ---- tokens ----


@main.group()
def tokens() -> None:
    """Issued tokens."""


@tokens.command("purge")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 100_000), help="Rows per transaction.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def tokens_purge(settings: Settings, batch: int, as_json: bool) -> None:
    """Delete expired codes, tokens and sessions, ended API keys and old audit events."""
    from keyturn.core.housekeeping import purge
    from keyturn.core.ports import StoreUnavailable

    runtime = _runtime(settings)
    show_progress = not as_json and sys.stderr.isatty()
    try:
        with click.progressbar(length=0, label="purging", file=sys.stderr, show_pos=True) as bar:

            def progress(kind: str, count: int) -> None:
                if show_progress:
                    bar.label = f"purging {kind}"
                    bar.length = (bar.length or 0) + count
                    bar.update(count)

            deleted = purge(runtime.store, runtime.clock, settings, batch=batch, progress=progress)
    except StoreUnavailable as exc:
        fail(str(exc))
    finally:
        runtime.close()
    summary = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in deleted.items())
    _emit(as_json, {"deleted": deleted}, [f"deleted {summary}"])


if __name__ == "__main__":  # pragma: no cover
    main()
