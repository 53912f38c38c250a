"""What every stage returns.

A stage is a module with one entry point ``run(inputs, store) -> StageReport``: ``inputs`` is a
small typed object built for that stage alone by the assembler (:mod:`deploysim.assemble`), the
store is the run database it reads from and writes to. The report says what happened in a form
the CLI can print and ``--json`` can emit; the stage's detailed records are in the store.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

#: ``ran``: finished its work; ``skipped``: nothing to do (detail says why); ``incomplete``:
#: ran but planned work is still pending or failed; ``stopped``: a budget or limit stopped it
StageStatus = Literal["ran", "skipped", "incomplete", "stopped"]


class StageReport(BaseModel):
    stage: str
    status: StageStatus
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    def line(self) -> str:
        return f"[{self.stage}] {self.status}{': ' + self.detail if self.detail else ''}"
