"""``keyturn users``: user accounts."""

from __future__ import annotations

import click

from keyturn.settings import Settings

from ._common import emit, fail, runtime_for, with_config


@click.group()
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
    from keyturn.core.accounts import AccountError, check_new_account, new_password_hash, sign_up
    from keyturn.core.ports import StoreUnavailable
    from keyturn.core.service import run

    min_length = settings.password_min_length
    if password is None:
        password = _ask_password(email, min_length)
    runtime = runtime_for(settings)
    try:
        email = check_new_account(email, password, min_length)
        flow = sign_up(
            runtime.ctx, email=email, password_hash=new_password_hash(password), name=name, company=company, alias=alias
        )
        account = run(flow)  # the same unit as a sign-up from the pages
    except (AccountError, StoreUnavailable) as exc:
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
    emit(as_json, payload, [f"created account {account.id} <{account.email}>"])


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
