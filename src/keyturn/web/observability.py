"""Metrics in the Prometheus text format, and one structured log line per request.

Labels have bounded values only (known route paths, status codes, grant types), and no
log line carries a query string, a header value or a request body: those are where
credentials travel.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import logging
import re
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

#: Latency buckets in seconds, for the request-duration histogram.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Counters and histograms of this process; ``render()`` is the /metrics body."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.help: dict[str, str] = {}
        self._durations: dict[str, list[int]] = {}
        self._duration_sums: dict[str, float] = defaultdict(float)
        self.gauges: dict[str, Callable[[], Iterable[tuple[Labels, float]]]] = {}

    def describe(self, name: str, text: str) -> None:
        self.help[name] = text

    def inc(self, name: str, labels: Labels = (), value: float = 1.0) -> None:
        self.counters[name][labels] += value

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.counters["keyturn_http_requests_total"][
            (("endpoint", endpoint), ("method", method), ("status", str(status)))
        ] += 1
        counts = self._durations.get(endpoint)
        if counts is None:
            counts = self._durations[endpoint] = [0] * (len(BUCKETS) + 1)
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[index] += 1
                break
        else:
            counts[-1] += 1
        self._duration_sums[endpoint] += seconds

    def render(self) -> bytes:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines.append(f"# HELP {name} {self.help.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            lines.extend(f"{name}{_labels(labels)} {value:g}" for labels, value in sorted(series.items()))
        name = "keyturn_http_request_duration_seconds"
        lines.append(f"# HELP {name} Time to answer a request, by endpoint.")
        lines.append(f"# TYPE {name} histogram")
        for endpoint, counts in sorted(self._durations.items()):
            cumulative = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f"{name}_bucket{_labels((('endpoint', endpoint), ('le', le)))} {cumulative}")
            lines.append(f"{name}_sum{_labels((('endpoint', endpoint),))} {self._duration_sums[endpoint]:.6f}")
            lines.append(f"{name}_count{_labels((('endpoint', endpoint),))} {cumulative}")
        for gauge, read in sorted(self.gauges.items()):
            lines.append(f"# HELP {gauge} {self.help.get(gauge, gauge)}")
            lines.append(f"# TYPE {gauge} gauge")
            lines.extend(f"{gauge}{_labels(labels)} {value:g}" for labels, value in read())
        return ("\n".join(lines) + "\n").encode("utf-8")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


#: New request ids: this process's random prefix and a counter (unique, and no system
#: call per request: an id needs to be unique, not secret).
_PROCESS_PREFIX = secrets.token_hex(4)
_SEQUENCE = itertools.count(1)


def request_id(header: bytes | None) -> str:
    """The caller's X-Request-ID when it is a plain token, else a new one."""
    if header:
        text = header.decode("latin-1")
        if _REQUEST_ID.fullmatch(text):
            return text
    return f"{_PROCESS_PREFIX}{next(_SEQUENCE) & 0xFFFFFFFF:08x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encode_log(entry)


def configure_logging(level: str = "info") -> None:
    """Structured logs on stderr for the server process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("keyturn")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


_ACCESS = logging.getLogger("keyturn.access")


def log_request(
    request_id_value: str, method: str, path: str, status: int, seconds: float, address: str | None
) -> None:
    """The access log line, in the same JSON shape as the other log lines. It runs on
    every request, so it skips the logging machinery's record, formatter and handler
    (bench/RESULTS.md), and the lines of one turn of the event loop go to stderr in one
    write."""
    if not _ACCESS.isEnabledFor(logging.INFO):
        return
    # The path only: query strings may carry API keys. The request id is a checked token.
    _pending.append(
        f'{{"ts":{time.time():.3f},"level":"info","logger":"keyturn.access","message":"request",'
        f'"request_id":"{request_id_value}","method":{_json(method)},"path":{_json(path)},'
        f'"status":{status},"duration_ms":{seconds * 1000:.3f},"client":{_json(address)}}}\n'
    )
    if len(_pending) == 1:
        try:
            asyncio.get_running_loop().call_soon(flush_access_log)
        except RuntimeError:  # no event loop: write it now
            flush_access_log()


def flush_access_log() -> None:
    if _pending:
        lines = "".join(_pending)
        _pending.clear()
        sys.stderr.write(lines)


_pending: list[str] = []
atexit.register(flush_access_log)
_json = json.JSONEncoder(ensure_ascii=True).encode
_encode_log = json.JSONEncoder(separators=(",", ":"), default=str).encode


def now() -> float:
    return time.perf_counter()
