"""The ``keyturn`` console script: the command needs the server's dependencies, which
``pip install keyturn`` (the SDK and the resource toolkit) leaves out.

Without them the command says in one line what to install, instead of a traceback from
the first import that fails. Only the standard library is imported here.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

#: The import names of the ``server`` extra's distributions (pyproject.toml), checked by
#: ``tests/test_packaging.py``; uvloop is left out, as it is not installed on Windows.
SERVER_MODULES = (
    "alembic",
    "argon2",
    "click",
    "httptools",
    "jinja2",
    "prometheus_client",
    "psycopg",
    "redis",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)

INSTALL_HINT = "pip install 'keyturn[server]'"


def missing_server_modules() -> list[str]:
    # find_spec locates a top-level module without importing it: the check costs no start-up.
    return [name for name in SERVER_MODULES if find_spec(name) is None]


def main() -> None:
    missing = missing_server_modules()
    if missing:
        print(
            f"keyturn: the keyturn command needs the server's dependencies ({', '.join(missing)} missing): "
            f"{INSTALL_HINT}",
            file=sys.stderr,
        )
        sys.exit(2)
    from keyturn.cli import main as cli

    cli()
