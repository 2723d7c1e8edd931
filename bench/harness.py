"""Keyturn's benchmark harness (issue #8): one command, ``bench/run``.

It measures Keyturn's protocol workloads with wrk, side by side with node oidc-provider
(the same grants) and with the limit (a bare ASGI app on the same server), and prints one
Markdown table: req/s, p50, p99 and peak RSS per workload, with the ratios
Keyturn/oidc-provider and Keyturn/limit.

How it measures: every server runs one process (one worker) pinned to the first CPU
(``taskset -c 0``), and is started afresh for every workload, so that its peak RSS
(VmHWM) is that workload's. wrk runs on the second CPU (``taskset -c 1 wrk -t1 -c64``,
keep-alive connections, 127.0.0.1 only), first for a warm-up, then for the measurement;
this harness itself stays on the second CPU too. Keyturn runs with its defaults except
the rate limits and housekeeping, which are off (``rate_limit_* = 0``,
``purge_interval = 0``).

Workloads (``--only``):
  cc-opaque     POST /oauth/token, client credentials, opaque access token
  cc-jwt        POST /oauth/token, client credentials, JWT access token (RFC 9068)
  introspect    POST /oauth/introspect: a resource server asks about an opaque token
  refresh       POST /oauth/token, refresh_token grant with rotation: every request
                presents a fresh refresh token from a list made before the run
  authcode      a signed-in user's authorization-code flow with remembered consent:
                GET /oauth/authorize (302 with a code) + POST /oauth/token; flows/s
  me            GET /me with an API key
  resource-key  GET /balance of the sample API (examples/sms_gateway, keyturn.resource),
                with an API key (introspected, then cached by keyturn.resource)
  resource-jwt  the same with a JWT access token (checked locally against the JWKS)
  resource-unprotected
                the same GET /balance with no credential checked (bench/unprotected_gateway.py:
                the sample API with a fixed principal in KeyturnMiddleware's place): the
                baseline of the two above, "the same endpoint unprotected"
  limit         the bare ASGI app: POST a client-credentials form, get a small JSON body
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .keyturn_fixture import REDIRECT_URI, Client, KeyturnFixture
from .prefill import prefill_tokens
from .processes import BenchError, Processes, Server, WrkResult, cpu_seconds, free_port, peak_rss_mb, run_wrk

ROOT = Path(__file__).resolve().parent.parent
OIDC_DIR = ROOT / "bench" / "oidc-provider"
GATEWAY_DIR = ROOT / "examples" / "sms_gateway"
PYTHON = sys.executable
DEFAULT_POSTGRES = "postgresql://root@127.0.0.1:5432/test"
CC_BODY = "grant_type=client_credentials&scope=sms"
OIDC_SECRET = "bench-" + secrets.token_hex(24)

# (id, title, servers that run it)
WORKLOADS: list[tuple[str, str, tuple[str, ...]]] = [
    ("cc-opaque", "client credentials, opaque token", ("keyturn", "oidc-provider")),
    ("cc-jwt", "client credentials, JWT", ("keyturn", "oidc-provider")),
    ("introspect", "introspection of an opaque token", ("keyturn", "oidc-provider")),
    ("refresh", "refresh with rotation", ("keyturn",)),
    ("authcode", "authorization-code flow, remembered consent", ("keyturn",)),
    ("me", "/me with an API key", ("keyturn",)),
    ("resource-key", "sample API via keyturn.resource, API key", ("keyturn",)),
    ("resource-jwt", "sample API via keyturn.resource, JWT", ("keyturn",)),
    ("resource-unprotected", "sample API, same endpoint, no credential checked", ("keyturn",)),
    ("limit", "limit: bare ASGI, form POST → JSON", ("limit",)),
]
WORKLOAD_IDS = [w[0] for w in WORKLOADS]
SERVERS = ("keyturn", "oidc-provider", "limit")
RESOURCE_WORKLOADS = ("resource-key", "resource-jwt", "resource-unprotected")


@dataclass
class Result:
    workload: str
    title: str
    server: str
    label: str
    #: Per second: requests, or flows for the authorization-code workload (see ``unit``).
    rate: float | None = None
    unit: str = "req/s"
    #: HTTP requests per second (equal to ``rate`` except for flows).
    requests_per_s: float | None = None
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mb: float | None = None
    #: The server process's CPU time (user + system) per request of the measured run.
    cpu_us_per_request: float | None = None
    socket_errors: int = 0
    non_2xx: int = 0
    first_unexpected: str = ""
    note: str = ""
    skipped: str | None = None
    failed: str | None = None


@dataclass
class Options:
    database: str
    postgres_url: str
    prefill: int
    quick: bool
    duration: float
    warmup: float
    connections: int
    only: list[str]
    servers: list[str]
    json_path: Path | None
    profile: str | None
    py_spy: str | None
    profile_out: Path | None
    command: str = ""
    #: Extra Keyturn settings (KEY=VALUE, as KEYTURN_KEY environment variables).
    keyturn_settings: dict[str, str] = field(default_factory=dict)


class Harness:
    def __init__(self, options: Options) -> None:
        self.options = options
        cpus = sorted(os.sched_getaffinity(0))
        self.server_cpu: int | None = None
        self.load_cpu: int | None = None
        if len(cpus) >= 2 and shutil.which("taskset"):
            self.server_cpu, self.load_cpu = cpus[0], cpus[1]
        else:
            self.log("fewer than 2 CPUs or no taskset: servers and wrk are NOT pinned, numbers are not comparable")
        self.work_dir = Path(tempfile.mkdtemp(prefix="keyturn-bench-"))
        self.processes = Processes(self.work_dir, self.server_cpu)
        self.results: list[Result] = []
        self.keyturn: KeyturnFixture | None = None
        self.database_url = ""
        self._pg_admin_engine: Any = None
        self._pg_database: str | None = None
        self.facts: dict[str, str] = {}
        self.profile_summary: str | None = None

    @staticmethod
    def log(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    # ---- the run ----

    def run(self) -> None:
        if shutil.which("wrk") is None:
            raise BenchError("wrk is not installed (apt-get install wrk)")
        if self.load_cpu is not None:
            os.sched_setaffinity(0, {self.load_cpu})
        self._collect_facts()
        self.facts["load_before"] = _load_average()
        wanted = [w for w in WORKLOADS if w[0] in self.options.only]
        needs_keyturn = "keyturn" in self.options.servers and any("keyturn" in w[2] for w in wanted)
        if needs_keyturn:
            self._set_up_keyturn()
        for workload, title, servers in wanted:
            for server in servers:
                if server not in self.options.servers:
                    continue
                self.results.append(self._run_one(workload, title, server))

        self.facts["load_after"] = _load_average()

    def _run_one(self, workload: str, title: str, server: str) -> Result:
        label = {"keyturn": "Keyturn", "oidc-provider": "oidc-provider", "limit": "bare ASGI (uvicorn)"}[server]
        if workload in RESOURCE_WORKLOADS:
            label = "keyturn.resource (sample API)"
        result = Result(workload, title, server, label)
        self.log(f"{workload} on {label} ...")
        try:
            if server == "keyturn":
                getattr(self, "_keyturn_" + workload.replace("-", "_"))(result)
            elif server == "oidc-provider":
                self._oidc_provider(result)
            else:
                self._limit(result)
        except BenchError as exc:
            result.failed = str(exc)
            self.log(f"{workload} on {label} FAILED: {exc}")
        else:
            if result.skipped:
                self.log(f"{workload} on {label}: skipped ({result.skipped})")
            else:
                self.log(
                    f"{workload} on {label}: {result.rate:,.0f} {result.unit}, p50 {result.p50_ms:.1f} ms, "
                    f"p99 {result.p99_ms:.1f} ms, peak RSS {result.rss_mb or 0:.0f} MB"
                )
        return result

    def close(self) -> None:
        self.processes.stop_all()
        if self._pg_database is not None and self._pg_admin_engine is not None:
            from sqlalchemy import text

            with self._pg_admin_engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_database}" WITH (FORCE)'))
            self.log(f"dropped the PostgreSQL database {self._pg_database}")
        if self._pg_admin_engine is not None:
            self._pg_admin_engine.dispose()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    # ---- set-up ----

    def _database(self) -> str:
        if self.options.database == "sqlite":
            return f"sqlite:///{self.work_dir / 'keyturn.db'}"
        from sqlalchemy import create_engine, text

        from keyturn.store.database import sqlalchemy_url

        admin = self.options.postgres_url
        name = f"keyturn_bench_{os.getpid()}_{secrets.token_hex(4)}"
        self._pg_admin_engine = create_engine(
            sqlalchemy_url(admin), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        try:
            with self._pg_admin_engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                version = connection.execute(text("SHOW server_version")).scalar()
        except Exception as exc:
            raise BenchError(f"cannot create a database on {admin}: {exc}") from None
        self._pg_database = name
        self.facts["database"] = (
            f"PostgreSQL {version} (a fresh database, dropped afterwards; the PostgreSQL server itself is not pinned)"
        )
        self.log(f"created the PostgreSQL database {name}")
        return f"{admin.rpartition('/')[0]}/{name}"

    def _set_up_keyturn(self) -> None:
        self.database_url = self._database()
        fixture = KeyturnFixture(self.processes, self.database_url, self.work_dir)
        for key, value in self.options.keyturn_settings.items():
            fixture.env["KEYTURN_" + key.upper()] = value
        self.keyturn = fixture
        self.log("setting up Keyturn: schema, account, clients, API key ...")
        fixture.create_credentials()
        if self.options.prefill:
            self.log(f"pre-filling the token table with {self.options.prefill:,} rows ...")
            seconds = prefill_tokens(
                self.database_url, self.options.prefill, client_id=fixture.web.client_id, account_id=fixture.account_id
            )
            self.facts["prefill"] = f"{self.options.prefill:,} token rows ({seconds:.0f} s to insert)"
        server = fixture.start()
        try:
            fixture.sign_in_and_consent(server)
        finally:
            self.processes.stop(server.process)

    def _collect_facts(self) -> None:
        import uvicorn

        model = "unknown"
        with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        self.facts.update(
            {
                "nproc": str(os.cpu_count()),
                "cpu": model,
                "python": platform.python_version(),
                "uvicorn": uvicorn.__version__,
                "wrk": _version(["wrk", "-v"], r"wrk (\S+)"),
                "database": "SQLite (a file in a temporary directory)",
            }
        )
        commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], r"(\S+)")
        dirty = _version(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], r"(\S+)") != "unknown"
        self.facts["keyturn"] = commit + (" with uncommitted changes in src/" if dirty else "")
        if shutil.which("node"):
            self.facts["node"] = _version(["node", "--version"], r"v(\S+)")
        self.facts["oidc-provider"] = _oidc_provider_version() or "not installed"

    # ---- measuring ----

    def _measure(
        self,
        result: Result,
        server: Server,
        url: str,
        script: str,
        env: Mapping[str, str],
        *,
        rss_of: Server | None = None,
        warmup_env: Mapping[str, str] | None = None,
    ) -> WrkResult:
        """Warm-up, then the measured run; fills ``result`` (not its rate for flows)."""
        opts = self.options
        run_wrk(
            url,
            script,
            duration=opts.warmup,
            connections=opts.connections,
            load_cpu=self.load_cpu,
            env=warmup_env or env,
        )
        cpu_before = cpu_seconds(server.pid)
        with self._profiling(result.workload, result.server, server.pid) as _:
            measured = run_wrk(
                url, script, duration=opts.duration, connections=opts.connections, load_cpu=self.load_cpu, env=env
            )
        cpu_after = cpu_seconds(server.pid)
        if cpu_before is not None and cpu_after is not None and measured.requests:
            result.cpu_us_per_request = (cpu_after - cpu_before) / measured.requests * 1e6
        result.rss_mb = peak_rss_mb((rss_of or server).pid)
        result.requests = measured.requests
        result.seconds = measured.seconds
        if measured.ran_out_after is not None:
            result.seconds = measured.ran_out_after
            result.note = f"the pre-made refresh tokens lasted {measured.ran_out_after:.1f} s of the run"
        result.requests_per_s = measured.requests / result.seconds if result.seconds else 0.0
        result.rate = result.requests_per_s
        result.p50_ms = measured.p50_ms
        result.p99_ms = measured.p99_ms
        result.socket_errors = measured.socket_errors
        result.non_2xx = measured.unexpected
        result.first_unexpected = measured.first_unexpected
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited during the run:\n{server.log_tail()}")
        return measured

    @contextlib.contextmanager
    def _profiling(self, workload: str, server: str, pid: int) -> Iterator[None]:
        if self.options.profile != workload or server != "keyturn":
            yield
            return
        py_spy = self.options.py_spy or shutil.which("py-spy")
        if py_spy is None:
            raise BenchError("--profile needs py-spy (pip install py-spy into any venv; pass --py-spy PATH)")
        raw = self.work_dir / "profile.txt"
        duration = max(1, round(self.options.duration) - 1)
        process = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(duration),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nolineno",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield
        finally:
            try:
                _, err = process.communicate(timeout=duration + 60)
            except subprocess.TimeoutExpired:
                process.kill()
                _, err = process.communicate()
        if not raw.exists():
            raise BenchError(f"py-spy wrote no profile: {err.strip()}")
        if self.options.profile_out is not None:
            shutil.copyfile(raw, self.options.profile_out)
        subject = "the sample API's" if workload in RESOURCE_WORKLOADS else "the Keyturn server's"
        self.profile_summary = summarize_profile(raw.read_text(), subject=subject)

    def _probe(self, method: str, url: str, *, expect: int = 200, **kwargs: Any) -> httpx.Response:
        """One request like the workload's, before loading the server with it."""
        response = httpx.request(method, url, timeout=30, **kwargs)
        if response.status_code != expect:
            raise BenchError(f"{method} {url} answered {response.status_code}, not {expect}: {response.text[:300]}")
        return response

    # ---- Keyturn's workloads ----

    def _fixture(self) -> KeyturnFixture:
        assert self.keyturn is not None
        return self.keyturn

    @contextlib.contextmanager
    def _keyturn_server(self) -> Iterator[Server]:
        server = self._fixture().start()
        try:
            yield server
        finally:
            self.processes.stop(server.process)

    def _static(self, result: Result, server: Server, path: str, *, body: str = "", auth: str = "") -> None:
        method = "POST" if body else "GET"
        headers = {"Authorization": auth} if auth else {}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self._probe(method, server.base + path, headers=headers, content=body or None)
        env = {"BENCH_METHOD": method, "BENCH_BODY": body, "BENCH_AUTH": auth, "BENCH_EXPECT": "200"}
        self._measure(result, server, server.base + path, "static.lua", env)

    def _keyturn_cc_opaque(self, result: Result) -> None:
        with self._keyturn_server() as server:
            self._static(result, server, "/oauth/token", body=CC_BODY, auth=self._fixture().cc_opaque.basic)

    def _keyturn_cc_jwt(self, result: Result) -> None:
        with self._keyturn_server() as server:
            self._static(result, server, "/oauth/token", body=CC_BODY, auth=self._fixture().cc_jwt.basic)

    def _keyturn_introspect(self, result: Result) -> None:
        fixture = self._fixture()
        with self._keyturn_server() as server:
            token = fixture.access_token(server, fixture.cc_opaque)
            auth = fixture.resource_server.basic
            answer = self._probe(
                "POST", server.base + "/oauth/introspect", data={"token": token}, headers={"Authorization": auth}
            )
            if answer.json().get("active") is not True:
                raise BenchError(f"the token is not active at introspection: {answer.text[:200]}")
            self._static(result, server, "/oauth/introspect", body=f"token={token}", auth=auth)

    def _keyturn_me(self, result: Result) -> None:
        with self._keyturn_server() as server:
            self._static(result, server, "/me", auth=f"Bearer {self._fixture().api_key}")

    def _keyturn_refresh(self, result: Result) -> None:
        fixture = self._fixture()
        opts = self.options
        warm_s, run_s = max(1, round(opts.warmup)), max(1, round(opts.duration))
        started = time.monotonic()
        make = functools.partial(
            fixture.refresh_tokens, work_dir=self.work_dir, load_cpu=self.load_cpu, connections=opts.connections
        )
        with self._keyturn_server() as server:
            # A first batch tells how fast this server exchanges codes; a refresh does about
            # what an exchange does (find, update, insert two tokens, audit), so 1.5 times
            # that rate over the warm-up and the run is enough tokens (if not, the run
            # stops when they are used up and reports the rate while they lasted).
            tokens, per_second = make(server, 300 if opts.quick else 2000)
            needed = math.ceil(per_second * 1.5 * (warm_s + run_s)) + 4 * opts.connections
            if needed > len(tokens):
                more, _ = make(server, min(needed - len(tokens), 500_000))
                tokens += more
        self.log(
            f"refresh: made {len(tokens):,} refresh tokens in {time.monotonic() - started:.1f} s "
            f"(codes in-process, exchanged at /oauth/token: {per_second:,.0f}/s)"
        )
        split = math.ceil(len(tokens) * warm_s / (warm_s + run_s))
        warm_file, run_file = self.work_dir / "refresh-warmup.txt", self.work_dir / "refresh-run.txt"
        warm_file.write_text("\n".join(tokens[:split]) + "\n")
        run_file.write_text("\n".join(tokens[split:]) + "\n")
        auth = fixture.web.basic
        with self._keyturn_server() as server:
            self._measure(
                result,
                server,
                server.base + "/oauth/token",
                "refresh.lua",
                {"BENCH_AUTH": auth, "BENCH_TOKENS": str(run_file)},
                warmup_env={"BENCH_AUTH": auth, "BENCH_TOKENS": str(warm_file)},
            )

    def _keyturn_authcode(self, result: Result) -> None:
        fixture = self._fixture()
        with self._keyturn_server() as server:
            self._probe(
                "GET", server.base + fixture.authorize_path, expect=302, headers={"Cookie": fixture.session_cookie}
            )
            env = {
                "BENCH_AUTHORIZE": fixture.authorize_path,
                "BENCH_COOKIE": fixture.session_cookie,
                "BENCH_AUTH": fixture.web.basic,
                "BENCH_REDIRECT": quote(REDIRECT_URI, safe=""),
            }
            measured = self._measure(result, server, server.base + "/", "authcode.lua", env)
        result.unit = "flows/s"
        result.rate = measured.flows / result.seconds if result.seconds else 0.0
        result.note = "a flow is GET /oauth/authorize (302) + POST /oauth/token; latencies are per request"

    def _keyturn_resource_key(self, result: Result) -> None:
        self._resource(result, lambda server: f"Bearer {self._fixture().api_key}")

    def _keyturn_resource_jwt(self, result: Result) -> None:
        fixture = self._fixture()
        self._resource(result, lambda server: f"Bearer {fixture.access_token(server, fixture.cc_jwt, 'balance')}")

    def _keyturn_resource_unprotected(self, result: Result) -> None:
        """The same endpoint of the same API with nothing checked: what keyturn.resource
        costs is the difference to the two workloads above."""
        self._resource(result, lambda server: "", app="bench.unprotected_gateway:create_app", app_dir=ROOT)

    def _resource(
        self,
        result: Result,
        credential: Callable[[Server], str],
        *,
        app: str = "app:create_app",
        app_dir: Path = GATEWAY_DIR,
    ) -> None:
        path = "/balance"
        problem = gateway_problem()
        if problem is not None:
            result.skipped = problem
            return
        fixture = self._fixture()
        port = free_port()
        env = {
            **os.environ,
            "SMS_GATEWAY_ISSUER": fixture.issuer,
            "SMS_GATEWAY_CLIENT_ID": fixture.resource_server.client_id,
            "SMS_GATEWAY_CLIENT_SECRET": fixture.resource_server.client_secret,
        }
        with self._keyturn_server() as keyturn:
            auth = credential(keyturn)
            gateway = self.processes.start_server(
                "sms-gateway",
                [
                    PYTHON,
                    "-m",
                    "uvicorn",
                    app,
                    "--factory",
                    "--app-dir",
                    str(app_dir),
                    *_uvicorn_options(port),
                ],
                port=port,
                env=env,
                cwd=self.work_dir,
                ready_path="/getFreeList",
            )
            try:
                self._static(result, gateway, path, auth=auth)
            finally:
                self.processes.stop(gateway.process)
            stack = "Starlette + KeyturnMiddleware" if app_dir == GATEWAY_DIR else "Starlette, no KeyturnMiddleware"
            result.note = (
                f"GET {path} on the sample API ({stack}), Keyturn beside it on the same CPU; "
                "peak RSS is the sample API's"
            )

    # ---- the others ----

    def _oidc_provider(self, result: Result) -> None:
        problem = oidc_provider_problem()
        if problem is not None:
            result.skipped = problem
            return
        result.label = f"oidc-provider {_oidc_provider_version()}"
        port = free_port()
        env = {**os.environ, "BENCH_PORT": str(port), "BENCH_SECRET": OIDC_SECRET, "NODE_ENV": "production"}
        server = self.processes.start_server(
            "oidc-provider",
            ["node", "server.mjs"],
            port=port,
            env=env,
            cwd=OIDC_DIR,
            ready_path="/.well-known/openid-configuration",
        )
        try:
            client = {"cc-opaque": "cc-opaque", "cc-jwt": "cc-jwt", "introspect": "rs"}[result.workload]
            auth = Client(client, OIDC_SECRET).basic
            if result.workload == "introspect":
                answer = self._probe(
                    "POST",
                    server.base + "/oauth/token",
                    data={"grant_type": "client_credentials", "scope": "sms"},
                    auth=("cc-opaque", OIDC_SECRET),
                )
                token = answer.json()["access_token"]
                self._static(result, server, "/oauth/introspect", body=f"token={token}", auth=auth)
            else:
                self._static(result, server, "/oauth/token", body=CC_BODY, auth=auth)
        finally:
            self.processes.stop(server.process)

    def _limit(self, result: Result) -> None:
        port = free_port()
        server = self.processes.start_server(
            "limit",
            [
                PYTHON,
                "-m",
                "uvicorn",
                "bench.limit_app:app",
                "--app-dir",
                str(ROOT),
                "--lifespan",
                "off",
                *_uvicorn_options(port),
            ],
            port=port,
            env=dict(os.environ),
            cwd=self.work_dir,
        )
        try:
            auth = Client("limit-client", "limit-secret").basic
            self._static(result, server, "/oauth/token", body=CC_BODY, auth=auth)
        finally:
            self.processes.stop(server.process)

    # ---- output ----

    def report(self) -> str:
        opts = self.options
        facts = self.facts
        lines = [
            f"Command: `{opts.command}`",
            "",
            f"Code: Keyturn at commit {facts['keyturn']}.",
            f"Machine: {facts['nproc']} CPUs ({facts['cpu']}); Python {facts['python']}, uvicorn {facts['uvicorn']}, "
            f"wrk {facts['wrk']}, node {facts.get('node', 'not installed')}, oidc-provider {facts['oidc-provider']}.",
            f"Database: {facts['database']}; token table pre-filled with {facts.get('prefill', '0 rows')}.",
            f"Load: wrk -t1 -c{opts.connections}, keep-alive, {opts.warmup:g} s warm-up then {opts.duration:g} s "
            "measured per workload; "
            + (
                f"servers pinned to CPU {self.server_cpu}, wrk and the harness to CPU {self.load_cpu}; "
                if self.server_cpu is not None
                else "NOT pinned; "
            )
            + "each server one process, started afresh per workload.",
            "Keyturn: defaults (log_level info: one JSON log line per request, here to a file) except "
            "rate_limit_* = 0 and purge_interval = 0"
            + "".join(f", {k} = {v}" for k, v in opts.keyturn_settings.items())
            + ".",
            f"Load average (1 min) before / after the run: {facts.get('load_before', '?')} / "
            f"{facts.get('load_after', '?')}.",
            "",
            "| workload | server | throughput | p50 | p99 | peak RSS | Keyturn / oidc-provider | Keyturn / limit |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        oidc = {r.workload: r for r in self.results if r.server == "oidc-provider" and r.rate}
        limit = next((r for r in self.results if r.server == "limit" and r.rate), None)
        unprotected = next((r for r in self.results if r.workload == "resource-unprotected" and r.rate), None)
        notes: list[str] = []
        for r in self.results:
            if r.skipped or r.failed:
                text = f"skipped: {r.skipped}" if r.skipped else "FAILED (see below)"
                lines.append(f"| {r.title} | {r.label} | {text} | | | | | |")
                if r.failed:
                    notes.append(f"{r.title} on {r.label} failed: {r.failed}")
                continue
            vs_oidc = vs_limit = ""
            if r.server == "keyturn" and r.requests_per_s:
                other = oidc[r.workload].requests_per_s if r.workload in oidc else None
                if other:
                    vs_oidc = f"{r.requests_per_s / other:.2f}×"
                if limit is not None and limit.requests_per_s:
                    vs_limit = f"{r.requests_per_s / limit.requests_per_s:.2f}×"
            rss = f"{r.rss_mb:.0f} MB" if r.rss_mb is not None else "?"
            lines.append(
                f"| {r.title} | {r.label} | {r.rate:,.0f} {r.unit} | {r.p50_ms:.1f} ms | {r.p99_ms:.1f} ms | {rss} "
                f"| {vs_oidc} | {vs_limit} |"
            )
            if r.socket_errors or r.non_2xx:
                notes.append(
                    f"{r.title} on {r.label}: {r.socket_errors} socket errors, {r.non_2xx} unexpected responses "
                    f"(first: {r.first_unexpected!r})"
                )
            if r.note:
                notes.append(f"{r.title} on {r.label}: {r.note}.")
            if r.workload in ("resource-key", "resource-jwt") and unprotected and unprotected.requests_per_s:
                share = r.requests_per_s / unprotected.requests_per_s if r.requests_per_s else 0.0
                cpu = ""
                if r.cpu_us_per_request and unprotected.cpu_us_per_request:
                    cpu = (
                        f"; the sample API's CPU time per request {r.cpu_us_per_request:.0f} µs against "
                        f"{unprotected.cpu_us_per_request:.0f} µs unprotected "
                        f"({unprotected.cpu_us_per_request / r.cpu_us_per_request:.0%})"
                    )
                notes.append(f"{r.title}: {share:.0%} of the same endpoint unprotected (issue #8 asks for 80 %+){cpu}.")
        lines.append("")
        lines.append(
            "Ratios are of HTTP requests per second (an authorization-code flow is two requests). "
            "Every run: zero socket errors and zero unexpected (non-2xx, or a 302 without a code) responses, "
            "unless listed here."
            if not any("socket errors" in n for n in notes)
            else "Ratios are of HTTP requests per second (an authorization-code flow is two requests)."
        )
        lines.extend(f"- {n}" for n in notes)
        if self.profile_summary:
            lines += ["", self.profile_summary]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.options.command,
            "facts": self.facts,
            "results": [asdict(r) for r in self.results],
            "profile": self.profile_summary,
        }

    def ok(self) -> bool:
        return all(not r.failed and not r.socket_errors and not r.non_2xx for r in self.results)


# ---- helpers ----


def _uvicorn_options(port: int) -> list[str]:
    """As `keyturn serve` runs uvicorn: uvloop, httptools, no access log."""
    return [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-server-header",
    ]


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def _version(argv: list[str], pattern: str) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    found = re.search(pattern, completed.stdout + completed.stderr)
    return found.group(1) if found else "unknown"


def _oidc_provider_version() -> str | None:
    try:
        package = json.loads((OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version: str = package["version"]
    return version


def oidc_provider_problem() -> str | None:
    """Why oidc-provider cannot run here, or None. Installs it (npm ci) when node and npm
    are there but bench/oidc-provider/node_modules is not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if _oidc_provider_version() is None:
        if shutil.which("npm") is None:
            return "npm is not installed (needed once: npm ci in bench/oidc-provider)"
        Harness.log("installing oidc-provider: npm ci in bench/oidc-provider ...")
        try:
            completed = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=OIDC_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "npm ci in bench/oidc-provider did not finish within 300 s"
        if completed.returncode != 0:
            return f"npm ci in bench/oidc-provider failed: {completed.stderr.strip().splitlines()[-1:]}"
    return None


def gateway_problem() -> str | None:
    """Why the sample API cannot run here, or None."""
    app = GATEWAY_DIR / "app.py"
    if not app.exists():
        return "examples/sms_gateway/app.py does not exist yet"
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import keyturn.resource, app; "
        "assert callable(app.create_app), 'app.create_app is missing'"
    )
    try:
        completed = subprocess.run(
            [PYTHON, "-c", probe, str(GATEWAY_DIR)], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        return "importing examples/sms_gateway/app.py took over 60 s"
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["?"])[-1]
        return f"examples/sms_gateway/app.py does not import: {last}"
    return None


#: py-spy attributes the time in uvloop's C code (epoll, socket reads and writes) to the
#: Python frame that entered it.
_LOOP = {"Runner.run (asyncio/runners.py)": "uvloop's C event loop (epoll, socket I/O), under Runner.run"}
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*)\)$")


def summarize_profile(raw: str, top: int = 12, subject: str = "the Keyturn server's") -> str:
    """py-spy's collapsed stacks ("frame;frame;... count") as two short tables: where the
    samples were (self) and which functions they were under (inclusive), plus self time
    by package."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        # The event loop's thread only: py-spy also counts idle worker threads waiting
        # on their queue (anyio's thread pool) as busy.
        if not any(f.startswith("Runner.run (") for f in frames):
            continue
        total += count
        names = [_frame_name(f) for f in frames]
        self_time[_LOOP.get(names[-1], names[-1])] += count
        packages["uvloop (C)" if names[-1] in _LOOP else _package(frames[-1])] += count
        for name in set(names):
            inclusive[name] += count
    if not total:
        return "Profile: no samples."

    def table(title: str, counter: Counter[str]) -> list[str]:
        rows = [f"| {title} | share of samples |", "|---|---:|"]
        rows += [f"| `{name}` | {100 * n / total:.1f} % |" for name, n in counter.most_common(top)]
        return rows

    lines = [f"Profile (py-spy, {total:,} samples of {subject} event-loop thread):", ""]
    lines += table("self time by package", packages)
    lines += ["", *table("self time by function", self_time)]
    # The frames every sample is under (click, uvicorn's server loop) say nothing.
    interesting = Counter({k: v for k, v in inclusive.items() if v < 0.95 * total})
    lines += ["", *table("inclusive time by function", interesting)]
    return "\n".join(lines)


def _frame_name(frame: str) -> str:
    found = _FRAME.match(frame.strip())
    if found is None:
        return frame.strip()
    return f"{found['function']} ({_short_path(found['file'])})"


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1].lstrip("/")
    return path


def _package(frame: str) -> str:
    found = _FRAME.match(frame.strip())
    path = found["file"] if found else frame
    short = _short_path(path)
    parts = short.split("/")
    if parts[0] == "keyturn" and len(parts) > 2:
        return "/".join(parts[:2])
    if parts[0].startswith("python3") or path.startswith("<"):
        return "stdlib: " + (parts[1] if len(parts) > 1 else short)
    return parts[0]


def parse_arguments(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark Keyturn beside node oidc-provider and a bare ASGI app; prints a Markdown table.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads (--only):" + __doc__.split("Workloads (``--only``):", 1)[1] if __doc__ else None,
    )
    parser.add_argument("--quick", action="store_true", help="~2 s per workload, 1 s warm-up, 1,000 prefill rows")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite", help="default: sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("KEYTURN_TEST_POSTGRES_URL") or DEFAULT_POSTGRES,
        help="server where --database postgres creates (and drops) its database "
        "(default: $KEYTURN_TEST_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument("--prefill", type=int, default=None, metavar="N", help="token rows to insert first (default 0)")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="seconds per workload (default 10)")
    parser.add_argument("--warmup", type=float, default=None, metavar="S", help="warm-up seconds (default 2)")
    parser.add_argument("--connections", type=int, default=64, metavar="N", help="wrk connections (default 64)")
    parser.add_argument(
        "--only", default=",".join(WORKLOAD_IDS), metavar="W,...", help="workloads to run (default: all)"
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), metavar="S,...", help=f"servers to run (default: {','.join(SERVERS)})"
    )
    parser.add_argument(
        "--keyturn-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra Keyturn setting for the run, e.g. log_level=warning (repeatable)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--profile",
        choices=[w for w in WORKLOAD_IDS if w != "limit"],
        default=None,
        help="sample the Keyturn server (for resource-*: the sample API) with py-spy during this "
        "workload's measured run",
    )
    parser.add_argument("--py-spy", default=None, metavar="PATH", help="the py-spy executable (default: on PATH)")
    parser.add_argument("--profile-out", type=Path, default=None, metavar="FILE", help="keep the collapsed stacks")
    args = parser.parse_args(argv)
    only = [w for w in args.only.split(",") if w]
    servers = [s for s in args.servers.split(",") if s]
    for name in only:
        if name not in WORKLOAD_IDS:
            parser.error(f"unknown workload {name!r} (choose from {', '.join(WORKLOAD_IDS)})")
    for name in servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r} (choose from {', '.join(SERVERS)})")
    keyturn_settings: dict[str, str] = {}
    for item in args.keyturn_setting:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[a-z_]+(__[a-z_]+)?", key):
            parser.error(f"--keyturn-setting wants KEY=VALUE with a Keyturn setting name, got {item!r}")
        keyturn_settings[key] = value
    if args.prefill is not None and args.prefill < 0:
        parser.error("--prefill must be 0 or more")
    if args.connections < 1:
        parser.error("--connections must be 1 or more")
    duration = args.duration if args.duration is not None else (2.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    if not 1 <= duration <= 600 or not 1 <= warmup <= 600:
        parser.error("--duration and --warmup must be between 1 and 600 seconds")
    prefill = args.prefill if args.prefill is not None else (1000 if args.quick else 0)
    return Options(
        database=args.database,
        postgres_url=args.postgres_url,
        prefill=prefill,
        quick=args.quick,
        duration=duration,
        warmup=warmup,
        connections=args.connections,
        only=only,
        servers=servers,
        json_path=args.json,
        profile=args.profile,
        py_spy=args.py_spy,
        profile_out=args.profile_out,
        command=shlex.join(["bench/run", *(sys.argv[1:] if argv is None else argv)]),
        keyturn_settings=keyturn_settings,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    harness = Harness(options)
    started = time.monotonic()
    try:
        harness.run()
    except BenchError as exc:
        Harness.log(str(exc))
        return 1
    except KeyboardInterrupt:
        Harness.log("interrupted")
        return 130
    finally:
        harness.close()
    report = harness.report()
    today = datetime.date.today().isoformat()
    print(f"## Keyturn benchmark, {today}\n")
    print(report)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(harness.as_json(), indent=2) + "\n")
    Harness.log(f"done in {time.monotonic() - started:.0f} s")
    return 0 if harness.ok() else 1
