"""``deploysim run``, ``deploysim export`` and ``deploysim demo`` (assembled later)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
