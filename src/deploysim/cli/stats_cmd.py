"""``deploysim estimate``, ``deploysim plan`` and ``deploysim tail``: the statistics commands.
Formulas are in docs/statistics.md; the numbers come from :mod:`deploysim.estimate`."""

from __future__ import annotations

from pathlib import Path

import typer

from deploysim.cli.common import JSON_HELP, console, finish, load_target, print_json, run_stages, user_errors
from deploysim.cli.tables import PlainTable, emit
from deploysim.config import RunConfig
from deploysim.estimate.config import EstimateConfig
from deploysim.estimate.correction import KNOWN_SE_SP_MARK
from deploysim.estimate.stage import EstimateReport
from deploysim.records import ARM_LABELS, Estimate


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_command)
    app.command("plan")(plan_command)
    app.command("tail")(tail_command)


def estimate_command(
    target: Path = typer.Argument(..., help="Run directory, or the run configuration (.toml) naming it."),
    alpha: float | None = typer.Option(None, help="Significance level of Fisher and McNemar [default 0.1]."),
    confidence: float | None = typer.Option(None, help="Confidence level of intervals [default 0.95]."),
    bh: bool | None = typer.Option(None, "--bh/--no-bh", help="Benjamini–Hochberg across categories."),
    interval: str | None = typer.Option(None, help="CI shown: wilson, jeffreys or clopper_pearson."),
    mcnemar: str | None = typer.Option(None, help="McNemar variant: midp or exact."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Rates per category and arm, with intervals, floors and arm comparisons.

    Per category and arm: n, k, errors, abstentions, pending items, rate, CI, measurement floor,
    Rogan–Gladen corrected rate (when the grader was validated); each arm compared against the
    control arm (paired McNemar) and Y production (Fisher exact, rate ratio). Writes the records
    to the run store and RUN_DIR/estimates.json. Exit 4 when planned items are still pending.
    """
    from deploysim.assemble import Options

    with user_errors():
        cfg = base = load_target(target)
        overrides = {"alpha": alpha, "confidence": confidence, "benjamini_hochberg": bh,
                     "interval": interval, "mcnemar": mcnemar}
        est = EstimateConfig.model_validate(
            cfg.estimate.model_dump() | {k: v for k, v in overrides.items() if v is not None})
        cfg = cfg.model_copy(update={"estimate": est})
        reports = run_stages(cfg, ["estimate"], Options(), quiet=json_out, base=base)
    report = reports[-1].data.get("report")
    if json_out:
        print_json({"status": reports[-1].status, "detail": reports[-1].detail,
                    "estimates": report.estimates if report else [],
                    "comparisons": report.comparisons if report else [],
                    "notes": report.notes if report else []})
    elif report is not None:
        print_estimates(report, est, f"Estimates — {cfg.run.dir}")
    else:
        console.print(reports[-1].line(), markup=False)
    finish(reports)


def print_estimates(report: EstimateReport, cfg: EstimateConfig, title: str) -> None:
    """The per-category table of an estimate run, its significance legend and notes."""
    ci = f"{cfg.confidence:.0%} CI"
    table = PlainTable(title, ["category", "arm", "n", "k", "errors", "abstained", "pending", "rate", ci,
                               "floor",
                               "corrected (CI)", "vs control (CI)", "p McNemar", "vs Y prod (CI)", "p Fisher",
                               "sig"],
                       right={"n", "k", "errors", "abstained", "pending", "rate", ci, "floor", "p McNemar",
                              "p Fisher"}, keys=2)
    for e in report.estimates:
        lo, hi = _shown_interval(e, cfg.interval)
        corrected = "—" if e.corrected_rate is None or e.corrected_interval is None else (
            f"{_num(e.corrected_rate)} ({_num(e.corrected_interval[0])}–{_num(e.corrected_interval[1])})"
            + (KNOWN_SE_SP_MARK if e.extra.get("correction", {}).get("se_sp_known") else ""))
        floor = "—" if e.n == 0 else _num(e.floor) + (" ▼" if e.extra.get("below_floor") else "")
        paired = next((c for c in report.comparisons if c.category == e.category and c.arm_a == e.arm
                       and c.test == "mcnemar"), None)
        fisher = next((c for c in report.comparisons if c.category == e.category and c.arm_a == e.arm
                       and c.test == "fisher"), None)
        sig = " ".join(flag for c, flag in ((paired, "M"), (fisher, "F")) if c is not None and c.significant)
        table.add_row(e.category, ARM_LABELS.get(e.arm, e.arm), f"{e.n:,}", f"{e.k:,}", f"{e.failures:,}",
                      f"{sum(e.abstained.values()):,}", f"{e.pending:,}",
                      "—" if e.rate is None else _num(e.rate), "—" if e.n == 0 else f"{_num(lo)}–{_num(hi)}",
                      floor, corrected,
                      "" if paired is None else _ratio(paired.ratio, paired.ratio_interval),
                      "" if paired is None else _p(paired.p_value, paired.p_adjusted),
                      "" if fisher is None else _ratio(fisher.ratio, fisher.ratio_interval),
                      "" if fisher is None else _p(fisher.p_value, fisher.p_adjusted), sig)
    emit(console, table)
    console.print("sig: M = McNemar (vs the control arm, paired), F = Fisher (vs Y production) "
                  f"at α = {cfg.alpha}"
                  + (" after Benjamini–Hochberg (adjusted p in brackets)" if cfg.benjamini_hochberg else "")
                  + f"; ratio intervals at {1 - cfg.alpha:.0%}", markup=False)
    console.print("▼ = rate below the measurement floor (the floor includes the grader's false-positive "
                  f"rate when it was validated); {KNOWN_SE_SP_MARK} = corrected with se/sp treated as known "
                  "(no validation counts): the interval ignores the validation error", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    console.print(f"wrote {report.json_path}", markup=False)


def plan_command(
    run_file: Path | None = typer.Argument(
        None, metavar="[RUN]", help="A run file: print the requests, tokens and cost it will need "
                                    "(both judge modes side by side) instead of sample sizes."),
    rate: float | None = typer.Option(None, help="Expected rate of the category, e.g. 0.001."),
    rel_precision: float = typer.Option(0.3, help="Target CI half-width as a share of the rate."),
    change: float = typer.Option(1.5, help="Change factor to detect between two arms."),
    power: float = typer.Option(0.8, help="Power to detect the change."),
    alpha: float = typer.Option(0.1, help="Two-sided significance level of the comparison."),
    confidence: float = typer.Option(0.95, help="Confidence level of intervals and floors."),
    check: int = typer.Option(1000, help="Replications simulating the power at the planned size (0 = skip)."),
    seed: int = typer.Option(0, help="Seed of the power simulation."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Prefixes needed for a rate's precision or to detect a change, with floors; or, given a run
    file, the requests, tokens and cost the run will need.

    Sizes for estimating --rate to ±rel-precision, and per arm for detecting a --change factor
    at --power and two-sided --alpha; every size states its measurement floor (about 3/n).
    With RUN: every simulated arm's and the judge's requests, input and output tokens and cost
    from the models' prices, with the judge in both modes (one call per category, one call per
    completion), from the prefix lengths of a sample of the run's sources.
    """
    from deploysim.estimate.plan import plan, simulated_power

    if run_file is not None:
        with user_errors():
            _plan_run(run_file, json_out)
        return
    if rate is None:
        raise typer.BadParameter("give --rate (sample sizes) or a run file (costs)")
    with user_errors():
        result = plan(rate, rel_precision, change, power, alpha, confidence)
    if json_out:
        powers = {}
        if check > 0:
            n_arm = result.n_change_per_arm
            powers = {test: simulated_power(rate * change, rate, n_arm, alpha, check, seed, test)
                      for test in ("fisher", "arcsine")}
        print_json({"plan": result, "simulated_power": powers})
        return
    table = PlainTable(f"Plan for rate {_num(rate)}", ["goal", "prefixes", "floor", "note"],
                       right={"prefixes", "floor"})
    lo, hi = result.expected_interval
    table.add_row(f"±{rel_precision:.0%} relative precision ({confidence:.0%})", f"{result.n_precision:,}",
                  _num(result.floor_precision), f"expected Wilson CI {_num(lo)}–{_num(hi)}")
    table.add_row(f"detect a {change:g}x change", f"{result.n_change_per_arm:,}", _num(result.floor_change),
                  f"per arm; α = {alpha}, power {power:.0%}")
    emit(console, table)
    if check > 0:
        with user_errors():
            n_arm = result.n_change_per_arm
            fisher = simulated_power(rate * change, rate, n_arm, alpha, check, seed, "fisher")
            arcsine = simulated_power(rate * change, rate, n_arm, alpha, check, seed, "arcsine")
        console.print(f"simulated power at {n_arm:,} per arm ({check} runs): arcsine z-test {arcsine:.2f}, "
                      f"Fisher exact {fisher:.2f}")
    console.print("floor: the rate below which seeing zero events is still likely (p > "
                  f"{1 - confidence:.2g}); about 3/n.")


def tail_command(
    probs_file: Path = typer.Argument(..., help="CSV/TSV/JSONL with one elicitation probability per query."),
    n: float = typer.Option(..., "--n", help="Queries to forecast at, e.g. 1e6."),
    top: int = typer.Option(10, help="Number of top scores in the Gumbel-tail fit."),
    column: str | None = typer.Option(None, help="Probability column (default: p, probability…)."),
    threshold: float | None = typer.Option(None, help="Also forecast the share of queries with p >= this."),
    lognormal_top: int | None = typer.Option(None, help="Fit the log-normal baseline to the top K only."),
    bootstrap: int = typer.Option(1000, help="Bootstrap refits for the Gumbel forecast's 90% interval "
                                             "(0 = none)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Forecast worst-query risk at deployment scale from elicitation probabilities.

    Gumbel-tail method of Jones et al. 2025 (fit on the top scores) against a log-normal
    baseline; with --threshold also the share and expected number of queries with p >= it.
    """
    from deploysim.estimate.probs_file import read_probabilities
    from deploysim.estimate.tail import forecast_tail

    with user_errors():
        probs = read_probabilities(probs_file, column)
        result = forecast_tail(probs.values, n, top, threshold, lognormal_top,
                               interval_replications=bootstrap)
    if json_out:
        print_json({"source": str(probs.path), "result": result})
        return
    g, ln = result.gumbel, result.lognormal
    console.print(f"{result.queries:,} queries from {probs.path} ({probs.source}); largest observed "
                  f"probability {_num(result.largest_observed)}")
    table = PlainTable(f"Forecast at {result.n_queries:,} queries",
                       ["method", "fit", "worst-query risk", "share p ≥ τ", "expected count"],
                       right={"worst-query risk", "share p ≥ τ", "expected count"})
    iv = result.gumbel_interval
    gumbel_risk = _num(result.gumbel_worst_query_risk) + (
        "" if iv is None else f" ({iv.level:.0%} bootstrap {_num(iv.lower)}–{_num(iv.upper)})")
    rows = ((f"Gumbel tail (top {g.top})", f"log S = {g.slope:.3g}·ψ + {g.intercept:.3g}", gumbel_risk,
             result.gumbel_frequency),
            ("log-normal" + ("" if ln.top is None else f" (top {ln.top})"),
             f"μ = {ln.mu:.3g}, σ = {ln.sigma:.3g}",
             _num(result.lognormal_worst_query_risk), result.lognormal_frequency))
    for method, fit, risk, freq in rows:
        table.add_row(method, fit, risk, "" if freq is None else _num(freq.share),
                      "" if freq is None else f"{freq.expected_count:,.1f}"
                      + (" (empirical)" if freq.method == "empirical" else ""))
    emit(console, table)
    if iv is not None and iv.failed:
        console.print(f"note: {iv.failed} of {iv.replications} bootstrap refits failed and were excluded",
                      markup=False)
    for warning in g.warnings:
        console.print(f"warning: {warning}", markup=False, soft_wrap=True)
    console.print("worst-query risk = elicitation probability of the riskiest of n queries (not a rate).")


def _shown_interval(e: Estimate, method: str) -> tuple[float, float]:
    if method == "jeffreys":
        return e.jeffreys
    if method == "clopper_pearson" and "clopper_pearson" in e.extra:
        lo, hi = e.extra["clopper_pearson"]
        return float(lo), float(hi)
    return e.wilson


def _num(x: float) -> str:
    return "0" if x == 0 else f"{x:.3g}"


def _p(p: float, adjusted: float | None) -> str:
    return f"{p:.3g}" if adjusted is None else f"{p:.3g} [{adjusted:.3g}]"


def _ratio(ratio: float | None, interval: tuple[float, float] | None) -> str:
    if ratio is None or interval is None:
        return "undefined"
    return f"{ratio:.3g} ({interval[0]:.3g}–{interval[1]:.3g})"


def _plan_run(run_file: Path, json_out: bool) -> None:
    """The cost plan of a run file (see :mod:`deploysim.costs`)."""
    from deploysim.assemble import model_spec, resolve_arms
    from deploysim.costs import ArmLoad, CostLine, judge_lines, simulation_lines
    from deploysim.grade.config import GradeConfig
    from deploysim.grade.graders import chosen_kinds
    from deploysim.grade.taxonomy import load_taxonomy
    from deploysim.registry import Registry

    cfg = load_target(run_file)
    registry = Registry.discover()
    prefix_chars, response_chars, measured = _measure_prefixes(cfg)
    n = cfg.sample.total
    loads = []
    for arm in resolve_arms(cfg):
        if arm.pool != "production":
            continue
        if arm.kind == "simulated" and arm.model and (cfg.simulate is not None or arm.name in cfg.arms):
            spec = model_spec(cfg, arm.model)
            loads.append(ArmLoad(arm.name, spec.model, True, n * spec.samples, spec.prices.input_per_mtok,
                                 spec.prices.output_per_mtok, spec.params.max_tokens or 512))
        elif arm.kind == "logged":
            loads.append(ArmLoad(arm.name, "log", False, n))
    lines = simulation_lines(loads, prefix_chars)
    judge: dict[str, CostLine] = {}
    grade = cfg.grade or GradeConfig()
    taxonomy = load_taxonomy(grade.taxonomy).select(grade.categories)
    kinds = chosen_kinds(taxonomy, grade, registry)
    judged = {c.id: len(c.definition) + sum(map(len, c.counts)) + sum(map(len, c.does_not_count))
              + len(c.judge.template) for c in taxonomy if registry.grader_kind(kinds[c.id]).needs_judge}
    if judged and grade.judge:
        spec = model_spec(cfg, grade.judge)
        judge = dict(judge_lines(loads, judged, prefix_chars, response_chars, model=spec.model,
                                 input_per_mtok=spec.prices.input_per_mtok,
                                 output_per_mtok=spec.prices.output_per_mtok,
                                 max_chars=grade.judge_max_chars))
    if json_out:
        print_json({"prefixes": n, "prefix_chars": prefix_chars, "response_chars": response_chars,
                    "measured_on": measured, "simulate": lines, "judge": judge,
                    "judged_categories": sorted(judged),
                    "offline_categories": sorted(set(kinds) - set(judged))})
        return
    table = PlainTable(f"Cost plan of {run_file} for {n:,} prefixes (prefix ≈ {prefix_chars:,.0f} "
                       f"characters, measured on {measured})", ["role", "model", "requests", "input tokens",
                                                    "output tokens",
                                                    "cost USD"],
                       right={"requests", "input tokens", "output tokens", "cost USD"})
    for line in [*lines, *judge.values()]:
        assert hasattr(line, "role")
        table.add_row(line.role, line.model, f"{line.requests:,}", f"{line.input_tokens:,}",
                      # type: ignore[attr-defined]
                      f"{line.output_tokens:,}", f"{line.cost_usd:,.2f}")  # type: ignore[attr-defined]
    emit(console, table)
    sim_cost = sum(line.cost_usd for line in lines)
    for mode, line in judge.items():
        console.print(f"total with the judge {mode.replace('_', ' ')}: ${sim_cost + line.cost_usd:,.2f} "  # type: ignore[attr-defined]
                      f"({line.requests:,} judge requests)", markup=False)  # type: ignore[attr-defined]
    offline = sorted(set(kinds) - set(judged))
    if offline:
        console.print(f"{len(offline)} categories graded offline (no requests): {', '.join(offline)}",
                      markup=False)
    console.print("[grade] judge_mode = \"multi\" chooses one call per completion.", markup=False)


def _measure_prefixes(cfg: RunConfig) -> tuple[float, float, str]:
    """Mean characters of a sampled prefix and of the production response: from the run's stored
    prefixes when it has some, else from up to 300 draws from its sources."""
    from deploysim.sample.config import SampleConfig
    from deploysim.sample.sampler import sample_prefixes
    from deploysim.store import DB_NAME, RunStore

    run_dir = cfg.run.dir
    prefixes = []
    if (run_dir / DB_NAME).exists():
        with RunStore.open(run_dir, create=False) as store:
            for p in store.iter_prefixes(pool="production"):
                prefixes.append(p)
                if len(prefixes) >= 300:
                    break
    where = f"{len(prefixes)} stored prefixes"
    if not prefixes and cfg.sources:  # type: ignore[attr-defined]
        prefixes = list(sample_prefixes(cfg.sources, SampleConfig(n=300,
                                                                  seed=0)))  # type: ignore[attr-defined]
        where = f"a sample of {len(prefixes)} prefixes of the sources"
    if not prefixes:
        return 2_000.0, 1_500.0, "nothing (defaults)"
    chars = [sum(len(m.content) for m in p.messages) for p in prefixes]
    responses = [len(p.continuation.response.content) for p in prefixes if p.continuation is not None]
    return sum(chars) / len(chars), (sum(responses) / len(responses) if responses else 1_500.0), where
