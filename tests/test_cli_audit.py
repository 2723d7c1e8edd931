"""What the keyturn command changes is committed with its audit event, in one transaction:
the event names the change and says ``"via": "cli"``, and a change whose event cannot be
written is not made."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .cli_helpers import run_keyturn
from .test_cli import ENV, create_user, one_json_object, one_line_error, rows

CREATE_CLIENT = ("clients", "create", "--name", "M2M", "--grant-type", "client_credentials", "--json")
CREATE_API_KEY = ("api-keys", "create", "--owner", "ann@example.com", "--json")


def events(tmp_path: Path) -> list[dict[str, object]]:
    result = run_keyturn("audit", "--json", cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr
    listed = one_json_object(result.stdout)["events"]
    assert isinstance(listed, list)
    return [{k: e[k] for k in ("kind", "account_id", "client_id", "detail")} for e in listed]


def test_clients_create_records_client_created_for_the_operator_account(tmp_path: Path) -> None:
    created = one_json_object(run_keyturn(*CREATE_CLIENT, cwd=tmp_path, env=ENV).stdout)
    ((operator_id,),) = rows(tmp_path, "SELECT id FROM accounts WHERE email = 'operator@keyturn.local'")
    assert rows(tmp_path, "SELECT client_id, owner_id FROM clients") == [(created["client_id"], operator_id)]
    assert events(tmp_path) == [
        {
            "kind": "client.created",
            "account_id": operator_id,
            "client_id": created["client_id"],
            "detail": {"via": "cli"},
        }
    ]


def test_api_keys_create_records_api_key_created(tmp_path: Path) -> None:
    owner = create_user(tmp_path)
    created = one_json_object(run_keyturn(*CREATE_API_KEY, cwd=tmp_path, env=ENV).stdout)
    assert events(tmp_path) == [
        {
            "kind": "api_key.created",
            "account_id": owner["id"],
            "client_id": None,
            "detail": {"key_id": created["id"], "via": "cli"},
        }
    ]


def test_keys_rotate_records_keys_rotated(tmp_path: Path) -> None:
    rotated = one_json_object(run_keyturn("keys", "rotate", "--json", cwd=tmp_path, env=ENV).stdout)
    assert events(tmp_path) == [
        {"kind": "keys.rotated", "account_id": None, "client_id": None, "detail": {"kid": rotated["kid"], "via": "cli"}}
    ]


@pytest.mark.parametrize(
    ("command", "written"),
    [
        ((*CREATE_CLIENT, "--owner", "ann@example.com"), "SELECT * FROM clients"),
        (CREATE_API_KEY, "SELECT * FROM api_keys"),
        (("keys", "rotate", "--json"), "SELECT * FROM signing_keys"),
    ],
)
def test_a_change_whose_audit_event_cannot_be_written_is_not_made(
    tmp_path: Path, command: tuple[str, ...], written: str
) -> None:
    create_user(tmp_path)
    before = rows(tmp_path, written)
    with sqlite3.connect(tmp_path / "keyturn.db") as connection:
        connection.execute("ALTER TABLE audit_events RENAME TO audit_events_away")
    result = run_keyturn(*command, cwd=tmp_path, env=ENV)
    assert (result.returncode, result.stdout) == (1, "")
    assert "no such table: audit_events" in one_line_error(result.stderr)
    assert rows(tmp_path, written) == before
    assert rows(tmp_path, "SELECT * FROM audit_events_away") == []
