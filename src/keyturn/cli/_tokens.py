"""``keyturn tokens``: issued tokens."""

from __future__ import annotations

import sys

import click

from keyturn.settings import Settings

from ._common import emit, fail, runtime_for, with_config


@click.group()
def tokens() -> None:
    """Issued tokens."""


@tokens.command("purge")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 100_000), help="Rows per transaction.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def tokens_purge(settings: Settings, batch: int, as_json: bool) -> None:
    """Delete expired codes, tokens and sessions, ended API keys and old audit events."""
    from keyturn.core.housekeeping import purge
    from keyturn.core.ports import StoreUnavailable

    runtime = runtime_for(settings)
    show_progress = not as_json and sys.stderr.isatty()
    try:
        with click.progressbar(length=0, label="purging", file=sys.stderr, show_pos=True) as bar:

            def progress(kind: str, count: int) -> None:
                if show_progress:
                    bar.label = f"purging {kind}"
                    bar.length = (bar.length or 0) + count
                    bar.update(count)

            deleted = purge(runtime.store, runtime.clock, settings, batch=batch, progress=progress)
    except StoreUnavailable as exc:
        fail(str(exc))
    finally:
        runtime.close()
    summary = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in deleted.items())
    emit(as_json, {"deleted": deleted}, [f"deleted {summary}"])
