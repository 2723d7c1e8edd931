"""The worker processes of ``keyturn serve --workers N``, and the directory where their
metrics meet (keyturn.web.metrics)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from uvicorn.supervisors import Multiprocess

from keyturn.web.metrics import MULTIPROC_DIR


def run_workers(config: uvicorn.Config, sock: socket.socket) -> None:
    """Runs the workers until a stop signal. Their metrics go to a private directory of
    this run (mkdtemp makes it 0700), so that no file of an earlier run counts and no
    other user reads them; it is removed when the workers have stopped."""
    metrics_dir = tempfile.mkdtemp(prefix="keyturn-metrics-")
    # Set before the workers start: prometheus_client chooses its value store at import.
    os.environ[MULTIPROC_DIR] = metrics_dir
    try:
        _Workers(config, sockets=[sock]).run()
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Workers(Multiprocess):
    """uvicorn's supervisor, which also tells prometheus_client which workers have died
    or been replaced, so that their "live" gauges stop counting (their counters still
    count: what they served was served)."""

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        self._mark_dead(before - self._pids())

    def restart_all(self) -> None:
        before = self._pids()
        super().restart_all()
        self._mark_dead(before - self._pids())

    def _pids(self) -> set[int]:
        return {process.pid for process in self.processes if process.pid is not None}

    @staticmethod
    def _mark_dead(pids: set[int]) -> None:
        for pid in pids:
            mark_process_dead(pid)  # type: ignore[no-untyped-call]
