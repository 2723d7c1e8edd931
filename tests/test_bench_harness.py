"""The benchmark harness (bench/run, issue #8) keeps working: its quick mode runs every
workload, and each one produces a number with no socket error and no unexpected status.

These tests never compare speeds: how fast this machine is is not a test result.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bench.unprotected_gateway import FixedPrincipal, create_app
from starlette.testclient import TestClient

from keyturn.resource import KeyturnMiddleware

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "bench" / "run"
KEYTURN_WORKLOADS = {
    "cc-opaque",
    "cc-jwt",
    "introspect",
    "refresh",
    "authcode",
    "me",
    "resource-key",
    "resource-jwt",
    "resource-unprotected",
}
OIDC_PROVIDER_WORKLOADS = {"cc-opaque", "cc-jwt", "introspect"}


def run_quick(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [str(RUN), "--quick", "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.exists(), f"bench/run exited {completed.returncode}:\n{completed.stderr[-4000:]}"
    results: list[dict[str, Any]] = json.loads(out.read_text())["results"]
    assert completed.returncode == 0, f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    # The Markdown table is what a person reads.
    assert "| workload | server | throughput | p50 | p99 | peak RSS |" in completed.stdout
    return results


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is missing: run `make bench-tools` (make test does); the harness drives the load with it")


def assert_measured(result: dict[str, Any]) -> None:
    name = f"{result['workload']} on {result['label']}"
    assert result["failed"] is None, f"{name} failed: {result['failed']}"
    assert result["skipped"] is None, f"{name} was skipped: {result['skipped']}"
    assert result["rate"] is not None, name
    assert result["rate"] > 0, name
    assert result["requests"] > 0, name
    assert result["p50_ms"] is not None, name
    assert result["p99_ms"] is not None, name
    assert result["socket_errors"] == 0, f"{name}: {result['socket_errors']} socket errors"
    assert result["non_2xx"] == 0, f"{name}: {result['non_2xx']} unexpected responses ({result['first_unexpected']})"


def test_quick_mode_measures_every_keyturn_workload_and_the_limit(tmp_path: Path) -> None:
    require_wrk()
    results = run_quick(tmp_path, "--servers", "keyturn,limit")

    by_server = {(r["workload"], r["server"]): r for r in results}
    assert {w for w, s in by_server if s == "keyturn"} == KEYTURN_WORKLOADS
    assert ("limit", "limit") in by_server
    gateway_exists = (ROOT / "examples" / "sms_gateway" / "app.py").exists()
    for result in results:
        if result["workload"].startswith("resource-") and not gateway_exists:
            # The harness marks the sample API's workloads as skipped until it exists.
            assert result["skipped"], result
            continue
        assert_measured(result)


def test_the_unprotected_baseline_is_the_same_endpoint_without_keyturn_middleware(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """resource-unprotected serves the sample API's own GET /balance (same handler, same
    response), with a fixed principal where KeyturnMiddleware would put a verified one."""
    monkeypatch.setenv("SMS_GATEWAY_CLIENT_ID", "bench")
    monkeypatch.setenv("SMS_GATEWAY_CLIENT_SECRET", "unused")
    app = create_app()
    installed = [m.cls for m in app.user_middleware]
    assert FixedPrincipal in installed
    assert KeyturnMiddleware not in installed
    with TestClient(app) as client:
        response = client.get("/balance")  # no credential, nothing checked
    assert response.status_code == 200
    assert response.json() == {"amount": 10.0, "currency": "EUR"}


def test_quick_mode_measures_oidc_provider_for_comparison(tmp_path: Path) -> None:
    require_wrk()
    if not (ROOT / "bench" / "oidc-provider" / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("oidc-provider is missing: run `make bench-tools` (make test does; it needs node and npm)")
    results = run_quick(tmp_path, "--servers", "oidc-provider", "--only", ",".join(sorted(OIDC_PROVIDER_WORKLOADS)))

    assert {r["workload"] for r in results} == OIDC_PROVIDER_WORKLOADS
    for result in results:
        assert result["server"] == "oidc-provider"
        assert_measured(result)


def test_refresh_tokens_are_made_in_rounds_that_codes_outlive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An authorization code lives 60 s: 70,000 codes issued at once had partly expired
    # before wrk exchanged them. Each round issues and exchanges CODES_PER_ROUND at most.
    from bench import keyturn_fixture
    from bench.processes import Processes

    fixture = keyturn_fixture.KeyturnFixture(Processes(tmp_path, None), "sqlite://", tmp_path)
    rounds: list[int] = []

    def exchange(server: Any, count: int, work_dir: Path, **_: Any) -> tuple[list[str], float]:
        rounds.append(count)
        return [f"kt_rt_{len(rounds)}_{n}" for n in range(count)], count / 2_000

    monkeypatch.setattr(fixture, "_exchange_codes", exchange)
    tokens, per_second = fixture.refresh_tokens(None, 25_000, tmp_path, load_cpu=None, connections=64)  # type: ignore[arg-type]
    assert rounds == [10_000, 10_000, 5_000]
    assert keyturn_fixture.CODES_PER_ROUND == 10_000
    assert len(tokens) == len(set(tokens)) == 25_000
    assert per_second == pytest.approx(2_000)
