"""The ``keyturn`` command.

Every command takes ``--config FILE``; ``--json`` prints exactly one JSON object on stdout
and nothing else (messages go to stderr). Errors are one line: exit code 2 for bad
settings or usage, 1 for everything else.

One module per command group; what they share (settings, the runtime, errors, output) is in
``_common``. The server stack is imported inside the commands, so that ``keyturn --help``
and a bad setting answer at once.
"""

from __future__ import annotations

import logging
import sys

import click

from ._api_keys import api_keys
from ._audit import audit
from ._clients import clients
from ._keys import keys
from ._serve import db, serve
from ._tokens import tokens
from ._users import users

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keyturn")
def main() -> None:
    """Keyturn: OAuth 2.0 authorization server, API keys and developer portal."""
    logging.basicConfig(level=logging.WARNING, format="keyturn: %(message)s", stream=sys.stderr)


main.add_command(serve)
main.add_command(db)
main.add_command(users)
main.add_command(clients)
main.add_command(api_keys)
main.add_command(keys)
main.add_command(audit)
main.add_command(tokens)
