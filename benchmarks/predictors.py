"""How good is p̂ with each predictor, which one validation picks, and what it buys a certified router.

For every benchmark × split seed it fits the routing head with each correctness predictor
(logistic, gradient-boosted trees, MLP; ``HeadConfig.predictor``), lets
:func:`~proteus_env.routing_head.choose_predictor` pick one by validation log-loss, and reports
on the *test* split (never used for the choice) the per-model AUC, Brier score and expected
calibration error of p̂ (:func:`~proteus_env.metrics.calibration_metrics`, 10 equal-width bins),
averaged over models. Benchmarks: the built-in synthetic benchmark and the RouterBench sample
(TF-IDF + SVD and sentence-transformer embeddings). On the synthetic benchmark (first seed) it
also routes with CARROT certified at 95 % confidence (``CalibrationSettings(confidence=0.95,
deploy_queries=<test size>)``) at 5 targets with each predictor, and reports test accuracy and
USD per 1K queries.

    python benchmarks/predictors.py [--seeds 0 1 2] [--predictors logistic gbt mlp]
        [--routerbench ../shared/data/routerbench/routerbench_0shot_sample365.csv]
        [--encoders tfidf-svd sentence-transformers] [--synthetic-queries N] [--cost-predictors ridge gbt mlp]
        [--out reports/predictors]

``--out`` writes ``predictors.md`` (the tables), ``per_model.csv`` (every model's AUC, Brier and
ECE) and ``carrot.csv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.baselines import CalibrationSettings, CarrotRouter  # noqa: E402
from proteus_env import load_benchmark  # noqa: E402
from proteus_env.metrics import calibration_metrics  # noqa: E402
from proteus_env.routing_head import HeadConfig, choose_predictor, fit_routing_head  # noqa: E402

DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "routerbench" / "routerbench_0shot_sample365.csv"
N_CARROT_TARGETS = 5


@dataclasses.dataclass(frozen=True)
class Spec:
    """One benchmark setting: a label and the ``load_benchmark`` arguments (the split seed is added)."""

    label: str
    name: str
    kwargs: dict


def specs(args: argparse.Namespace) -> list[Spec]:
    out = [Spec("synthetic", "synthetic", {} if args.synthetic_queries is None else {"n_queries": args.synthetic_queries})]
    if args.routerbench and Path(args.routerbench).is_file():
        for encoder in args.encoders:
            out.append(Spec(f"routerbench-sample/{encoder}", "routerbench", {"data_path": str(args.routerbench), "encoder": encoder}))
    elif args.routerbench:
        print(f"RouterBench sample not found at {args.routerbench}: synthetic only.", file=sys.stderr)
    return out


def test_metrics(bench, fit) -> dict[str, np.ndarray]:
    test = bench.split_index("test")
    return calibration_metrics(bench.scores[test], fit.p_hat[test].astype(np.float64))


def carrot_table(bench, seed: int, predictors: list[str]) -> pd.DataFrame:
    """CARROT certified at 95 % with each predictor, at targets spread over the test split's fixed-model range."""
    test = bench.split_index("test")
    model_acc = bench.scores[test].mean(axis=0)
    model_usd = bench.costs[test].mean(axis=0)
    low = float(model_acc[np.argmin(model_usd)])  # the cheapest model
    high = float(model_acc.max())  # the best fixed model
    taus = np.round(np.linspace(low + 0.1 * (high - low), high - 0.1 * (high - low), N_CARROT_TARGETS), 3)
    settings = CalibrationSettings(confidence=0.95, deploy_queries=int(test.size))
    rows = []
    for predictor in predictors:
        fit = fit_routing_head(bench, seed=seed, config=HeadConfig(predictor=predictor))
        carrot = CarrotRouter(bench, fit, settings)
        for tau in taus:
            calibration = carrot.calibrate(float(tau))
            choice = carrot.route(test, float(tau))
            accuracy = float(bench.scores[test, choice].mean())
            rows.append({"predictor": predictor, "tau": float(tau), "certified": bool(calibration.feasible), "m": calibration.value,
                         "accuracy": accuracy, "floor_met": accuracy >= tau, "usd_per_1k": float(bench.costs[test, choice].mean() * 1000)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--predictors", nargs="+", default=["logistic", "gbt", "mlp"])
    parser.add_argument("--cost-predictors", nargs="+", default=["ridge"],
                        help="cost predictors to compare by validation/test RMSE of log cost (default: ridge only, no comparison)")
    parser.add_argument("--routerbench", default=str(DEFAULT_SAMPLE), help="RouterBench file ('' to skip)")
    parser.add_argument("--encoders", nargs="+", default=["tfidf-svd", "sentence-transformers"])
    parser.add_argument("--synthetic-queries", type=int, default=None, help="size of the synthetic benchmark (default: its full size)")
    parser.add_argument("--no-carrot", action="store_true", help="skip the CARROT cost comparison")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the sentence-transformer weights are packaged: nothing to download

    start = time.perf_counter()
    summary, per_model, cost_rows, carrot = [], [], [], None
    for spec in specs(args):
        for seed in args.seeds:
            t0 = time.perf_counter()
            bench = load_benchmark(spec.name, split_seed=seed, **spec.kwargs)
            cost_candidates = args.cost_predictors if len(args.cost_predictors) > 1 else None
            choice = choose_predictor(bench, seed, args.predictors, cost_candidates=cost_candidates)
            for predictor in args.predictors:
                fit = fit_routing_head(bench, seed=seed, config=HeadConfig(predictor=predictor))
                metrics = test_metrics(bench, fit)
                summary.append({"benchmark": spec.label, "seed": seed, "predictor": predictor, "chosen": predictor == choice.predictor,
                                "val_log_loss": choice.scores[predictor]["log_loss"], "test_auc": float(np.nanmean(metrics["auc"])),
                                "test_brier": float(metrics["brier"].mean()), "test_ece": float(metrics["ece"].mean()),
                                "n_val": int(bench.split_index("val").size), "n_test": int(bench.split_index("test").size)})
                for k, model in enumerate(bench.models):
                    per_model.append({"benchmark": spec.label, "seed": seed, "predictor": predictor, "model": model,
                                      **{key: float(metrics[key][k]) for key in ("auc", "brier", "ece", "mean_probability", "mean_score")}})
            if cost_candidates:
                test = bench.split_index("test")
                log_costs = np.log(np.maximum(bench.costs[test], 1e-12))
                for cost_predictor in args.cost_predictors:
                    head = fit_routing_head(bench, seed=seed, config=dataclasses.replace(choice.config, cost_predictor=cost_predictor)).head
                    predicted = head.log_cost(head.standardized_features(bench.embeddings[test], bench.prompt_tokens[test]))
                    cost_rows.append({"benchmark": spec.label, "seed": seed, "cost_predictor": cost_predictor,
                                      "chosen": cost_predictor == choice.cost_predictor,
                                      "val_rmse_log_cost": choice.cost_scores[cost_predictor]["rmse_log_cost"],
                                      "test_rmse_log_cost": float(np.sqrt(((predicted - log_costs) ** 2).mean()))})
            if spec.name == "synthetic" and seed == args.seeds[0] and not args.no_carrot:
                carrot = carrot_table(bench, seed, args.predictors)
            print(f"[{time.perf_counter() - start:6.0f}s] {spec.label} seed {seed}: chose {choice.predictor} "
                  f"({time.perf_counter() - t0:.0f}s)\n{choice.summary()}", flush=True)

    table = pd.DataFrame(summary)
    means = table.groupby(["benchmark", "predictor"], sort=False).agg(
        val_log_loss=("val_log_loss", "mean"), test_auc=("test_auc", "mean"), test_auc_sd=("test_auc", "std"), test_brier=("test_brier", "mean"),
        test_ece=("test_ece", "mean"), chosen=("chosen", "sum"), seeds=("seed", "count"), n_test=("n_test", "first")).reset_index()
    lines = ["# Predictors of p̂: test-split calibration (mean over models, then over seeds)", "",
             f"Command: `python benchmarks/predictors.py {' '.join(sys.argv[1:])}`; seeds {args.seeds}; "
             "chosen = number of seeds on which validation log-loss picked it.", "",
             "| benchmark | predictor | val log-loss | test AUC (± sd over seeds) | test Brier | test ECE | chosen | n_test |",
             "|---|---|---|---|---|---|---|---|"]
    for row in means.itertuples():
        lines.append(f"| {row.benchmark} | {row.predictor} | {row.val_log_loss:.4f} | {row.test_auc:.3f} ± {np.nan_to_num(row.test_auc_sd):.3f} | "
                     f"{row.test_brier:.4f} | {row.test_ece:.4f} | {row.chosen}/{row.seeds} | {row.n_test} |")
    lines += ["", "Per seed:", "", "| benchmark | seed | predictor | chosen | val log-loss | test AUC | test Brier | test ECE |",
              "|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        lines.append(f"| {row.benchmark} | {row.seed} | {row.predictor} | {'*' if row.chosen else ''} | {row.val_log_loss:.4f} | "
                     f"{row.test_auc:.3f} | {row.test_brier:.4f} | {row.test_ece:.4f} |")
    if cost_rows:
        lines += ["", "Cost predictors (RMSE of log USD cost):", "", "| benchmark | seed | cost predictor | chosen | val RMSE | test RMSE |",
                  "|---|---|---|---|---|---|"]
        for row in cost_rows:
            lines.append(f"| {row['benchmark']} | {row['seed']} | {row['cost_predictor']} | {'*' if row['chosen'] else ''} | "
                         f"{row['val_rmse_log_cost']:.4f} | {row['test_rmse_log_cost']:.4f} |")
    if carrot is not None:
        lines += ["", f"CARROT certified at 95 % (deploy_queries = test size), synthetic seed {args.seeds[0]}: test accuracy / USD per 1K "
                  "(✗: floor missed on test; †: not certifiable on validation)", ""]
        taus = sorted(carrot["tau"].unique())
        lines += ["| predictor | " + " | ".join(f"τ={t:.3f}" for t in taus) + " | mean USD/1K |", "|---|" + "---|" * (len(taus) + 1)]
        for predictor, part in carrot.groupby("predictor", sort=False):
            cells = [f"{r.accuracy:.3f} / {r.usd_per_1k:.3f}{'' if r.floor_met else ' ✗'}{'' if r.certified else ' †'}"
                     for r in part.sort_values("tau").itertuples()]
            lines.append(f"| {predictor} | " + " | ".join(cells) + f" | {part['usd_per_1k'].mean():.3f} |")
    lines += ["", f"Wall time {time.perf_counter() - start:.0f} s."]
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "predictors.md").write_text(text + "\n")
        pd.DataFrame(per_model).to_csv(out / "per_model.csv", index=False)
        if carrot is not None:
            carrot.to_csv(out / "carrot.csv", index=False)


if __name__ == "__main__":
    main()
