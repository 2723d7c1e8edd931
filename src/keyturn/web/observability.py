"""Request ids, and one structured log line per request (the metrics are in
keyturn.web.metrics).

No log line carries a query string, a header value or a request body: those are where
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

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


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
