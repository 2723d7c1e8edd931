"""Entry point for worker processes (``keyturn serve --workers N``).

The parent has validated the settings and migrated the database; each worker reads the
same settings from the environment and opens its own connections.
"""

from __future__ import annotations

from keyturn.runtime import open_runtime
from keyturn.settings import load_settings

from .app import KeyturnApp, create_app


def app_from_environment() -> KeyturnApp:
    return create_app(open_runtime(load_settings(), migrate=False), freeze_heap=True)
