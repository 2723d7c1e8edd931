"""Fixtures for the resource-server toolkit's unit tests."""

from __future__ import annotations

import asyncio

import pytest

from keyturn.resource import Principal, Verifier

from .fakes import FakeAuthServer, FakeClock, VerifyFunction


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth_server(fake_clock: FakeClock) -> FakeAuthServer:
    return FakeAuthServer(fake_clock)


def _sync(verifier: Verifier, credential: str) -> Principal:
    return verifier.verify(credential)


def _async(verifier: Verifier, credential: str) -> Principal:
    return asyncio.run(verifier.averify(credential))


@pytest.fixture(params=["sync", "async"])
def verify(request: pytest.FixtureRequest) -> VerifyFunction:
    """Verifier.verify (WSGI) and Verifier.averify (ASGI): every check holds for both."""
    return _sync if request.param == "sync" else _async
