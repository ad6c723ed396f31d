"""Figures of ``proteus eval`` (PNG), drawn from an :class:`~agents.evaluation.result.EvalResult`.

The figures are built with matplotlib's object-oriented :class:`~matplotlib.figure.Figure`,
which renders through the Agg canvas without pyplot: no display is needed and the global backend
of the caller (a notebook, say) is left alone. Every ``plot_*`` function returns the figure;
:func:`write_figures` saves all five. :func:`reliability_frame` computes the reliability
diagram's data from a routing head fit (``proteus eval`` stores it in ``EvalResult.calibration``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from agents.evaluation.result import CALIBRATION_COLUMNS, TAU_INDEPENDENT, EvalResult
from proteus_env.benchmark import Benchmark
from proteus_env.metrics import DEFAULT_CALIBRATION_BINS, nondecreasing_hull, reliability_curve
from proteus_env.routing_head import HeadFit

#: Resolution of the saved PNGs.
DPI = 120
_REFERENCE_STYLE = {"oracle": ":", "best_fixed": "--", "cheapest": "-.", "random": (0, (1, 3))}


def _colors(names: list[str]) -> dict[str, tuple[float, ...]]:
    cmap = colormaps["tab20"] if len(names) > 10 else colormaps["tab10"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _means(result: EvalResult) -> pd.DataFrame:
    """Router × τ: mean accuracy / USD over seeds, their sd, and the single-seed bootstrap interval."""
    grouped = result.results.groupby(["router", "tau"], sort=False)
    frame = grouped.agg(accuracy=("accuracy", "mean"), accuracy_sd=("accuracy", "std"), usd=("usd_per_1k", "mean"),
                        ci_low=("accuracy_ci_low", "mean"), ci_high=("accuracy_ci_high", "mean"))
    return frame.reset_index()


def _split_routers(result: EvalResult) -> tuple[list[str], list[str]]:
    """(τ-dependent routers, τ-independent references) in evaluation order."""
    families = result.families()
    dependent = [r for r in result.router_names if families[r] not in TAU_INDEPENDENT]
    references = [r for r in result.router_names if families[r] in TAU_INDEPENDENT]
    return dependent, references


def _infeasible(result: EvalResult) -> np.ndarray:
    flags = result.results.drop_duplicates(["tau", "seed"]).groupby("tau")["feasible"].all()
    return np.array([not bool(flags.loc[float(t)]) for t in result.taus])


def plot_compliance(result: EvalResult) -> Figure:
    """Accuracy per τ per router as grouped bars against the τ floor (PROTEUS Figure 2a style).

    Bars are means over seeds (error bars: sd over seeds, or the bootstrap interval with one seed);
    hatched bars' mean accuracy is below τ; black ticks mark τ; shaded groups are infeasible τ. Routers
    that ignore τ (oracle, best fixed, cheapest, random) are horizontal reference lines.
    """
    means = _means(result)
    dependent, references = _split_routers(result)
    colors = _colors(result.router_names)
    taus = np.asarray(result.taus, dtype=float)
    n_bars = max(1, len(dependent))
    fig = Figure(figsize=(min(30.0, 4.0 + 0.16 * taus.size * n_bars), 5.5), dpi=DPI)
    ax = fig.add_subplot()
    group = 0.8
    width = group / n_bars
    x = np.arange(taus.size)
    for j, router in enumerate(dependent):
        part = means[means["router"] == router].set_index("tau").loc[taus]
        acc = part["accuracy"].to_numpy()
        if len(result.seeds) > 1:
            err = np.nan_to_num(part["accuracy_sd"].to_numpy())
            yerr = np.vstack([err, err])
        else:
            yerr = np.clip(np.vstack([acc - part["ci_low"].to_numpy(), part["ci_high"].to_numpy() - acc]), 0.0, None)
        offsets = x - group / 2 + (j + 0.5) * width
        missed = acc < taus - 1e-12
        ax.bar(offsets[~missed], acc[~missed], width, color=colors[router], yerr=yerr[:, ~missed],
               error_kw={"elinewidth": 0.6, "capsize": 0})
        ax.bar(offsets[missed], acc[missed], width, color=colors[router], hatch="///", edgecolor="white", linewidth=0,
               yerr=yerr[:, missed], error_kw={"elinewidth": 0.6, "capsize": 0})
        ax.add_patch(Rectangle((0, 0), 0, 0, color=colors[router], label=router))  # legend entry even if every bar is hatched
    for i, tau in enumerate(taus):
        ax.hlines(tau, i - group / 2 - 0.04, i + group / 2 + 0.04, color="black", linewidth=2.0,
                  label="τ (floor)" if i == 0 else None)
    for i in np.flatnonzero(_infeasible(result)):
        ax.axvspan(i - 0.5, i + 0.5, color="0.85", zorder=0, label="infeasible τ" if i == np.flatnonzero(_infeasible(result))[0] else None)
    for router in references:
        acc = float(means.loc[means["router"] == router, "accuracy"].mean())
        ax.axhline(acc, color=colors[router], linestyle=_REFERENCE_STYLE.get(router, "--"), linewidth=1.2, label=f"{router} ({acc:.3f})")
    lows = means.loc[means["router"].isin(dependent), "accuracy"] if dependent else means["accuracy"]
    bottom = max(0.0, min(float(lows.min()), float(taus.min())) - 0.05)
    top = min(1.02, max(float(means["accuracy"].max()), float(taus.max())) + 0.03)
    ax.set_ylim(bottom, top)
    ax.set_xticks(x, [f"{t:.3f}".rstrip("0") for t in taus])
    ax.set_xlim(-0.5, taus.size - 0.5)
    ax.set_xlabel("accuracy target τ")
    ax.set_ylabel("test accuracy (realized)")
    ax.set_title(f"Floor compliance per τ ({result.benchmark['name']}, seeds {result.seeds}; hatched: mean accuracy below τ)")
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_cost(result: EvalResult) -> Figure:
    """USD per 1K queries per τ for every τ-dependent router, τ-independent ones as horizontal lines."""
    means = _means(result)
    dependent, references = _split_routers(result)
    colors = _colors(result.router_names)
    fig = Figure(figsize=(9.5, 5.0), dpi=DPI)
    ax = fig.add_subplot()
    for router in dependent:
        part = means[means["router"] == router]
        ax.plot(part["tau"], part["usd"], marker="o", markersize=3, color=colors[router], label=router)
    for router in references:
        usd = float(means.loc[means["router"] == router, "usd"].mean())
        ax.axhline(usd, color=colors[router], linestyle=_REFERENCE_STYLE.get(router, "--"), linewidth=1.2, label=router)
    for tau, flag in zip(result.taus, _infeasible(result), strict=True):
        if flag:
            ax.axvline(float(tau), color="0.8", linewidth=6, zorder=0)
    positive = means["usd"][means["usd"] > 0]
    if positive.size and positive.max() / positive.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("accuracy target τ (grey: infeasible)")
    ax.set_ylabel("USD per 1K queries (test)")
    ax.set_title("Cost per τ (mean over seeds)")
    ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _hull_curve(usd: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The zero-router hull sampled densely (straight segments on a linear cost axis)."""
    hull_x, hull_y = nondecreasing_hull(usd, accuracy)
    if hull_x.size == 1:
        return hull_x, hull_y
    xs = np.concatenate([np.linspace(a, b, 50, endpoint=False) for a, b in zip(hull_x[:-1], hull_x[1:], strict=True)] + [hull_x[-1:]])
    return xs, np.interp(xs, hull_x, hull_y)


def plot_cost_accuracy(result: EvalResult) -> Figure:
    """The cost–accuracy plane: each router's points over τ, the fixed models and the zero-router hull."""
    means = _means(result)
    dependent, references = _split_routers(result)
    colors = _colors(result.router_names)
    fixed = result.fixed_models.groupby("model", sort=False)[["accuracy", "usd_per_1k"]].mean().reset_index()
    fig = Figure(figsize=(9.5, 6.0), dpi=DPI)
    ax = fig.add_subplot()
    ax.scatter(fixed["usd_per_1k"], fixed["accuracy"], color="0.6", s=14, zorder=2, label="fixed models")
    for _, row in fixed.iterrows():
        ax.annotate(str(row["model"]).split("/")[-1], (row["usd_per_1k"], row["accuracy"]), fontsize=6, color="0.45",
                    xytext=(3, 2), textcoords="offset points")
    hull_x, hull_y = _hull_curve(fixed["usd_per_1k"].to_numpy(), fixed["accuracy"].to_numpy())
    ax.plot(hull_x, hull_y, color="black", linestyle="--", linewidth=1.0, label="zero-router hull")
    for router in dependent:
        part = means[means["router"] == router]
        ax.plot(part["usd"], part["accuracy"], marker="o", markersize=3.5, linewidth=1.0, color=colors[router], label=router, zorder=3)
    markers = {"oracle": "*", "best_fixed": "s", "cheapest": "v", "random": "X"}
    for router in references:
        part = means[means["router"] == router]
        ax.scatter([part["usd"].mean()], [part["accuracy"].mean()], marker=markers.get(router, "D"), s=70, color=colors[router],
                   edgecolor="black", linewidth=0.5, zorder=4, label=router)
    positive = pd.concat([means["usd"], fixed["usd_per_1k"]])
    positive = positive[positive > 0]
    if positive.size and positive.max() / positive.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel("USD per 1K queries (test)")
    ax.set_ylabel("test accuracy (realized)")
    ax.set_title("Cost–accuracy plane (mean over seeds)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_dynamic(result: EvalResult) -> Figure:
    """τ over each dynamic stream and every router's windowed accuracy (first seed).

    Filled markers: windows that met the mean τ in force; hollow: missed.
    """
    scenarios = list(result.schedules)
    fig = Figure(figsize=(10.0, 2.8 * max(1, len(scenarios))), dpi=DPI)
    if not scenarios or result.dynamic.empty:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "dynamic scenarios not run", ha="center", va="center")
        ax.set_axis_off()
        return fig
    colors = _colors(result.router_names)
    seed = result.seeds[0]
    windows = result.dynamic[result.dynamic["seed"] == seed]
    axes = fig.subplots(len(scenarios), 1, sharex=True, squeeze=False)[:, 0]
    for ax, scenario in zip(axes, scenarios, strict=True):
        schedule = result.schedules[scenario]
        ax.plot(np.arange(schedule.size), schedule, color="black", linewidth=1.5, label="τ in force", drawstyle="steps-post")
        part = windows[windows["scenario"] == scenario]
        for router in dict.fromkeys(part["router"]):
            rows = part[part["router"] == router]
            centres = (rows["start"] + rows["stop"]).to_numpy() / 2.0
            share = float(rows["met"].mean())
            ax.hlines(rows["accuracy"], rows["start"], rows["stop"], color=colors[router], linewidth=1.2)
            met = rows["met"].to_numpy(dtype=bool)
            ax.scatter(centres[met], rows["accuracy"].to_numpy()[met], color=colors[router], s=18, zorder=3,
                       label=f"{router} ({share:.0%} windows met)")
            ax.scatter(centres[~met], rows["accuracy"].to_numpy()[~met], facecolor="white", edgecolor=colors[router], s=18, zorder=3)
        ax.set_ylabel("accuracy")
        ax.set_title(f"{scenario} (seed {seed})", fontsize=9)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1].set_xlabel("query in stream")
    fig.tight_layout()
    return fig


def reliability_frame(bench: Benchmark, fit: HeadFit, seed: int, *, n_bins: int = DEFAULT_CALIBRATION_BINS,
                      splits: tuple[str, ...] = ("val", "test")) -> pd.DataFrame:
    """The routing head's p̂ against realized scores in equal-width p̂ bins, per split and model.

    Args:
        bench: The benchmark the head was fitted on.
        fit: The head fit (its p̂ for every row).
        seed: Recorded in the ``seed`` column.
        n_bins: Bins of [0, 1].
        splits: Splits to bin (validation p̂ is Platt-calibrated on those very rows; test is held out).

    Returns:
        One row per split × model × bin, columns :data:`~agents.evaluation.result.CALIBRATION_COLUMNS`.
    """
    frames = []
    for split in splits:
        rows = bench.split_index(split)
        if rows.size == 0:
            continue
        for k, model in enumerate(bench.models):
            curve = reliability_curve(bench.scores[rows, k], fit.p_hat[rows, k].astype(np.float64), n_bins)
            frames.append(pd.DataFrame({"seed": int(seed), "split": split, "model": model, "bin": np.arange(n_bins), **curve}))
    if not frames:
        return pd.DataFrame(columns=list(CALIBRATION_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(CALIBRATION_COLUMNS)]


def _pooled_bins(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sum bin counts over seeds (and models, if not in ``by``); count-weighted mean p̂ and score."""
    data = frame.assign(count=frame["count"].astype(float))
    data = data.assign(p_sum=data["count"] * data["mean_probability"].fillna(0.0), y_sum=data["count"] * data["mean_score"].fillna(0.0))
    pooled = data.groupby([*by, "bin"], sort=False)[["count", "p_sum", "y_sum"]].sum().reset_index()
    filled = pooled["count"] > 0
    pooled["mean_probability"] = np.where(filled, pooled["p_sum"] / pooled["count"].where(filled, 1.0), np.nan)
    pooled["mean_score"] = np.where(filled, pooled["y_sum"] / pooled["count"].where(filled, 1.0), np.nan)
    return pooled


def plot_reliability(result: EvalResult) -> Figure:
    """Reliability diagram of the routing head's p̂: mean realized score per equal-width p̂ bin.

    One panel for all models pooled, then one per model; validation (dashed, where Platt scaling
    was fitted) and test (solid, held out), pooled over seeds. Marker area grows with the bin's
    row count; a calibrated p̂ lies on the diagonal. Each title gives the test ECE.
    """
    data = result.calibration
    if data is None or data.empty:
        fig = Figure(figsize=(6.0, 3.0), dpi=DPI)
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no routing head predictions recorded", ha="center", va="center")
        ax.set_axis_off()
        return fig
    models = list(dict.fromkeys(data["model"]))
    panels = [("all models", _pooled_bins(data, ["split"]))]
    per_model = _pooled_bins(data, ["split", "model"])
    panels += [(model, per_model[per_model["model"] == model]) for model in models]
    ncols = min(4, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig = Figure(figsize=(3.0 * ncols, 3.0 * nrows + 0.4), dpi=DPI)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    styles = {"val": {"linestyle": "--", "color": "tab:orange"}, "test": {"linestyle": "-", "color": "tab:blue"}}
    for ax, (title, part) in zip(axes, panels, strict=False):
        ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
        eces = {}
        for split, style in styles.items():
            rows = part[(part["split"] == split) & (part["count"] > 0)]
            if rows.empty:
                continue
            total = float(rows["count"].sum())
            eces[split] = float((rows["count"] * (rows["mean_score"] - rows["mean_probability"]).abs()).sum() / total)
            ax.plot(rows["mean_probability"], rows["mean_score"], linewidth=1.0, **style, label=f"{split} (ECE {eces[split]:.3f})")
            ax.scatter(rows["mean_probability"], rows["mean_score"], s=8 + 120 * np.sqrt(rows["count"] / total), color=style["color"],
                       zorder=3, alpha=0.8)
        name = str(title).split("/")[-1]
        ax.set_title(f"{name}" + (f"\ntest ECE {eces['test']:.3f}" if "test" in eces else ""), fontsize=8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
        ax.set_aspect("equal")
    axes[0].legend(fontsize=6, loc="upper left")
    axes[0].set_xlabel("predicted p̂ (bin mean)", fontsize=7)
    axes[0].set_ylabel("realized score (bin mean)", fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(f"Reliability of the routing head's p̂ ({result.benchmark.get('name', '')}, seeds {result.seeds}; "
                 "validation: where Platt scaling was fitted)", fontsize=9)
    fig.tight_layout()
    return fig


def write_figures(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """Save ``compliance.png``, ``cost.png``, ``cost_accuracy.png``, ``dynamic.png`` and ``reliability.png`` into ``out_dir``.

    Returns:
        ``{file name: path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"compliance.png": plot_compliance, "cost.png": plot_cost, "cost_accuracy.png": plot_cost_accuracy,
               "dynamic.png": plot_dynamic, "reliability.png": plot_reliability}
    paths = {}
    for name, plot in figures.items():
        path = out / name
        plot(result).savefig(path, dpi=DPI, bbox_inches="tight")
        paths[name] = path
    return paths
