"""The ``deploysim`` command. Each stage's commands live in their own module here, which
exposes ``register(app)``; this file only assembles them."""

from __future__ import annotations

import importlib

import typer

from deploysim import __version__

#: command modules, in the order their commands appear in --help
COMMAND_MODULES: tuple[str, ...] = (
    "deploysim.cli.run_cmd",
    "deploysim.cli.ingest_cmd",
    "deploysim.cli.deidentify_cmd",
    "deploysim.cli.demo_corpus_cmd",
    "deploysim.cli.simulate_cmd",
    "deploysim.cli.grade_cmd",
    "deploysim.cli.stats_cmd",
    "deploysim.cli.forecast_cmd",
    "deploysim.cli.validate_cmd",
    "deploysim.cli.challenge_cmd",
    "deploysim.cli.graders_cmd",
)

app = typer.Typer(
    name="deploysim",
    help="Forecast a candidate LLM's safety behaviour before release by simulating its deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deploysim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """deploysim: replay real traffic through a candidate model, grade it, forecast it."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    app()
