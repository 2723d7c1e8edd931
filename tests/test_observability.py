"""Metrics and logs of a running server: one JSON line per request with a request id, the
Prometheus counters, and not one secret in the logs after a full run."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import time
from pathlib import Path

import httpx
import pytest

from keyturn.core.codes import issue_code
from keyturn.runtime import open_runtime
from keyturn.settings import load_settings

from .cli_helpers import clean_environment, free_port, run_keyturn, start_server, stop_server, wait_until_ready

pytestmark = pytest.mark.slow
SECRET = "observability-secret-" + "o" * 30
PASSWORD = "observe me carefully"


def test_logs_carry_no_secret_and_metrics_count_the_run(tmp_path: Path) -> None:
    env = {"KEYTURN_SECRET": SECRET}

    def cli(*args: str) -> dict[str, object]:
        result = run_keyturn(*args, "--json", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        payload: dict[str, object] = json.loads(result.stdout)
        return payload

    cli("users", "create", "--email", "ann@example.com", "--password", PASSWORD)
    machine = cli(
        "clients", "create", "--name", "M2M", "--grant-type", "client_credentials", "--owner", "ann@example.com"
    )
    web = cli("clients", "create", "--name", "Web", "--redirect-uri", "https://app.example.com/cb")
    api = cli("clients", "create", "--name", "API", "--grant-type", "client_credentials", "--resource-server")
    api_key = str(cli("api-keys", "create", "--owner", "ann@example.com")["key"])

    settings = load_settings(
        environ=clean_environment({**env, "KEYTURN_DATABASE_URL": f"sqlite:///{tmp_path / 'keyturn.db'}"})
    )
    runtime = open_runtime(settings)
    try:
        client = runtime.store.get_client(str(web["client_id"]))
        assert client is not None
        code = issue_code(runtime.ctx, client, account_id=1, scopes=(), redirect_uri=None)
    finally:
        runtime.close()

    port = free_port()
    server = start_server(cwd=tmp_path, port=port, env=env)
    base = f"http://127.0.0.1:{port}"
    used: list[str] = [PASSWORD, api_key, code, str(machine["client_secret"]), str(web["client_secret"])]
    try:
        wait_until_ready(server, port)
        cc = httpx.post(
            f"{base}/oauth/token",
            auth=(str(machine["client_id"]), str(machine["client_secret"])),
            data={"grant_type": "client_credentials"},
        )
        access = cc.json()["access_token"]
        pair = httpx.post(
            f"{base}/oauth/token",
            auth=(str(web["client_id"]), str(web["client_secret"])),
            data={"grant_type": "authorization_code", "code": code},
        ).json()
        used += [access, pair["access_token"], pair["refresh_token"]]
        rotated = httpx.post(
            f"{base}/oauth/token",
            auth=(str(web["client_id"]), str(web["client_secret"])),
            data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        ).json()
        used += [rotated["access_token"], rotated["refresh_token"]]
        assert httpx.get(f"{base}/me", params={"api_key": api_key}).status_code == 200
        assert httpx.get(f"{base}/me", headers={"authorization": f"Bearer {access}"}).status_code == 200
        introspected = httpx.post(
            f"{base}/oauth/introspect", auth=(str(api["client_id"]), str(api["client_secret"])), data={"token": access}
        )
        assert introspected.json()["active"] is True
        bad = httpx.post(
            f"{base}/oauth/token",
            auth=(str(machine["client_id"]), "kt_cs_wrong-guess"),
            data={"grant_type": "client_credentials"},
        )
        assert bad.status_code == 401
        used.append("kt_cs_wrong-guess")
        with httpx.Client(base_url=base) as browser:
            page = browser.get("/login")
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert csrf is not None
            browser.post(
                "/login", data={"csrf": csrf.group(1), "email": "ann@example.com", "password": "wrong password here"}
            )
            used.append("wrong password here")
            signed_in = browser.post(
                "/login", data={"csrf": csrf.group(1), "email": "ann@example.com", "password": PASSWORD}
            )
            assert signed_in.status_code == 303
            used.append(browser.cookies["kt_session"])
        traced = httpx.get(f"{base}/healthz", headers={"x-request-id": "trace-42"})
        assert traced.headers["x-request-id"] == "trace-42"
        metrics = httpx.get(f"{base}/metrics")
    finally:
        code_, _, err = stop_server(server)
    assert code_ == 0

    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'keyturn_tokens_issued_total{grant="client_credentials"} 1.0' in text
    assert 'keyturn_tokens_issued_total{grant="authorization_code"} 1.0' in text
    assert 'keyturn_tokens_issued_total{grant="refresh_token"} 1.0' in text
    assert 'keyturn_client_auth_failures_total{endpoint="/oauth/token"} 1.0' in text
    assert "keyturn_login_failures_total 1.0" in text
    assert 'keyturn_http_requests_total{endpoint="/me",method="GET",status="200"} 2.0' in text
    assert 'keyturn_http_request_duration_seconds_count{endpoint="/oauth/token"} 4.0' in text

    # Every secret used in the run is absent from everything the server printed.
    for secret in used:
        assert secret not in err, f"a secret of the run ({secret[:8]}…) is in the server's output"
    requests = [json.loads(line) for line in err.splitlines() if line.startswith("{") and '"request"' in line]
    assert {r["path"] for r in requests} >= {"/oauth/token", "/me", "/oauth/introspect", "/login", "/healthz"}
    assert all(set(r) >= {"request_id", "method", "path", "status", "duration_ms"} for r in requests)
    assert any(r["request_id"] == "trace-42" for r in requests)
    assert all("?" not in r["path"] for r in requests)


def test_metrics_are_not_served_to_other_addresses(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(
        cwd=tmp_path, port=port, env={"KEYTURN_SECRET": SECRET, "KEYTURN_METRICS_ADDRESSES": "10.9.9.9"}
    )
    try:
        wait_until_ready(server, port)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
    finally:
        stop_server(server)


def _series(text: str, name: str) -> float:
    """The value of one series of a scrape (its full name with labels)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} is not in the scrape")


JWKS_REQUESTS = 'keyturn_http_requests_total{endpoint="/oauth/jwks",method="GET",status="200"}'


def _worker_pids(metrics_dir: Path) -> set[int]:
    # prometheus_client writes one file per kind and process: gauge_livesum_<pid>.db.
    return {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("gauge_livesum_*.db")}


def test_metrics_of_two_workers_add_up(tmp_path: Path) -> None:
    """Each scrape, whichever worker answers it, counts the requests of both workers, and
    carries the process and Python series; the workers' metrics live in a private
    directory of the run that is gone after it."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = free_port()
    server = start_server(
        "--workers", "2", cwd=tmp_path, port=port, env={"KEYTURN_SECRET": SECRET, "TMPDIR": str(temp)}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(server, port)
        (metrics_dir,) = temp.glob("keyturn-metrics-*")
        assert stat.S_IMODE(metrics_dir.stat().st_mode) == 0o700
        for _ in range(20):  # a new connection each: the two workers share them out
            assert httpx.get(f"{base}/oauth/jwks").status_code == 200
        scrapes = [httpx.get(f"{base}/metrics").text for _ in range(8)]
        assert len(_worker_pids(metrics_dir)) == 2

        # A worker that dies is replaced; what it counted still counts.
        killed = min(_worker_pids(metrics_dir))
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while killed in _worker_pids(metrics_dir) or len(_worker_pids(metrics_dir)) < 2:
            assert time.monotonic() < deadline, "the dead worker was not replaced and marked dead"
            time.sleep(0.1)
        wait_until_ready(server, port)
        after = [httpx.get(f"{base}/metrics").text for _ in range(4)]
    finally:
        code, _, err = stop_server(server)
    assert code == 0, err
    assert [_series(text, JWKS_REQUESTS) for text in scrapes] == [20.0] * 8
    assert [_series(text, JWKS_REQUESTS) for text in after] == [20.0] * 4
    for text in scrapes:
        assert _series(text, "process_resident_memory_bytes") > 0
        assert _series(text, "process_cpu_seconds_total") > 0
        assert 'python_info{implementation="CPython"' in text
        assert "python_gc_collections_total{" in text
        assert text.count("# TYPE keyturn_http_requests_total counter") == 1
    assert list(temp.iterdir()) == []
