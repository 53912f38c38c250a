"""Shared CLI plumbing: one console, configs from a run file or a run directory, stage runs
through the assembler, exit codes, ``--json`` output, and errors that exit with a message
instead of a trace.

Exit codes (docs/reliability.md): 0 complete; 2 configuration or input error; 3 stopped by a
budget; 4 ran but planned work is incomplete (pending or failed items); 5 another process
holds the run directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from deploysim.assemble import Options
    from deploysim.config import RunConfig
    from deploysim.stages import StageReport
    from deploysim.store import RunStore

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_CONFIG, EXIT_BUDGET, EXIT_INCOMPLETE, EXIT_LOCKED = 0, 2, 3, 4, 5
JSON_HELP = "Print the result as JSON on standard output instead of tables."


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix (bad config, missing files, bad input) into exit 2, and a
    run directory held by another process into exit 5."""
    from deploysim.config import ConfigError
    from deploysim.runlock import RunLockedError
    from deploysim.store.migrations import SchemaError

    try:
        yield
    except RunLockedError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}")
        raise typer.Exit(EXIT_LOCKED) from None
    except (ConfigError, SchemaError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError,
            KeyError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        err_console.print(f"[bold red]error:[/] {escape(str(msg))}")
        raise typer.Exit(EXIT_CONFIG) from None


def load_target(target: Path) -> RunConfig:
    """A command's RUN argument: a run file (TOML), or a run directory — then the configuration
    saved in its database (the defaults when it has none), pointed at that directory."""
    from deploysim.config import RunConfig, load_config, parse_config
    from deploysim.store import DB_NAME, RunStore

    if target.is_file():
        if target.suffix != ".toml":
            raise ValueError(f"{target}: not a run file (.toml) or a run directory")
        return load_config(target)
    if target.is_dir():
        if not (target / DB_NAME).exists():
            raise FileNotFoundError(f"{target} is not a run directory (no {DB_NAME}); pass a run file "
                                    "(.toml) "
                                    "to start one")
        with RunStore.open(target, create=False) as store:
            saved = store.get_meta("config")
        cfg = parse_config(saved, path=target / "config(saved)") if isinstance(saved, dict) else RunConfig()
        cfg.run.dir = target
        return cfg
    raise FileNotFoundError(f"{target}: neither a run file (.toml) nor a run directory")


def open_run(target: Path) -> tuple[RunStore, RunConfig]:
    """The run store and configuration of RUN, for commands that read a run or add records that
    are not stage output (grader validations); stages go through :func:`run_stages`."""
    from deploysim.store import RunStore

    cfg = load_target(target)
    return RunStore.open(cfg.run.dir), cfg


def run_stages(cfg: RunConfig, stages: Sequence[str], options: Options, *, quiet: bool = False,
               base: RunConfig | None = None) -> list[StageReport]:
    """Run stages through the assembler, logging one line per stage (to stderr when ``quiet``,
    so ``--json`` output stays clean). ``base``: the run's own configuration before this
    command's option overrides (what the run records)."""
    from deploysim.assemble import run_stages as assemble_run

    out = err_console if quiet else console
    return assemble_run(cfg, stages, options=options, log=lambda line: out.print(line, markup=False),
                        record=base)


def exit_code(reports: Sequence[StageReport]) -> int:
    """3 if a budget stopped a stage, else 4 if planned work is incomplete, else 0."""
    if any(r.status == "stopped" for r in reports):
        return EXIT_BUDGET
    if any(r.status == "incomplete" for r in reports):
        return EXIT_INCOMPLETE
    return EXIT_OK


def finish(reports: Sequence[StageReport]) -> None:
    code = exit_code(reports)
    if code:
        raise typer.Exit(code)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (pydantic models, dataclasses and paths included)."""
    typer.echo(orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
                            | orjson.OPT_SERIALIZE_NUMPY).decode())


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def report_json(reports: Sequence[StageReport]) -> list[dict[str, Any]]:
    return [{"stage": r.stage, "status": r.status, "detail": r.detail, "data": r.data} for r in reports]


def log_line(message: str) -> None:
    """Print a stage log line as plain text (``[sample] …`` is not Rich markup)."""
    console.print(message, markup=False)
