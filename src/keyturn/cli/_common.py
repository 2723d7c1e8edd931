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


def runtime_for(settings: Settings) -> Any:
    """The wired server parts, one per command: a command that writes runs core's operation
    on ``runtime.ctx``, its change and audit event in one unit. The server stack is
    imported here, not when the CLI starts."""
    from keyturn.runtime import StartupError, open_runtime

    try:
        return open_runtime(settings)
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


def owner_account(runtime: Any, email: str | None) -> Any:
    if email is None:
        # Clients created by the operator act for a no-login operator account.
        from keyturn.core.accounts import AccountError, ensure_account
        from keyturn.core.service import run

        try:
            return run(ensure_account(runtime.ctx, email=OPERATOR_EMAIL, name="Keyturn operator"))
        except AccountError as exc:
            runtime.close()
            fail(str(exc))
    account = runtime.store.find_account_by_email(email)
    if account is None:
        runtime.close()
        fail(f"no account with the email {email} (create one with `keyturn users create --email {email}`)")
    return account
