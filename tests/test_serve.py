"""`keyturn serve` as a user starts it: zero configuration, clear failures, and safe
concurrent start-ups on one PostgreSQL database."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import stat
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from keyturn.cli._serve import development_issuer
from keyturn.client import discover
from keyturn.store.migrate import HEAD

from .cli_helpers import free_port, run_keyturn, start_server, stop_server, wait_until_ready

pytestmark = pytest.mark.slow


def test_zero_configuration_start(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(cwd=tmp_path, port=port)
    try:
        wait_until_ready(server, port)
        base = f"http://127.0.0.1:{port}"
        metadata = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"] == base
        assert metadata["token_endpoint"] == f"{base}/oauth/token"
        jwks = httpx.get(f"{base}/oauth/jwks").json()
        assert len(jwks["keys"]) == 1
        ready = httpx.get(f"{base}/readyz")
        assert (ready.status_code, ready.json()["database"]) == (200, "ok")
    finally:
        code, _, err = stop_server(server)
    assert code == 0, err
    assert f"keyturn: listening on http://127.0.0.1:{port} (issuer http://127.0.0.1:{port}," in err
    assert "Traceback" not in err
    with sqlite3.connect(tmp_path / "keyturn.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert connection.execute("SELECT count(*) FROM signing_keys").fetchall() == [(1,)]


def test_the_database_and_its_wal_and_shm_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    port = free_port()
    old_umask = os.umask(0o022)  # the usual umask: files would be world-readable by default
    try:
        server = start_server(cwd=tmp_path, port=port)
    finally:
        os.umask(old_umask)
    try:
        wait_until_ready(server, port)
        # A write through the server (a sign-up), with the server's connections still open,
        # so that SQLite's -wal and -shm files exist beside the database.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', browser.get("/signup").text)
            assert csrf is not None
            form = {"csrf": csrf.group(1), "email": "ann@example.com", "password": "correct horse battery staple"}
            assert browser.post("/signup", data=form).headers["location"] == "/signup/done"
        modes = {
            name: stat.S_IMODE((tmp_path / name).stat().st_mode)
            for name in ("keyturn.db", "keyturn.db-wal", "keyturn.db-shm", "keyturn.secret")
        }
    finally:
        stop_server(server)
    assert modes == dict.fromkeys(modes, 0o600)
    with sqlite3.connect(tmp_path / "keyturn.db") as connection:
        assert connection.execute("SELECT email FROM accounts").fetchall() == [("ann@example.com",)]


def test_an_existing_database_file_keeps_its_mode(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "keyturn.db").close()
    (tmp_path / "keyturn.db").chmod(0o640)
    result = run_keyturn("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "keyturn.db").stat().st_mode) == 0o640


def test_restart_keeps_the_signing_key(tmp_path: Path) -> None:
    kids = []
    for _ in range(2):
        port = free_port()
        server = start_server(cwd=tmp_path, port=port)
        try:
            wait_until_ready(server, port)
            kids.append([k["kid"] for k in httpx.get(f"http://127.0.0.1:{port}/oauth/jwks").json()["keys"]])
        finally:
            stop_server(server)
    assert kids[0] == kids[1]
    assert len(kids[0]) == 1


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_keyturn("serve", "--port", str(port), cwd=tmp_path, env={"KEYTURN_SECRET": "s" * 40})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"keyturn: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(is Keyturn already running? choose another with --port)"
    )


def test_an_unreachable_database_stops_the_server_with_one_line(tmp_path: Path) -> None:
    result = run_keyturn(
        "serve",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        env={"KEYTURN_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/keyturn", "KEYTURN_SECRET": "s" * 40},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("keyturn: cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/keyturn")


@pytest.mark.postgres
def test_two_servers_started_at_once_on_one_postgres_database(tmp_path: Path, fresh_postgres_url: str) -> None:
    env = {"KEYTURN_DATABASE_URL": fresh_postgres_url, "KEYTURN_SECRET": "shared-secret-" + "p" * 30}
    ports = [free_port(), free_port()]
    servers = [start_server(cwd=tmp_path, port=port, env=env) for port in ports]
    try:
        for server, port in zip(servers, ports, strict=True):
            wait_until_ready(server, port)
        jwks = [httpx.get(f"http://127.0.0.1:{port}/oauth/jwks").json() for port in ports]
        for port in ports:
            assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    finally:
        results = [stop_server(server) for server in servers]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    engine = create_engine(fresh_postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]
            active = connection.execute(text("SELECT count(*) FROM signing_keys WHERE retired_at IS NULL")).scalar()
    finally:
        engine.dispose()
    # Both servers publish the same active key.
    assert active == 1
    assert jwks[0]["keys"][0]["kid"] == jwks[1]["keys"][0]["kid"]


def test_several_workers_serve(tmp_path: Path) -> None:
    port = free_port()
    server = start_server("--workers", "2", cwd=tmp_path, port=port, env={"KEYTURN_SECRET": "w" * 40})
    try:
        wait_until_ready(server, port)
        kids = {httpx.get(f"http://127.0.0.1:{port}/oauth/jwks").json()["keys"][0]["kid"] for _ in range(10)}
        assert len(kids) == 1
    finally:
        code, _, err = stop_server(server)
    assert code == 0, err


def test_in_development_an_unconfigured_issuer_follows_the_port_and_discovery_works(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(cwd=tmp_path, port=port, env={"KEYTURN_SECRET": "d" * 40})
    try:
        wait_until_ready(server, port)
        metadata = discover(base)
    finally:
        code, _, err = stop_server(server)
    assert code == 0, err
    assert (metadata.issuer, metadata.token_endpoint) == (base, f"{base}/oauth/token")
    assert f"(issuer {base}," in err


def test_every_worker_announces_the_issuer_that_follows_the_port(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server("--workers", "2", cwd=tmp_path, port=port, env={"KEYTURN_SECRET": "w" * 40})
    try:
        wait_until_ready(server, port)
        issuers = set()
        for _ in range(20):
            # A new connection each time, so that both workers answer.
            issuers.add(httpx.get(f"{base}/.well-known/oauth-authorization-server").json()["issuer"])
        assert discover(base).issuer == base
    finally:
        code, _, err = stop_server(server)
    assert code == 0, err
    assert issuers == {base}


def test_a_configured_issuer_is_kept_and_in_production_a_proxy_issuer_draws_no_warning(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "keyturn.toml"
    config.write_text('issuer = "http://localhost:9000"\n')
    server = start_server("--config", str(config), cwd=tmp_path, port=port, env={"KEYTURN_SECRET": "c" * 40})
    try:
        wait_until_ready(server, port)
        issuer = httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server").json()["issuer"]
    finally:
        stop_server(server)
    assert issuer == "http://localhost:9000"

    env = {"KEYTURN_SECRET": "c" * 40, "KEYTURN_ENV": "production", "KEYTURN_ISSUER": "https://auth.example.com"}
    server = start_server(cwd=tmp_path, port=port, env=env)
    try:
        wait_until_ready(server, port)
        issuer = httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server").json()["issuer"]
    finally:
        code, _, err = stop_server(server)
    assert code == 0, err
    assert issuer == "https://auth.example.com"
    assert f"keyturn: listening on http://127.0.0.1:{port} (issuer https://auth.example.com," in err
    assert "warning" not in err


@pytest.mark.parametrize(
    ("host", "issuer"),
    [
        ("127.0.0.1", "http://127.0.0.1:18999"),
        ("localhost", "http://localhost:18999"),
        ("0.0.0.0", "http://127.0.0.1:18999"),  # noqa: S104 - not a bind
        ("::", "http://[::1]:18999"),
        ("::1", "http://[::1]:18999"),
        ("192.0.2.7", "http://192.0.2.7:18999"),
    ],
)
def test_the_development_issuer_for_a_listening_host(host: str, issuer: str) -> None:
    # The wildcard addresses cannot be dialled; any other host is used as given.
    assert development_issuer(host, 18999) == issuer


def test_serve_runs_housekeeping_periodically(tmp_path: Path) -> None:
    env = {"KEYTURN_SECRET": "h" * 40}
    assert run_keyturn("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    with sqlite3.connect(tmp_path / "keyturn.db") as connection:
        connection.execute(
            "INSERT INTO accounts (email, email_key, name, company, alias, attributes, disabled, created_at,"
            " updated_at) VALUES ('a@example.com', 'a@example.com', '', '', '', '{}', 0, 1, 1)"
        )
        connection.execute("INSERT INTO sessions VALUES (x'00', 1, 1, 2)")
    port = free_port()
    server = start_server(cwd=tmp_path, port=port, env={**env, "KEYTURN_PURGE_INTERVAL": "1"})
    try:
        wait_until_ready(server, port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(tmp_path / "keyturn.db") as connection:
                if connection.execute("SELECT count(*) FROM sessions").fetchone() == (0,):
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("the expired session was not purged within 10 s")
    finally:
        code, _, err = stop_server(server)
    assert code == 0, err
