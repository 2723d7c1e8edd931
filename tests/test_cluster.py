"""Two Keyturn nodes on one PostgreSQL and one Redis, as behind a load balancer; and what
happens when Redis or PostgreSQL goes away."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from keyturn.cluster import RedisLimiter
from keyturn.core.clock import FrozenClock
from keyturn.core.ratelimit import LocalLimiter, Slot

from .cli_helpers import free_port, run_keyturn, start_server, stop_server, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
REDIS = "redis://127.0.0.1:6379/0"


class Node:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def token(self, client: dict[str, str], **data: str) -> httpx.Response:
        return httpx.post(f"{self.base}/oauth/token", auth=(client["client_id"], client["client_secret"]), data=data)

    def introspect(self, api: dict[str, str], token: str) -> dict[str, object]:
        answer = httpx.post(
            f"{self.base}/oauth/introspect", auth=(api["client_id"], api["client_secret"]), data={"token": token}
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, object] = answer.json()
        return result


@pytest.fixture
def cluster(tmp_path: Path, fresh_postgres_url: str) -> Iterator[tuple[Node, Node, dict[str, str]]]:
    env = {
        "KEYTURN_DATABASE_URL": fresh_postgres_url,
        "KEYTURN_REDIS_URL": REDIS,
        "KEYTURN_SECRET": "cluster-secret-" + "c" * 30,
        "KEYTURN_REFRESH_TOKEN_REUSE_GRACE": "0",
        "KEYTURN_RATE_LIMIT_TOKEN": "8",
        # These nodes share Redis with every other run on this machine, and all of them sign
        # up and in from 127.0.0.1: other runs' sign-ups (within the hour) and failed
        # sign-ins (within 15 minutes) must not refuse this run's. Each run's accounts are
        # its own, so their own limits still count.
        "KEYTURN_LOGIN_FAILURES_PER_ADDRESS": "0",
        "KEYTURN_SIGNUPS_PER_ADDRESS_PER_HOUR": "0",
    }
    assert run_keyturn("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    ports = [free_port(), free_port()]
    servers = [start_server(cwd=tmp_path, port=port, env=env) for port in ports]
    try:
        for server, port in zip(servers, ports, strict=True):
            wait_until_ready(server, port)
        yield Node(ports[0]), Node(ports[1]), env
    finally:
        for server in servers:
            stop_server(server)


def cli(tmp_path: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    result = run_keyturn(*args, "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    payload: dict[str, str] = json.loads(result.stdout)
    return payload


def test_two_nodes_share_tokens_revocations_clients_and_limits(
    tmp_path: Path, cluster: tuple[Node, Node, dict[str, str]]
) -> None:
    a, b, env = cluster
    api = cli(
        tmp_path, env, "clients", "create", "--name", "API", "--grant-type", "client_credentials", "--resource-server"
    )
    machine = cli(tmp_path, env, "clients", "create", "--name", "M2M", "--grant-type", "client_credentials")

    # A token from node A is active on node B; revoked on A, it is inactive on B at once.
    issued = a.token(machine, grant_type="client_credentials").json()["access_token"]
    assert b.introspect(api, issued)["active"] is True
    revoked = httpx.post(
        f"{a.base}/oauth/revoke", auth=(machine["client_id"], machine["client_secret"]), data={"token": issued}
    )
    assert revoked.status_code == 200
    assert b.introspect(api, issued) == {"active": False}

    # Rate limits are counted across both nodes: 8 a minute for this client.
    other = cli(tmp_path, env, "clients", "create", "--name", "Limited", "--grant-type", "client_credentials")
    statuses = [node.token(other, grant_type="client_credentials").status_code for node in (a, b) * 5]
    assert statuses[:8] == [200] * 8
    assert statuses[8:] == [429, 429]
    limited = b.token(other, grant_type="client_credentials")
    assert limited.headers["retry-after"].isdigit()
    assert limited.json()["error"] == "temporarily_unavailable"


def test_a_client_deleted_on_one_node_cannot_get_a_token_on_the_other(
    tmp_path: Path, cluster: tuple[Node, Node, dict[str, str]]
) -> None:
    a, b, _ = cluster
    with httpx.Client(base_url=b.base) as browser:
        page = browser.get("/signup")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        email = f"ops-{secrets.token_hex(3)}@example.com"
        form = {"csrf": csrf.group(1), "email": email, "password": "a long passphrase"}
        assert browser.post("/signup", data=form).headers["location"] == "/signup/done"
        # A sign-up signs nobody in: sign in.
        page = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        assert browser.post("/login", data={**form, "csrf": csrf.group(1)}).status_code == 303
        page = browser.get("/account/access-keys")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        created = browser.post("/account/access-keys", data={"csrf": csrf.group(1), "name": "CI"})
        key_id = re.search(r'id="secret-1" type="text" readonly value="([^"]+)"', created.text)
        key_secret = re.search(r'id="secret-2" type="text" readonly value="([^"]+)"', created.text)
        assert key_id is not None
        assert key_secret is not None
        client = {"client_id": key_id.group(1), "client_secret": key_secret.group(1)}
        # Node A knows (and caches) the key...
        assert a.token(client, grant_type="client_credentials").status_code == 200
        # ...it is deleted through node B...
        deleted = browser.post(f"/account/access-keys/{client['client_id']}/delete", data={"csrf": csrf.group(1)})
        assert deleted.status_code == 303
    # ...and node A refuses it within the stated bound (one second).
    deadline = time.monotonic() + 1.0
    status = a.token(client, grant_type="client_credentials").status_code
    while status != 401 and time.monotonic() < deadline:
        time.sleep(0.05)
        status = a.token(client, grant_type="client_credentials").status_code
    assert status == 401


def test_a_refresh_token_rotated_on_one_node_and_replayed_on_the_other_revokes_the_family(
    tmp_path: Path, cluster: tuple[Node, Node, dict[str, str]]
) -> None:
    a, b, env = cluster
    from keyturn.core.codes import issue_code
    from keyturn.runtime import open_runtime
    from keyturn.settings import load_settings

    from .cli_helpers import clean_environment

    cli(tmp_path, env, "users", "create", "--email", "ann@example.com", "--password", "a long passphrase")
    web = cli(
        tmp_path,
        env,
        "clients",
        "create",
        "--name",
        "Web",
        "--redirect-uri",
        "https://app.example.com/cb",
        "--owner",
        "ann@example.com",
    )
    runtime = open_runtime(load_settings(environ=clean_environment(env)))
    try:
        client = runtime.store.get_client(web["client_id"])
        assert client is not None
        code = issue_code(runtime.ctx, client, account_id=client.owner_id, scopes=(), redirect_uri=None)
    finally:
        runtime.close()
    first = a.token(web, grant_type="authorization_code", code=code).json()
    second = a.token(web, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    replay = b.token(web, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    # The family is gone on both nodes: the newest refresh token too.
    newest = a.token(web, grant_type="refresh_token", refresh_token=second.json()["refresh_token"])
    assert (newest.status_code, newest.json()["error"]) == (400, "invalid_grant")
    assert (
        httpx.get(f"{b.base}/me", headers={"authorization": f"Bearer {second.json()['access_token']}"}).status_code
        == 401
    )


def test_without_redis_a_node_keeps_serving_with_per_node_limits(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    env = {"KEYTURN_SECRET": "s" * 40, "KEYTURN_REDIS_URL": dead, "KEYTURN_RATE_LIMIT_TOKEN": "3"}
    machine = cli(tmp_path, env, "clients", "create", "--name", "M2M", "--grant-type", "client_credentials")
    port = free_port()
    server = start_server(cwd=tmp_path, port=port, env=env)
    try:
        wait_until_ready(server, port)
        node = Node(port)
        statuses = [node.token(machine, grant_type="client_credentials").status_code for _ in range(4)]
        metrics = httpx.get(f"{node.base}/metrics").text
    finally:
        _, _, err = stop_server(server)
    assert statuses == [200, 200, 200, 429]
    assert 'keyturn_rate_limited_total{limit="/oauth/token"} 1.0' in metrics
    assert "keyturn_redis_up 0.0" in metrics
    # Logged once, however many requests ran without Redis.
    warnings = [line for line in err.splitlines() if "rate limits count per node" in line]
    assert len(warnings) == 1
    assert "Traceback" not in err


# ---- the Redis limiter on its own ----


@pytest.fixture
def redis_limiter() -> Iterator[tuple[RedisLimiter, str]]:
    """A limiter on the real Redis, and a key prefix of this test's own (parallel runs
    share the server)."""
    limiter = RedisLimiter(REDIS, fallback=LocalLimiter(FrozenClock()))
    prefix = f"test-{secrets.token_hex(8)}:"
    yield limiter, prefix
    names = list(limiter._redis.scan_iter(match=f"kt:rl:{prefix}*"))
    if names:
        limiter._redis.delete(*names)


def test_redis_take_is_atomic_under_parallel_attempts(redis_limiter: tuple[RedisLimiter, str]) -> None:
    limiter, prefix = redis_limiter
    slots = [Slot(prefix + "account", 5, 900), Slot(prefix + "address", 30, 900)]
    start = threading.Barrier(30)

    def attempt() -> int | None:
        start.wait()
        return limiter.take(slots)

    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(lambda _: attempt(), range(30)))
    assert results.count(None) == 5
    assert all(wait is None or 899 <= wait <= 900 for wait in results)
    # Refused attempts counted nothing, on either key.
    assert limiter.counts([prefix + "account", prefix + "address"]) == [5, 5]
    assert limiter.available


def test_redis_take_is_all_or_nothing_and_give_back_returns_it(redis_limiter: tuple[RedisLimiter, str]) -> None:
    limiter, prefix = redis_limiter
    full, free, check = prefix + "full", prefix + "free", prefix + "failures"
    assert limiter.take([Slot(full, 2, 60, cost=2)]) is None
    assert limiter.take([Slot(free, 9, 900), Slot(full, 2, 60)]) in (59, 60)
    assert limiter.counts([full, free]) == [2, 0]
    # A slot of cost 0 checks without counting.
    assert limiter.take([Slot(free, 9, 900), Slot(check, 1, 60, cost=0)]) is None
    assert limiter.counts([free, check]) == [1, 0]
    assert limiter.hit(check, 1, 60) is None
    assert limiter.take([Slot(free, 9, 900), Slot(check, 1, 60, cost=0)]) in (59, 60)
    # give_back returns the count and keeps the window (never below zero).
    limiter.give_back([Slot(free, 9, 900), Slot(full, 2, 60, cost=2), Slot(full, 2, 60, cost=2)])
    assert limiter.counts([free, full]) == [0, 0]
    assert 0 < limiter._redis.ttl(f"kt:rl:{full}") <= 60
    assert 0 < limiter._redis.ttl(f"kt:rl:{free}") <= 900


def test_redis_take_falls_back_to_the_local_limiter_while_redis_is_away() -> None:
    fallback = LocalLimiter(FrozenClock())
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", fallback=fallback)
    assert limiter.take([Slot("k", 1, 60)]) is None
    assert limiter.available is False
    assert limiter.take([Slot("k", 1, 60)]) == 60
    limiter.give_back([Slot("k", 1, 60)])
    assert fallback.counts(["k"]) == [0]
    assert limiter.counts(["k"]) == [0]


class Proxy:
    """A TCP proxy in front of PostgreSQL that a test can cut and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                downstream.close()
                continue
            upstream = socket.create_connection(self.target)
            self.connections += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()

    def cut(self) -> None:
        self.open.clear()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    def restore(self) -> None:
        self.open.set()


def test_losing_postgres_gives_503_and_service_resumes_by_itself(tmp_path: Path, fresh_postgres_url: str) -> None:
    proxy = Proxy(("127.0.0.1", 5432))
    proxied = fresh_postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    env = {"KEYTURN_SECRET": "p" * 40, "KEYTURN_DATABASE_URL": proxied}
    machine = cli(tmp_path, env, "clients", "create", "--name", "M2M", "--grant-type", "client_credentials")
    port = free_port()
    server = start_server(cwd=tmp_path, port=port, env=env)
    try:
        wait_until_ready(server, port)
        node = Node(port)
        assert node.token(machine, grant_type="client_credentials").status_code == 200
        proxy.cut()
        down = node.token(machine, grant_type="client_credentials")
        assert (down.status_code, down.json()["error"]) == (503, "temporarily_unavailable")
        assert down.headers["retry-after"] == "5"
        assert httpx.get(f"{node.base}/readyz").status_code == 503
        proxy.restore()
        deadline = time.monotonic() + 10
        while node.token(machine, grant_type="client_credentials").status_code != 200:
            assert time.monotonic() < deadline, "service did not resume within 10 s"
            time.sleep(0.2)
        assert httpx.get(f"{node.base}/readyz").status_code == 200
    finally:
        _, _, err = stop_server(server)
    assert "Traceback" not in err
