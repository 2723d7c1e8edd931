"""What every command shares: ``--config``, the runtime, one-line errors, ``--json`` output,
and the account a command acts for."""

from __future__ import annotations

import functools
import json
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


def runtime_for(settings: Settings, *, migrate: bool = True) -> Any:
    """The wired server parts; the server stack is imported here, not when the CLI starts."""
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


def emit(as_json: bool, payload: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(payload))
    else:
        for line in lines:
            click.echo(line)


def record(settings: Settings, kind: str, account_id: int | None, client_id: str | None, **detail: Any) -> None:
    """An audit event for a change made from the command line."""
    runtime = runtime_for(settings, migrate=False)
    try:
        runtime.store.record(
            kind, runtime.clock.now(), account_id=account_id, client_id=client_id, detail={**detail, "via": "cli"}
        )
    finally:
        runtime.close()


def owner_account(runtime: Any, email: str | None) -> Any:
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
