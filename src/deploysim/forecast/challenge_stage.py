"""The challenge stage: fill the challenge pool for the challenging-prompts baseline.

From ``[forecast] challenge_set`` (a set file) and/or ``challenge_top_k`` (the top-k production
prefixes by the judgments of the incumbent's production responses, so the assembler grades
that arm first). The candidate then answers the pool as the ``challenge`` arm in the simulate
stage, like any other simulated arm.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploysim.forecast.challenge import add_challenge_set, challenge_from_config, load_challenge_set
from deploysim.forecast.config import ForecastConfig
from deploysim.stages import StageReport
from deploysim.store import RunStore

STAGE = "challenge"


@dataclass(frozen=True)
class ChallengeInputs:
    """Its config section, the arm whose production judgments rank top-k prefixes, and for a
    set file the reader format and set name (None: detect, the file name)."""

    config: ForecastConfig
    production_arm: str
    set_format: str = "auto"
    set_name: str | None = None


def run(inputs: ChallengeInputs, store: RunStore) -> StageReport:
    fc = inputs.config
    if fc.challenge_set is not None and (inputs.set_format != "auto" or inputs.set_name is not None):
        cset = load_challenge_set(fc.challenge_set, fmt=inputs.set_format, limit=fc.challenge_limit,
                                  seed=fc.challenge_seed, name=inputs.set_name,
                                  product_context=fc.challenge_product_context)
        added = {cset.name: add_challenge_set(store, cset)}
        if fc.challenge_top_k is not None:
            added.update(challenge_from_config(store, fc.model_copy(update={"challenge_set": None}),
                                               production_arm=inputs.production_arm))
    else:
        added = challenge_from_config(store, fc, production_arm=inputs.production_arm)
    total = store.count_prefixes(pool="challenge")
    detail = ", ".join(f"{name}: {n} new" for name, n in added.items())
    sets = {name: rep for name, rep in store.stage_reports(STAGE).items() if name in added}
    return StageReport(stage=STAGE, status="ran", detail=f"{total} prompts in the challenge pool ({detail})",
                       data={"added": added, "total": total, "sets": sets})
