"""Starting, watching and stopping the processes of a benchmark run, and running wrk.

Every process started here is remembered and stopped (SIGTERM, then SIGKILL after 10 s)
when its workload ends or, at the latest, when the run ends. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

BENCH = Path(__file__).resolve().parent
LUA_DIR = BENCH / "lua"


class BenchError(Exception):
    """The run cannot go on as asked; the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (the peak resident set size) of a running process, in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user + system) a running process has used, in seconds. Per request,
    it is steadier than throughput on a machine that other work shares."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            # The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """The processes of one run (servers and the load generator's helpers)."""

    def __init__(self, log_dir: Path, server_cpu: int | None) -> None:
        self.log_dir = log_dir
        self.server_cpu = server_cpu
        self._running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        self._count = 0

    def pinned(self, argv: Sequence[str]) -> list[str]:
        """``argv`` on the server core (taskset execs it: the pid is the server's)."""
        if self.server_cpu is None:
            return list(argv)
        return ["taskset", "-c", str(self.server_cpu), *argv]

    def start_server(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str],
        cwd: Path,
        ready_path: str = "/",
        timeout: float = 60,
    ) -> Server:
        self._count += 1
        log_path = self.log_dir / f"{self._count:02d}-{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            self.pinned(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the harness only
        )
        self._running.append((process, log))
        server = Server(name, process, port, log_path)
        self._wait_ready(server, ready_path, timeout)
        return server

    def _wait_ready(self, server: Server, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                self.stop(server.process)
                raise BenchError(
                    f"{server.name} exited with {server.process.returncode} on start:\n{server.log_tail()}"
                )
            try:
                httpx.get(server.base + path, timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop(server.process)
        raise BenchError(f"{server.name} did not answer within {timeout:.0f} s:\n{server.log_tail()}")

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for entry in list(self._running):
            if entry[0] is process:
                entry[1].close()
                self._running.remove(entry)

    def stop_all(self) -> None:
        for process, _ in reversed(list(self._running)):
            self.stop(process)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    #: Responses wrk counts as errors (status > 399) or the script did not expect.
    unexpected: int
    first_unexpected: str
    flows: int
    #: Set when the script ran out of input (refresh tokens) before the time was up.
    ran_out_after: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WrkResult:
        errors = data["errors"]
        ran_out = data["ran_out_after_s"]
        return cls(
            requests=data["requests"],
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
            unexpected=max(data["unexpected"], errors["status"]),
            first_unexpected=data["first_unexpected"],
            flows=data["flows"],
            ran_out_after=ran_out if ran_out > 0 else None,
        )


def run_wrk(
    url: str,
    script: str,
    *,
    duration: float,
    connections: int,
    load_cpu: int | None,
    env: Mapping[str, str],
) -> WrkResult:
    """One wrk run (one thread, ``connections`` keep-alive connections) on the load core."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    if load_cpu is not None:
        argv = ["taskset", "-c", str(load_cpu), *argv]
    wrk_env = {**os.environ, **env, "LUA_PATH": f"{LUA_DIR}/?.lua;;"}
    try:
        completed = subprocess.run(
            argv, env=wrk_env, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {duration + 60:.0f} s") from None
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return WrkResult.from_json(json.loads(line[len("BENCH_RESULT ") :]))
    raise BenchError(f"wrk failed (exit {completed.returncode}): {completed.stderr.strip() or completed.stdout}")


def run_wrk_until_done(
    url: str,
    script: str,
    marker: Path,
    *,
    timeout: float,
    connections: int,
    load_cpu: int | None,
    env: Mapping[str, str],
) -> None:
    """A wrk run that ends when its script creates ``marker`` (or after ``timeout``
    seconds): wrk stops at SIGINT."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{round(timeout)}s", "--timeout", "10s", "-s", str(LUA_DIR / script)]
    if load_cpu is not None:
        argv = ["taskset", "-c", str(load_cpu), *argv]
    wrk_env = {**os.environ, **env, "LUA_PATH": f"{LUA_DIR}/?.lua;;"}
    process = subprocess.Popen(
        [*argv, url], env=wrk_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    )
    try:
        deadline = time.monotonic() + timeout + 5
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    if not marker.exists():
        raise BenchError(f"wrk ({script}) did not finish its work within {timeout:.0f} s: {output.strip()[-500:]}")
