"""Writers of ``proteus eval``: ``report.md``, the CSV tables and the terminal tables.

Everything here formats an :class:`~agents.evaluation.result.EvalResult`; nothing is computed
anew except means over seeds for display.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from agents.evaluation.result import EvalResult

#: Figure files written by :func:`agents.evaluation.plots.write_figures`, with their captions.
FIGURES: tuple[tuple[str, str], ...] = (
    ("compliance.png", "Accuracy per τ per router (mean over seeds, bars; hatched: mean below τ) against the τ floor (black ticks); "
                       "shaded τ are infeasible."),
    ("cost.png", "USD per 1K queries per τ."),
    ("cost_accuracy.png", "Cost–accuracy plane: every router's points over the τ grid, the fixed models and the zero-router hull."),
    ("dynamic.png", "Dynamic targets: τ over the stream and each router's windowed accuracy (first seed)."),
    ("reliability.png", "Reliability of the routing head's p̂: mean realized score per p̂ bin, all models and each model, validation "
                        "(where Platt scaling was fitted) and test, with the expected calibration error."),
)

#: Aggregate columns of the report: (column, header, format).
AGGREGATE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("floor_compliance", "floor met", "pct"),
    ("band_2pp", "±2pp", "pct"),
    ("band_5pp", "±5pp", "pct"),
    ("mean_accuracy", "mean acc", "acc"),
    ("mean_usd_per_1k", "mean $/1K", "usd"),
    ("mean_violation", "mean viol.", "acc"),
    ("pearson_tau_mu", "r(τ,μ)", "r"),
    ("cost_range", "cost range", "x"),
    ("max_savings_vs_best_fixed", "max savings vs best fixed", "pct"),
    ("savings_at_parity", "savings at parity", "pct"),
    ("gap_to_oracle", "gap to oracle", "acc"),
    ("aiq", "AIQ", "acc"),
    ("routing_efficiency", "RE", "r"),
    ("rpi", "RPI", "r"),
)


def _number(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    value = float(value)
    if kind == "pct":
        percent = round(100 * value)
        return f"{percent + 0:.0f}%"  # + 0 turns -0 into 0
    if kind == "usd":
        return f"${value:.3f}" if abs(value) < 10 else f"${value:.2f}"
    if kind == "x":
        return f"{value:.2f}×"
    if kind == "r":
        return f"{value:.2f}"
    return f"{value:.3f}"


def _with_sd(mean: Any, sd: Any, kind: str) -> str:
    text = _number(mean, kind)
    if sd is None or not isinstance(sd, (float, np.floating)) or not math.isfinite(float(sd)) or text == "–":
        return text
    spread = _number(sd, kind)
    return f"{text} ± {spread.lstrip('$')}"


def tau_label(tau: float) -> str:
    """A short τ label (``0.55``, ``0.625``)."""
    text = f"{float(tau):.3f}"
    return text[:-1] if text.endswith("0") else text


def per_tau_table(result: EvalResult) -> pd.DataFrame:
    """Router × τ means over seeds: ``accuracy``, ``usd_per_1k``, ``n_met``, ``n_seeds``, ``n_infeasible``."""
    grouped = result.results.groupby(["router", "tau"], sort=False)
    table = grouped.agg(accuracy=("accuracy", "mean"), usd_per_1k=("usd_per_1k", "mean"), n_met=("floor_met", "sum"),
                        n_seeds=("seed", "nunique"), n_infeasible=("feasible", lambda f: int((~f.astype(bool)).sum())))
    return table.reset_index()


def _infeasible_taus(result: EvalResult) -> dict[float, int]:
    frame = result.results.drop_duplicates(["tau", "seed"])
    return {float(t): int((~part["feasible"].astype(bool)).sum()) for t, part in frame.groupby("tau")}


def main_table_markdown(result: EvalResult) -> str:
    """Markdown table of every router against every τ: accuracy · $/1K · floor met (seeds met / seeds)."""
    table = per_tau_table(result)
    infeasible = _infeasible_taus(result)
    n_seeds = len(result.seeds)
    headers = ["router"]
    for tau in result.taus:
        mark = "" if infeasible.get(float(tau), 0) == 0 else " †"
        headers.append(f"τ={tau_label(float(tau))}{mark}")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for router in result.router_names:
        cells = [f"`{router}`"]
        part = table[table["router"] == router].set_index("tau")
        for tau in result.taus:
            row = part.loc[float(tau)]
            met = int(row["n_met"])
            flag = ("✓" if met == n_seeds else "✗") if n_seeds == 1 else f"{met}/{n_seeds}"
            cells.append(f"{row['accuracy']:.3f} · {_number(row['usd_per_1k'], 'usd')} · {flag}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def aggregates_markdown(result: EvalResult) -> str:
    """Markdown table of the per-router aggregates (mean ± sd over seeds; rates pooled over (τ, seed) pairs)."""
    headers = ["router", *[header for _, header, _ in AGGREGATE_COLUMNS]]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, row in result.aggregates.iterrows():
        cells = [f"`{row['router']}`"]
        for column, _, kind in AGGREGATE_COLUMNS:
            cells.append(_with_sd(row.get(column), row.get(f"{column}_sd"), kind))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dynamic_markdown(result: EvalResult) -> str:
    """Markdown table: share of windows meeting the τ in force, per router and scenario."""
    summary = result.dynamic_summary
    if summary.empty:
        return "_Not run._"
    scenarios = list(dict.fromkeys(summary["scenario"]))
    headers = ["router", *[f"{s}: windows met" for s in scenarios], *[f"{s}: mean acc" for s in scenarios]]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for router in dict.fromkeys(summary["router"]):
        part = summary[summary["router"] == router].set_index("scenario")
        cells = [f"`{router}`"]
        cells += [_with_sd(part.loc[s, "share_met"], part.loc[s, "share_met_sd"], "pct") for s in scenarios]
        cells += [_number(part.loc[s, "mean_accuracy"], "acc") for s in scenarios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sessions_markdown(result: EvalResult) -> str:
    """Markdown table: per-session floor compliance and mean cost per router (issue 12)."""
    summary = result.session_summary
    if summary is None or summary.empty:
        return "_Not run._"
    lines = ["| router | sessions meeting their floor | mean accuracy | mean $/1K | sessions |", "|---|---|---|---|---|"]
    for row in summary.itertuples():
        lines.append(f"| `{row.router}` | {_with_sd(row.compliance, row.compliance_sd, 'pct')} | {_number(row.mean_accuracy, 'acc')} | "
                     f"{_with_sd(row.mean_usd_per_1k, row.mean_usd_per_1k_sd, 'usd')} | {int(row.n_sessions)} |")
    return "\n".join(lines)


def _with_ci(value: Any, low: Any, high: Any, kind: str) -> str:
    text = _number(value, kind)
    if text == "–" or _number(low, kind) == "–" or _number(high, kind) == "–":
        return text
    return f"{text} [{_number(low, kind).lstrip('$')}, {_number(high, kind).lstrip('$')}]"


def summary_rows(result: EvalResult) -> list[list[str]]:
    """One row of cells per router of :attr:`EvalResult.summary` (the yardstick, with 95 % intervals over seeds)."""
    return [[str(row.router), _with_ci(row.normalized_cost, row.normalized_cost_ci_low, row.normalized_cost_ci_high, "r"),
             _with_ci(row.floor_compliance, row.floor_compliance_ci_low, row.floor_compliance_ci_high, "pct"),
             _number(row.usd_per_1k, "usd"), _number(row.accuracy, "acc"), _number(row.session_compliance, "pct")]
            for row in result.summary.itertuples()]


#: Headers of :func:`summary_rows`.
SUMMARY_HEADERS = ["router", "normalized cost", "floor met", "mean $/1K", "mean acc", "sessions met"]


def summary_markdown(result: EvalResult) -> str:
    """Markdown table of the yardstick: normalized cost and floor compliance per router, with intervals."""
    if result.summary is None or result.summary.empty:
        return "_Not computed._"
    lines = ["| " + " | ".join(SUMMARY_HEADERS) + " |", "|" + "---|" * len(SUMMARY_HEADERS)]
    lines += ["| `" + cells[0] + "` | " + " | ".join(cells[1:]) + " |" for cells in summary_rows(result)]
    return "\n".join(lines)


def report_markdown(result: EvalResult) -> str:
    """The whole ``report.md``."""
    bench = result.benchmark
    ranges = result.ranges
    infeasible = {t: n for t, n in _infeasible_taus(result).items() if n}
    confidences = ", ".join("none" if c is None else f"{c:g}" for c in result.confidences)
    lines = [
        "# PROTEUS evaluation report",
        "",
        "Realized scores and USD costs on the **test** split of every seed (never predicted accuracy). All routers share",
        "the benchmark, the split, the routing head's p̂ and ĉ, and the calibration confidence level.",
        "",
        "## Setup",
        "",
        f"- Command: `{result.command or 'evaluate() from Python'}`",
        f"- Benchmark: `{bench['name']}` ({bench['n_queries']:,} prompts, {bench['n_models']} models)"
        + (f", data `{bench['data_path']}`" if bench.get("data_path") else "")
        + (f", loader arguments `{bench['benchmark_kwargs']}`" if bench.get("benchmark_kwargs") else ""),
        f"- Seeds (split seeds; each trained router is evaluated on its own seed's split only): {result.seeds}",
        f"- Trained routers: {', '.join(f'`{r}`' for r in result.routers) if result.routers else 'none (baselines only)'}",
        f"- Calibration confidence level(s): {confidences}",
        f"- τ grid: {', '.join(tau_label(float(t)) for t in result.taus)}",
        f"- Wall time: {result.wall_time_s:.1f} s",
        "",
        "## Achievable range",
        "",
        "From the cheapest model's test accuracy (`low`) to the highest test accuracy any non-oracle baseline reaches (`high`).",
        "τ outside a seed's range is evaluated anyway and flagged infeasible (†); aggregates use feasible (τ, seed) pairs only.",
        "",
        "| seed | test queries | low | high (achievable max) | oracle | best fixed | best fixed $/1K |",
        "|---|---|---|---|---|---|---|",
        *[f"| {int(r.seed)} | {int(r.n_test)} | {r.low:.3f} | {r.high:.3f} | {r.oracle_accuracy:.3f} | {r.best_fixed_accuracy:.3f} | "
          f"{_number(r.best_fixed_usd_per_1k, 'usd')} |" for r in ranges.itertuples()],
        "",
    ]
    if infeasible:
        lines += [f"**Infeasible τ** (above the achievable maximum or below the cheapest model, in k of {len(result.seeds)} seeds): "
                  + ", ".join(f"{tau_label(t)} ({n})" for t, n in sorted(infeasible.items())), ""]
    lines += [
        "## Accuracy, cost and floor per τ",
        "",
        "Cell: test accuracy · USD per 1K queries · floor met"
        + (" (✓/✗)." if len(result.seeds) == 1 else " (seeds met / seeds); means over seeds."),
        "",
        main_table_markdown(result),
        "",
        "## Summary: the yardstick",
        "",
        "Normalized cost: the mean over feasible (τ, seed) pairs of the test cost placed between the least cost of meeting τ in",
        "hindsight (0) and the best fixed model (1), a missed floor counting as max(1, its cost), i.e. a failure; floor met: the",
        "share of those pairs whose floor was met. Routers meeting at least 95 % of floors come first, by normalized cost.",
        "Brackets: 95 % bootstrap intervals over seeds (none with one seed). See `proteus_env.metrics`.",
        "",
        summary_markdown(result),
        "",
        "## Aggregates",
        "",
        "Mean ± sd over seeds. `floor met`, `±2pp` and `±5pp` are shares of the feasible (τ, seed) pairs (sd: of the per-seed",
        "shares). Routing efficiency (RE) and RPI follow our reading of the paper (see `proteus_env.metrics`); AIQ uses, per seed,",
        "the cost range of all non-oracle routers.",
        "",
        aggregates_markdown(result),
        "",
        "## Dynamic targets",
        "",
    ]
    if result.schedules:
        some = next(iter(result.schedules.values()))
        window = int(result.dynamic["stop"].iloc[0] - result.dynamic["start"].iloc[0]) if not result.dynamic.empty else 0
        lines += [f"Streams of {some.size:,} test queries per seed; τ between {float(some.min()):.3f} and {float(some.max()):.3f} "
                  f"(step change, linear drift, cyclic). Each query is routed at the τ in force; a window of {window} queries "
                  "meets its target when its realized accuracy is at least its mean τ.", ""]
    lines += [dynamic_markdown(result), "", "## Per-session compliance", ""]
    if result.session_protocol:
        proto = result.session_protocol
        lines += [f"Test sessions of {proto['length']} queries per seed (τ {proto['tau_schedule']}"
                  + (", queries from a drifting task mixture" if proto.get("task_drift") else "")
                  + f"); realized outcomes reach the routers {proto['feedback_delay']} queries late, for {proto['feedback_rate']:.0%} "
                  "of the queries. A session meets its floor when its realized accuracy is at least its (mean) τ. CARROT and "
                  "`carrot_pi` (CARROT steered by a PI controller on the revealed running accuracy) are certified for a session of "
                  "that length; PROTEUS routers serve sessions with their running state; other baselines ignore the feedback.", ""]
    lines += [sessions_markdown(result), "", "## Figures", ""]
    lines += [f"- `{name}`: {caption}" for name, caption in FIGURES]
    lines += ["", "## Files", "", "- `results.csv`: one row per router × τ × seed with every per-τ metric.",
              "- `aggregates.csv`: one row per router (mean and `_sd` columns).",
              "- `summary.csv`: one row per router: normalized cost and floor compliance with their intervals.",
              "- `dynamic.csv`: one row per router × scenario × seed × window.",
              "- `sessions.csv`: one row per router × seed × τ × test session (per-session compliance).", ""]
    return "\n".join(lines)


def write_report(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``results.csv``, ``aggregates.csv``, ``dynamic.csv`` and ``summary.csv`` into ``out_dir``.

    Returns:
        ``{file name: path}`` of what was written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("report.md", "results.csv", "aggregates.csv", "dynamic.csv", "summary.csv")}
    result.results.to_csv(paths["results.csv"], index=False)
    result.summary.to_csv(paths["summary.csv"], index=False)
    result.aggregates.to_csv(paths["aggregates.csv"], index=False)
    result.dynamic.to_csv(paths["dynamic.csv"], index=False)
    if result.sessions is not None and not result.sessions.empty:
        paths["sessions.csv"] = out / "sessions.csv"
        result.sessions.to_csv(paths["sessions.csv"], index=False)
    paths["report.md"].write_text(report_markdown(result), encoding="utf-8")
    return paths


def _text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    body = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    return "\n".join([line, "-" * len(line), *body])


def print_tables(result: EvalResult, file: TextIO | None = None) -> None:
    """Print the main table (accuracy per τ, floor met) and the key aggregates to the terminal."""
    file = file or sys.stdout
    table = per_tau_table(result)
    infeasible = _infeasible_taus(result)
    n_seeds = len(result.seeds)
    headers = ["router"] + [tau_label(float(t)) + ("†" if infeasible.get(float(t), 0) else "") for t in result.taus]
    rows = []
    for router in result.router_names:
        part = table[table["router"] == router].set_index("tau")
        cells = [router]
        for tau in result.taus:
            row = part.loc[float(tau)]
            met = int(row["n_met"])
            mark = ("+" if met == n_seeds else "-") if n_seeds == 1 else f"{met}/{n_seeds}"
            cells.append(f"{row['accuracy']:.3f} {mark}")
        rows.append(cells)
    print(f"test accuracy per τ (mean over seeds {result.seeds}; floor met: {'+/-' if n_seeds == 1 else 'seeds met/seeds'}; "
          "† infeasible in some seed)", file=file)
    print(_text_table(headers, rows), file=file)
    print(file=file)
    keys = [("floor_compliance", "floor met", "pct"), ("band_2pp", "±2pp", "pct"), ("band_5pp", "±5pp", "pct"),
            ("mean_accuracy", "mean acc", "acc"), ("mean_usd_per_1k", "mean $/1K", "usd"), ("pearson_tau_mu", "r(τ,μ)", "r"),
            ("max_savings_vs_best_fixed", "max savings", "pct"), ("aiq", "AIQ", "acc"), ("rpi", "RPI", "r")]
    rows = [[str(row["router"]), *[_with_sd(row.get(k), row.get(f"{k}_sd"), kind) for k, _, kind in keys]]
            for _, row in result.aggregates.iterrows()]
    print("aggregates (mean ± sd over seeds; rates pooled over feasible (τ, seed) pairs)", file=file)
    print(_text_table(["router", *[h for _, h, _ in keys]], rows), file=file)
    if result.summary is not None and not result.summary.empty:
        print(file=file)
        print("summary: normalized cost (oracle 0, best fixed 1, a missed floor counts as ≥ 1) and floor compliance, "
              "[95 % interval over seeds]", file=file)
        print(_text_table(SUMMARY_HEADERS, summary_rows(result)), file=file)
    if not result.dynamic_summary.empty:
        print(file=file)
        summary = result.dynamic_summary
        scenarios = list(dict.fromkeys(summary["scenario"]))
        rows = []
        for router in dict.fromkeys(summary["router"]):
            part = summary[summary["router"] == router].set_index("scenario")
            rows.append([str(router), *[_with_sd(part.loc[s, "share_met"], part.loc[s, "share_met_sd"], "pct") for s in scenarios]])
        print("dynamic targets: share of windows meeting the τ in force", file=file)
        print(_text_table(["router", *scenarios], rows), file=file)
    if result.session_summary is not None and not result.session_summary.empty:
        print(file=file)
        proto = result.session_protocol
        rows = [[str(row.router), _with_sd(row.compliance, row.compliance_sd, "pct"), _number(row.mean_accuracy, "acc"),
                 _with_sd(row.mean_usd_per_1k, row.mean_usd_per_1k_sd, "usd"), str(int(row.n_sessions))]
                for row in result.session_summary.itertuples()]
        print(f"per-session compliance: sessions of {proto.get('length')} test queries, τ {proto.get('tau_schedule')}, feedback "
              f"delay {proto.get('feedback_delay')}, rate {proto.get('feedback_rate')}"
              + (", task drift" if proto.get("task_drift") else ""), file=file)
        print(_text_table(["router", "floor met", "mean acc", "mean $/1K", "sessions"], rows), file=file)
