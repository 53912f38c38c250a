"""Shared CLI plumbing: one console, and errors that exit with a message instead of a trace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix (bad config, missing files, bad input) into exit 2."""
    from deploysim.config import ConfigError

    try:
        yield
    except (ConfigError, FileNotFoundError, ValueError, KeyError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        err_console.print(f"[bold red]error:[/] {msg}")
        raise typer.Exit(2) from None
