"""Shared CLI plumbing: one console, and errors that exit with a message instead of a trace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from deploysim.config import RunConfig
    from deploysim.store import RunStore

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
        err_console.print(f"[bold red]error:[/] {escape(str(msg))}")
        raise typer.Exit(2) from None


def open_run(target: Path) -> tuple[RunStore, RunConfig | None]:
    """A command's RUN argument: a run file (TOML) or a run directory.

    With a run file the store is the configured ``run.dir`` (created if needed); with a
    directory, the configuration saved in the run's metadata is used when there is one.
    """
    from deploysim.config import load_config, parse_config
    from deploysim.store import DB_NAME, RunStore

    if target.is_file() and target.suffix == ".toml":
        cfg = load_config(target)
        store = RunStore.open(cfg.run.dir)
        return store, cfg
    if target.is_dir():
        if not (target / DB_NAME).exists():
            raise FileNotFoundError(f"{target} is not a run directory (no {DB_NAME}); "
                                    "pass a run file (.toml) to start one")
        store = RunStore.open(target, create=False)
        saved = store.get_meta("config")
        cfg = parse_config(saved, path=target / "config(saved)") if isinstance(saved, dict) else None
        return store, cfg
    raise FileNotFoundError(f"{target}: neither a run file (.toml) nor a run directory")


def log_line(message: str) -> None:
    """Print a stage log line as plain text (``[sample] …`` is not Rich markup)."""
    console.print(message, markup=False)
