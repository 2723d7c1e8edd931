"""The sample API (examples/sms_gateway) with no credential checked: the baseline of the
resource-* workloads. Issue #8 asks for a request through keyturn.resource to reach
"≥ 80 % of the same endpoint unprotected", so the baseline is the same endpoint.

It is the sample's own ``create_app()``: same routes, same handlers (``require_scopes``
included), same responses. Only KeyturnMiddleware is swapped, in its place in the
middleware stack, for :class:`FixedPrincipal`, which puts a fixed principal where
KeyturnMiddleware puts the one it verified. Bench only: this serves anyone.

    uvicorn bench.unprotected_gateway:create_app --factory --app-dir .
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from keyturn.resource import PRINCIPAL_KEY, KeyturnMiddleware, Principal

GATEWAY_APP = Path(__file__).resolve().parent.parent / "examples" / "sms_gateway" / "app.py"

#: Whom every request is taken to come from: an API key with every scope of the sample API.
PRINCIPAL = Principal(sub="bench", scopes=frozenset({"sms", "balance", "contacts"}), client_id=None, kind="api_key")


class FixedPrincipal:
    """In KeyturnMiddleware's place: the principal, set as KeyturnMiddleware sets it, and
    nothing checked."""

    def __init__(self, app: Any, principal: Principal = PRINCIPAL) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[PRINCIPAL_KEY] = self.principal
            scope.setdefault("state", {})["principal"] = self.principal
        await self.app(scope, receive, send)


def load_gateway() -> ModuleType:
    """examples/sms_gateway/app.py (a script directory, not a package)."""
    spec = importlib.util.spec_from_file_location("sms_gateway_app", GATEWAY_APP)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {GATEWAY_APP}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def create_app() -> Starlette:
    """The sample API as ``create_app()`` builds it (configured from the environment, as
    in the protected workloads), with KeyturnMiddleware replaced by FixedPrincipal."""
    app: Starlette = load_gateway().create_app()
    replaced = [Middleware(FixedPrincipal) if m.cls is KeyturnMiddleware else m for m in app.user_middleware]
    if all(m.cls is not FixedPrincipal for m in replaced):
        raise RuntimeError("the sample API no longer installs KeyturnMiddleware: nothing to replace")
    app.user_middleware = replaced
    return app
