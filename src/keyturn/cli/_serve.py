"""``keyturn serve`` and ``keyturn db upgrade``: listening, and the schema."""

from __future__ import annotations

import errno
import os
import signal
import socket
from typing import Any

import click

from keyturn.settings import Settings, configured_keys

from ._common import fail, runtime_for, with_config


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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Worker processes.")
@with_config
def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run the server (migrates the database and creates signing keys if needed)."""
    import uvicorn

    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    config_path = click.get_current_context().meta.get("keyturn.config")
    if not settings.production and "issuer" not in configured_keys(config_path):
        # In development an unconfigured issuer follows the address served, so that the
        # metadata's issuer is the URL a client discovers from (RFC 8414 §3.3: the issuer
        # returned "MUST be identical" to the one the client used). In production the
        # default stays: there the issuer is the public URL, usually a proxy's.
        settings = settings.with_overrides(issuer=development_issuer(host, bound_port))
        # Workers read their settings from the environment (keyturn.web.asgi).
        os.environ["KEYTURN_ISSUER"] = settings.issuer
    runtime = runtime_for(settings)
    from keyturn.web.observability import configure_logging

    configure_logging(settings.log_level)
    click.echo(
        f"keyturn: listening on {_url(host, bound_port)} (issuer {settings.issuer}, "
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

    if config_path is not None:
        os.environ["KEYTURN_CONFIG"] = os.path.abspath(config_path)
    config = uvicorn.Config("keyturn.web.asgi:app_from_environment", factory=True, workers=workers, **options)
    from ._workers import run_workers

    run_workers(config, sock)


#: A wildcard listening address, and the loopback address a local client dials instead.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - not a bind


def development_issuer(host: str, port: int) -> str:
    """The issuer of a development server listening on ``host:port``: the URL a local
    client dials (the wildcard addresses are not addresses one can connect to)."""
    return _url(_WILDCARDS.get(host, host), port)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@click.group()
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
