"""The keyturn command, run as a user runs it: exit codes, one-line errors, one JSON
object with --json, and secrets that are shown once and stored only hashed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from keyturn.core.credentials import Hasher, Kind, kind_of
from keyturn.store.migrate import HEAD

from .cli_helpers import run_keyturn

SECRET = "cli-test-secret-" + "z" * 40
ENV = {"KEYTURN_SECRET": SECRET}
PASSWORD = "correct horse battery"


def one_json_object(stdout: str) -> dict[str, object]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("keyturn: ")
    return lines[0]


def rows(tmp_path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "keyturn.db") as connection:
        return connection.execute(query).fetchall()


def create_user(tmp_path: Path, email: str = "ann@example.com") -> dict[str, object]:
    result = run_keyturn(
        "users",
        "create",
        "--email",
        email,
        "--password",
        PASSWORD,
        "--company",
        "Acme Inc",
        "--alias",
        "acme",
        "--json",
        cwd=tmp_path,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    return one_json_object(result.stdout)


# ---- users ----


def test_users_create_stores_an_argon2id_hash(tmp_path: Path) -> None:
    payload = create_user(tmp_path)
    assert payload == {"id": 1, "email": "ann@example.com", "name": "", "company": "Acme Inc", "alias": "acme"}
    ((password_hash,),) = rows(tmp_path, "SELECT password_hash FROM accounts")
    assert isinstance(password_hash, str)
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD.encode() not in (tmp_path / "keyturn.db").read_bytes()


def test_users_create_prompts_for_the_password_when_omitted(tmp_path: Path) -> None:
    result = run_keyturn(
        "users", "create", "--email", "bob@example.com", cwd=tmp_path, env=ENV, input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.returncode == 0, result.stderr
    assert "created account 1 <bob@example.com>" in result.stdout
    # The prompt says the rule; it goes to stderr, so that stdout holds only the result.
    assert "Password (at least 12 characters, not one of the most common): " in result.stderr
    assert "Password" not in result.stdout


def test_users_create_asks_again_after_a_refused_password(tmp_path: Path) -> None:
    typed = f"qwerty123456\nqwerty123456\n{PASSWORD}\n{PASSWORD}\n"
    result = run_keyturn("users", "create", "--email", "bob@example.com", "--json", cwd=tmp_path, env=ENV, input=typed)
    assert result.returncode == 0, result.stderr
    assert "keyturn: This password is one of the most common; choose another." in result.stderr
    assert one_json_object(result.stdout)["email"] == "bob@example.com"


def test_users_create_gives_up_after_three_refused_passwords(tmp_path: Path) -> None:
    result = run_keyturn(
        "users", "create", "--email", "bob@example.com", cwd=tmp_path, env=ENV, input="too short\ntoo short\n" * 3
    )
    assert result.returncode == 1
    assert result.stderr.count("keyturn: Use at least 12 characters.") == 3
    assert result.stderr.rstrip().endswith("keyturn: no acceptable password after 3 tries")
    assert not (tmp_path / "keyturn.db").exists()  # asked before the database is opened


def test_users_create_follows_the_password_min_length_setting(tmp_path: Path) -> None:
    env = {**ENV, "KEYTURN_PASSWORD_MIN_LENGTH": "24"}
    refused = run_keyturn("users", "create", "--email", "c@example.com", "--password", PASSWORD, cwd=tmp_path, env=env)
    assert refused.returncode == 1
    assert one_line_error(refused.stderr) == "keyturn: Use at least 24 characters."
    prompted = run_keyturn(
        "users", "create", "--email", "c@example.com", cwd=tmp_path, env=env, input=f"{PASSWORD} and more\n" * 2
    )
    assert prompted.returncode == 0, prompted.stderr
    assert "Password (at least 24 characters, not one of the most common): " in prompted.stderr


def test_users_create_refuses_a_duplicate_and_a_weak_password(tmp_path: Path) -> None:
    create_user(tmp_path)
    duplicate = run_keyturn(
        "users", "create", "--email", "ANN@example.com", "--password", PASSWORD, cwd=tmp_path, env=ENV
    )
    assert duplicate.returncode == 1
    assert one_line_error(duplicate.stderr) == "keyturn: an account with the email ANN@example.com exists already"
    weak = run_keyturn("users", "create", "--email", "c@example.com", "--password", "short", cwd=tmp_path, env=ENV)
    assert weak.returncode == 1
    assert one_line_error(weak.stderr) == "keyturn: Use at least 12 characters."
    common = run_keyturn(
        "users", "create", "--email", "c@example.com", "--password", "1qaz2wsx3edc", cwd=tmp_path, env=ENV
    )
    assert common.returncode == 1
    assert one_line_error(common.stderr) == "keyturn: This password is one of the most common; choose another."
    bad_email = run_keyturn("users", "create", "--email", "not-an-email", "--password", PASSWORD, cwd=tmp_path, env=ENV)
    assert bad_email.returncode == 1
    assert one_line_error(bad_email.stderr) == "keyturn: 'not-an-email' is not an email address"
    assert rows(tmp_path, "SELECT count(*) FROM accounts") == [(1,)]


# ---- clients ----


def test_clients_create_prints_the_secret_once_and_stores_its_keyed_hash(tmp_path: Path) -> None:
    create_user(tmp_path)
    result = run_keyturn(
        "clients",
        "create",
        "--name",
        "Billing",
        "--redirect-uri",
        "https://app.example.com/cb",
        "--scope",
        "sms",
        "--scope",
        "balance",
        "--owner",
        "ann@example.com",
        "--json",
        cwd=tmp_path,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    payload = one_json_object(result.stdout)
    secret = payload.pop("client_secret")
    assert isinstance(secret, str)
    assert kind_of(secret) is Kind.CLIENT_SECRET
    client_id = payload.pop("client_id")
    assert payload == {
        "name": "Billing",
        "confidential": True,
        "redirect_uris": ["https://app.example.com/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["sms", "balance"],
        "allow_implicit": False,
        "resource_server": False,
        "token_format": "opaque",
        "access_token_ttl": 3600,
        "refresh_token_ttl": 2592000,
        "owner": "ann@example.com",
    }
    ((stored_id, stored_hash, owner_id),) = rows(tmp_path, "SELECT client_id, secret_hash, owner_id FROM clients")
    assert stored_id == client_id
    assert stored_hash == Hasher(SECRET).digest(secret)
    assert owner_id == 1
    assert secret.encode() not in (tmp_path / "keyturn.db").read_bytes()


def test_per_client_lifetimes(tmp_path: Path) -> None:
    result = run_keyturn(
        "clients", "create", "--name", "SIPSIM", "--grant-type", "client_credentials",
        "--access-token-ttl", "7200", "--json", cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert one_json_object(result.stdout)["access_token_ttl"] == 7200
    refused = run_keyturn(
        "clients", "create", "--name", "X", "--grant-type", "client_credentials", "--access-token-ttl", "0",
        cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert refused.returncode == 1
    assert one_line_error(refused.stderr) == "keyturn: the access token lifetime must be a positive number of seconds"


def test_public_clients_have_no_secret_and_cannot_use_client_credentials(tmp_path: Path) -> None:
    public = run_keyturn(
        "clients",
        "create",
        "--name",
        "SPA",
        "--public",
        "--redirect-uri",
        "http://localhost:5173/cb",
        "--json",
        cwd=tmp_path,
        env=ENV,
    )
    assert public.returncode == 0, public.stderr
    payload = one_json_object(public.stdout)
    assert "client_secret" not in payload
    assert payload["confidential"] is False
    assert payload["owner"] == "operator@keyturn.local"
    refused = run_keyturn(
        "clients", "create", "--name", "Bad", "--public", "--grant-type", "client_credentials", cwd=tmp_path, env=ENV
    )
    assert refused.returncode == 1
    assert one_line_error(refused.stderr) == "keyturn: a public client cannot use client_credentials"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--redirect-uri", "https://app.example.com/cb#frag"], "must not contain a fragment"),
        (
            ["--redirect-uri", "https://app.example.com/café"],
            "contains non-ASCII characters; write them percent-encoded",
        ),
        (["--redirect-uri", "https://app.example.com/a b"], "contains a space; write it as %20"),
        (["--redirect-uri", "/relative/cb"], "must be absolute"),
        ([], "needs at least one redirect URI"),
        (
            ["--owner", "nobody@example.com", "--redirect-uri", "https://a.example/cb"],
            "no account with the email nobody@example.com",
        ),
    ],
)
def test_clients_create_refusals(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_keyturn("clients", "create", "--name", "App", *args, cwd=tmp_path, env=ENV)
    assert result.returncode == 1
    assert message in one_line_error(result.stderr)


def test_client_scopes_must_be_in_the_catalogue(tmp_path: Path) -> None:
    config = tmp_path / "keyturn.toml"
    config.write_text('[scopes]\nsms = "Send SMS messages"\n')
    result = run_keyturn(
        "clients",
        "create",
        "--name",
        "M2M",
        "--grant-type",
        "client_credentials",
        "--scope",
        "voice",
        "--config",
        str(config),
        cwd=tmp_path,
        env=ENV,
    )
    assert result.returncode == 1
    assert one_line_error(result.stderr) == "keyturn: unknown scope 'voice'; the catalogue has: sms"


# ---- API keys ----


def test_api_keys_create(tmp_path: Path) -> None:
    create_user(tmp_path)
    result = run_keyturn(
        "api-keys",
        "create",
        "--owner",
        "ann@example.com",
        "--name",
        "CI",
        "--scope",
        "sms",
        "--json",
        cwd=tmp_path,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    payload = one_json_object(result.stdout)
    key = payload.pop("key")
    assert isinstance(key, str)
    assert kind_of(key) is Kind.API_KEY
    assert payload == {"id": 1, "name": "CI", "owner": "ann@example.com", "scopes": ["sms"]}
    ((key_hash, prefix, scope),) = rows(tmp_path, "SELECT key_hash, display_prefix, scope FROM api_keys")
    assert key_hash == Hasher(SECRET).digest(key)
    assert prefix == key[: len("kt_key_") + 4] + "…" + key[-4:]
    assert scope == "sms"
    assert key.encode() not in (tmp_path / "keyturn.db").read_bytes()


def test_all_scopes_is_null_in_every_json_output(tmp_path: Path) -> None:
    # A client registered with no --scope may ask for any scope; a key created with none
    # may use them all: both say so with null, never [] (which would read as "none").
    create_user(tmp_path)
    client = run_keyturn(
        "clients", "create", "--name", "Any", "--grant-type", "client_credentials", "--json", cwd=tmp_path, env=ENV
    )
    assert client.returncode == 0, client.stderr
    assert one_json_object(client.stdout)["scopes"] is None
    key = run_keyturn("api-keys", "create", "--owner", "ann@example.com", "--json", cwd=tmp_path, env=ENV)
    assert key.returncode == 0, key.stderr
    assert one_json_object(key.stdout)["scopes"] is None


def test_api_keys_need_an_existing_owner(tmp_path: Path) -> None:
    result = run_keyturn("api-keys", "create", "--owner", "ghost@example.com", cwd=tmp_path, env=ENV)
    assert result.returncode == 1
    assert "no account with the email ghost@example.com" in one_line_error(result.stderr)


# ---- signing keys, db, placeholders ----


def test_keys_rotate_keeps_the_previous_key_published(tmp_path: Path) -> None:
    first = run_keyturn("keys", "rotate", "--json", cwd=tmp_path, env=ENV)
    second = run_keyturn("keys", "rotate", "--json", cwd=tmp_path, env=ENV)
    assert first.returncode == second.returncode == 0
    one, two = one_json_object(first.stdout), one_json_object(second.stdout)
    # The first start created a key; each rotation adds one and keeps the others published.
    assert isinstance(one["published"], list)
    assert len(one["published"]) == 2
    assert two["published"] == [two["kid"], *one["published"]]
    assert two["alg"] == "ES256"


def test_db_upgrade(tmp_path: Path) -> None:
    first = run_keyturn("db", "upgrade", cwd=tmp_path, env=ENV)
    assert (first.returncode, first.stderr.strip()) == (0, f"keyturn: database migrated to schema revision {HEAD}")
    again = run_keyturn("db", "upgrade", cwd=tmp_path, env=ENV)
    assert (again.returncode, again.stderr.strip()) == (0, f"keyturn: database already at schema revision {HEAD}")


def test_tokens_purge_reports_what_it_deleted(tmp_path: Path) -> None:
    result = run_keyturn("tokens", "purge", "--json", cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr
    assert one_json_object(result.stdout) == {
        "deleted": {"authorization_codes": 0, "tokens": 0, "sessions": 0, "api_keys": 0, "audit_events": 0}
    }
    plain = run_keyturn("tokens", "purge", cwd=tmp_path, env=ENV)
    assert plain.stdout.strip() == ("deleted 0 authorization codes, 0 tokens, 0 sessions, 0 api keys, 0 audit events")


def test_json_output_stays_clean_when_the_development_secret_is_created(tmp_path: Path) -> None:
    result = run_keyturn("keys", "rotate", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    one_json_object(result.stdout)
    assert "development mode: created a server secret in ./keyturn.secret" in result.stderr
    assert (tmp_path / "keyturn.secret").stat().st_mode & 0o777 == 0o600


# ---- bad settings and bad databases ----


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KEYTURN_ACCESS_TOKEN_TTL": "-5"}, "invalid setting access_token_ttl (from KEYTURN_ACCESS_TOKEN_TTL)"),
        ({"KEYTURN_TOKEN_FORMAT": "paseto"}, "invalid setting token_format (from KEYTURN_TOKEN_FORMAT)"),
        ({"KEYTURN_DATABASE_URL": "mysql://x/y"}, "invalid setting database_url (from KEYTURN_DATABASE_URL)"),
        (
            {"KEYTURN_DATABSE_URL": "sqlite:///x.db"},
            "invalid setting databse_url (from KEYTURN_DATABSE_URL): unknown setting",
        ),
        (
            {"KEYTURN_ENV": "production", "KEYTURN_ISSUER": "http://auth.example.com"},
            "invalid setting issuer (from KEYTURN_ISSUER): must be an https:// URL in production",
        ),
        (
            {"KEYTURN_ENV": "production", "KEYTURN_ISSUER": "https://auth.example.com"},
            "invalid setting secret",
        ),
    ],
)
def test_bad_settings_exit_2_with_one_line_naming_the_key(tmp_path: Path, env: dict[str, str], message: str) -> None:
    environment = {**ENV, **env}
    if "secret" in message:
        environment.pop("KEYTURN_SECRET")
    result = run_keyturn("db", "upgrade", cwd=tmp_path, env=environment)
    assert result.returncode == 2
    assert message in one_line_error(result.stderr)
    assert not (tmp_path / "keyturn.db").exists()


def test_the_test_suite_and_sdk_variables_are_not_settings(tmp_path: Path) -> None:
    # KEYTURN_TEST_* belongs to the test suite; KEYTURN_CLIENT_ID/SECRET/SCOPE (and the
    # deprecated KEYTURN_SCOPE) to the SDK's from_env(): none of them stops a command.
    env = {
        **ENV,
        "KEYTURN_TEST_POSTGRES_URL": "postgresql://nobody@127.0.0.1:1/none",
        "KEYTURN_CLIENT_ID": "kt_ci",
        "KEYTURN_CLIENT_SECRET": "s",
        "KEYTURN_CLIENT_SCOPE": "sms",
        "KEYTURN_SCOPE": "sms",
    }
    result = run_keyturn(
        "clients", "create", "--name", "Shop", "--grant-type", "client_credentials", "--json", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert one_json_object(result.stdout)["name"] == "Shop"


def test_an_unknown_keyturn_variable_still_exits_2_with_its_name(tmp_path: Path) -> None:
    result = run_keyturn("clients", "create", "--name", "Shop", cwd=tmp_path, env={**ENV, "KEYTURN_FOO": "1"})
    assert result.returncode == 2
    assert "invalid setting foo (from KEYTURN_FOO): unknown setting" in one_line_error(result.stderr)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("issuer = ", "not valid TOML"),
        ('colour = "blue"\n', "invalid setting colour (from"),
        ('access_token_ttl = "an hour"\n', "invalid setting access_token_ttl"),
    ],
)
def test_bad_config_files_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    config = tmp_path / "keyturn.toml"
    if content is not None:
        config.write_text(content)
    result = run_keyturn("serve", "--config", str(config), cwd=tmp_path, env=ENV)
    assert result.returncode == 2
    assert message in one_line_error(result.stderr)


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = run_keyturn(
        "db", "upgrade", cwd=tmp_path, env={**ENV, "KEYTURN_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/kt"}
    )
    assert result.returncode == 1
    assert one_line_error(result.stderr).startswith(
        "keyturn: cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/kt"
    )


def test_a_corrupt_sqlite_file_is_one_line_and_untouched(tmp_path: Path) -> None:
    database = tmp_path / "keyturn.db"
    database.write_bytes(b"garbage" * 1000)
    result = run_keyturn("users", "create", "--email", "a@example.com", "--password", PASSWORD, cwd=tmp_path, env=ENV)
    assert result.returncode == 1
    assert "is not a usable SQLite database" in one_line_error(result.stderr)
    assert database.read_bytes() == b"garbage" * 1000


def test_a_database_from_a_newer_keyturn_is_refused(tmp_path: Path) -> None:
    assert run_keyturn("db", "upgrade", cwd=tmp_path, env=ENV).returncode == 0
    with sqlite3.connect(tmp_path / "keyturn.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
    result = run_keyturn("serve", cwd=tmp_path, env=ENV)
    assert result.returncode == 1
    assert "schema revision '0099'" in one_line_error(result.stderr)


def test_audit_lists_events_with_filters(tmp_path: Path) -> None:
    create_user(tmp_path)
    with sqlite3.connect(tmp_path / "keyturn.db") as connection:
        for at, kind, account in ((100, "login.failed", None), (200, "login.succeeded", 1), (300, "token.revoked", 1)):
            connection.execute(
                "INSERT INTO audit_events (at, kind, account_id, client_id, detail) VALUES (?, ?, ?, NULL, '{}')",
                (at, kind, account),
            )
    everything = run_keyturn("audit", "--json", cwd=tmp_path, env=ENV)
    assert everything.returncode == 0, everything.stderr
    events = one_json_object(everything.stdout)["events"]
    assert [e["kind"] for e in events] == ["token.revoked", "login.succeeded", "login.failed"]  # type: ignore[index]
    logins = one_json_object(run_keyturn("audit", "--kind", "login.*", "--json", cwd=tmp_path, env=ENV).stdout)
    assert [e["kind"] for e in logins["events"]] == ["login.succeeded", "login.failed"]  # type: ignore[index]
    mine = one_json_object(
        run_keyturn("audit", "--account", "ann@example.com", "--limit", "1", "--json", cwd=tmp_path, env=ENV).stdout
    )
    assert [e["kind"] for e in mine["events"]] == ["token.revoked"]  # type: ignore[index]
    plain = run_keyturn("audit", "--kind", "nothing", cwd=tmp_path, env=ENV)
    assert plain.stdout.strip() == "no audit events match"


def test_changes_from_the_command_line_are_audited(tmp_path: Path) -> None:
    create_user(tmp_path)
    created = run_keyturn(
        "clients", "create", "--name", "M2M", "--grant-type", "client_credentials", "--json", cwd=tmp_path, env=ENV
    )
    client_id = one_json_object(created.stdout)["client_id"]
    run_keyturn("api-keys", "create", "--owner", "ann@example.com", cwd=tmp_path, env=ENV)
    run_keyturn("keys", "rotate", cwd=tmp_path, env=ENV)
    events = one_json_object(run_keyturn("audit", "--json", cwd=tmp_path, env=ENV).stdout)["events"]
    assert [(e["kind"], e["client_id"]) for e in events] == [  # type: ignore[index]
        ("keys.rotated", None),
        ("api_key.created", None),
        ("client.created", client_id),
    ]
    assert events[1]["detail"] == {"key_id": 1, "via": "cli"}  # type: ignore[index]
