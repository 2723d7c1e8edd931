from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from keyturn.core.clock import FrozenClock
from keyturn.runtime import Runtime, open_runtime
from keyturn.settings import Settings
from keyturn.web.app import create_app


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    opened = open_runtime(settings, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client
