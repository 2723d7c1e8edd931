"""The /metrics body, with prometheus_client.

One process (``keyturn serve``, one worker): the metrics live in this process's memory.
Several workers (``keyturn serve --workers N``): ``keyturn serve`` gives the workers a
private PROMETHEUS_MULTIPROC_DIR, each worker writes its counts to memory-mapped files
there, and whichever worker answers a scrape sums the files of all of them, so a counter
adds up across workers. The standard process_* and python_* series describe the process
that answers the scrape (prometheus_client's process collector reads one /proc entry).

Labels have bounded values only: known route paths, status codes, grant types.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Literal

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

#: Latency buckets in seconds, for the request-duration histogram.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: The environment variable that puts prometheus_client in multiprocess mode.
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

Labels = tuple[tuple[str, str], ...]
GaugeReader = Callable[[], Iterable[tuple[Labels, float]]]

_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    # prometheus_client adds the _total suffix to a counter's name itself.
    "keyturn_http_requests_total": (
        "Requests answered, by endpoint, method and status.",
        ("endpoint", "method", "status"),
    ),
    "keyturn_tokens_issued_total": ("Tokens issued at the token endpoint, by grant.", ("grant",)),
    "keyturn_client_auth_failures_total": ("Failed client authentications, by endpoint.", ("endpoint",)),
    "keyturn_login_failures_total": ("Failed sign-ins.", ()),
    "keyturn_rate_limited_total": ("Requests refused by a rate limit, by limit.", ("limit",)),
}
#: How the workers' values of a gauge combine in multiprocess mode ("live": of the
#: workers that are running).
Combine = Literal["livemin", "livesum"]
#: name -> (help, label names, how the workers' values combine)
_GAUGES: dict[str, tuple[str, tuple[str, ...], Combine]] = {
    # 0 as soon as one live worker has lost Redis: its limits then count per process.
    "keyturn_redis_up": ("1 while Redis answers; 0 while limits count per process.", (), "livemin"),
    "keyturn_cache_lookups": (
        "Cache look-ups of the live workers, by cache and result.",
        ("cache", "result"),
        "livesum",
    ),
}

# A _created series beside every counter doubles the series for a start time that
# process_start_time_seconds already tells.
disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR))


class Metrics:
    """Counters, the request histogram and the gauges of Keyturn; ``render()`` is the
    /metrics body."""

    def __init__(self) -> None:
        self._multiprocess = multiprocess()
        # Each app has its own registry (tests run several apps in one process). In
        # multiprocess mode the metrics register nowhere: the scrape reads the files.
        own = None if self._multiprocess else CollectorRegistry(auto_describe=True)
        self._counters: dict[str, Counter] = {
            name: Counter(name, text, labels, registry=own) for name, (text, labels) in _COUNTERS.items()
        }
        self._own = own
        self._gauges: dict[str, Gauge] = {}
        self._duration = Histogram(
            "keyturn_http_request_duration_seconds",
            "Time to answer a request, by endpoint.",
            ("endpoint",),
            buckets=BUCKETS,
            registry=own,
        )
        self._readers: dict[str, GaugeReader] = {}
        # The children of labelled metrics, by label values: labels() costs a lock and a
        # dict look-up per call, and the request counter runs on every request.
        self._children: dict[tuple[str, Labels], Counter] = {}
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._durations: dict[str, Histogram] = {}
        if self._multiprocess:
            self._registry = CollectorRegistry(auto_describe=True)
            MultiProcessCollector(self._registry)  # type: ignore[no-untyped-call]
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self._registry.register(collector)
        else:
            assert own is not None
            self._registry = own
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                own.register(collector)

    def add_gauge(self, name: str, read: GaugeReader) -> None:
        """A gauge read from ``read`` before each scrape (one of ``_GAUGES``)."""
        text, labels, mode = _GAUGES[name]
        self._gauges[name] = Gauge(name, text, labels, registry=self._own, multiprocess_mode=mode)
        self._readers[name] = read

    def inc(self, name: str, labels: Labels = (), value: float = 1.0) -> None:
        key = (name, labels)
        child = self._children.get(key)
        if child is None:
            counter = self._counters[name]
            child = self._children[key] = counter.labels(*(v for _, v in labels)) if labels else counter
        child.inc(value)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        count = self._requests.get(key)
        if count is None:
            count = self._requests[key] = self._counters["keyturn_http_requests_total"].labels(
                endpoint, method, str(status)
            )
        count.inc()
        duration = self._durations.get(endpoint)
        if duration is None:
            duration = self._durations[endpoint] = self._duration.labels(endpoint)
        duration.observe(seconds)

    def refresh_gauges(self) -> None:
        """Writes this process's gauge readings: before a scrape, and now and then in each
        worker so that the answering worker sees the others' (multiprocess mode)."""
        for name, read in self._readers.items():
            gauge = self._gauges[name]
            for labels, value in read():
                (gauge.labels(*(v for _, v in labels)) if labels else gauge).set(value)

    def render(self) -> bytes:
        self.refresh_gauges()
        return generate_latest(self._registry)
