"""Certified floors against the old normal-approximation margin, on held-out split seeds (issue 11).

For each split seed, CARROT and the fixed-μ router (the head's μ-path) are calibrated on
validation twice at the same confidence:

- **certified**: Learn-then-Test with exact bounds (:mod:`proteus_env.guarantees`), the floor being
  on the realized accuracy of the whole test split (``deploy_queries`` = its size);
- **normal**: the previous rule, τ' = τ + z·sqrt(τ(1 − τ)/n) with n = 1/(1/n_val + 1/n_test), then
  the cheapest setting whose validation accuracy reaches τ'.

Both are scored on the test split at 9 targets from the cheapest model's validation accuracy to the
highest τ the certified CARROT serves. Nothing here was tuned: δ's split between validation and
deployment is chosen from (τ, n_val, n_test) alone.

    python benchmarks/certified_floors.py --seeds 0-19
    python benchmarks/certified_floors.py --benchmark routerbench --data ../shared/data/routerbench/routerbench_0shot_sample365.csv --seeds 0-19
"""

from __future__ import annotations

import argparse

import numpy as np
from seeds import parse_seeds

from agents.baselines import TRADEOFF_GRID, CalibrationSettings, CarrotRouter, cheapest_router
from proteus_env import fit_routing_head, load_benchmark
from proteus_env.guarantees import certify, scores_are_binary
from proteus_env.metrics import effective_sample_size, one_sided_margin
from proteus_env.routing_head import fixed_mu_frontier

MUS = np.linspace(0.0, 1.0, 201)




def normal_index(accuracy: np.ndarray, tau: float, n: int, confidence: float, cheapest_last: bool) -> int:
    """The previous rule: the cheapest setting whose validation accuracy reaches the normal-approximation target."""
    meets = np.flatnonzero(accuracy >= one_sided_margin(tau, n, confidence))
    if not meets.size:
        return int(np.argmax(accuracy))
    return int(meets[-1] if cheapest_last else meets[0])


def run_seed(args: argparse.Namespace, seed: int) -> list[dict]:
    kwargs = {"data_path": args.data} if args.data else {}
    bench = load_benchmark(args.benchmark, split_seed=seed, **kwargs)
    fit = fit_routing_head(bench, seed=seed)
    val, test = bench.split_index("val"), bench.split_index("test")
    n_eff = effective_sample_size(val.size, test.size)
    binary = scores_are_binary(bench.scores[val])
    carrot = CarrotRouter(bench, fit, CalibrationSettings(confidence=args.confidence, deploy_queries=int(test.size)))
    accuracy, _ = carrot.validation_curve()
    cheap = float(bench.scores[val, cheapest_router(bench, fit).route(val, 0.5)].mean())
    certified = [t for t in np.arange(cheap, float(accuracy.max()), 0.001) if carrot.calibrate(float(t)).feasible]
    normal_top = max((t for t in np.arange(cheap, float(accuracy.max()), 0.001)
                      if accuracy.max() >= one_sided_margin(float(t), n_eff, args.confidence)), default=cheap)
    taus = np.linspace(cheap, max(certified) if certified else cheap, 9)
    frontier = fixed_mu_frontier(bench, fit, MUS, split="val")
    out = []
    for tau in taus:
        row = {"seed": seed, "tau": float(tau), "certified_top": max(certified) if certified else float("nan"), "normal_top": normal_top}
        m_cert = carrot.calibrate(float(tau)).value
        m_norm = float(TRADEOFF_GRID[normal_index(accuracy, float(tau), n_eff, args.confidence, cheapest_last=True)])
        choice = certify(frontier["accuracy"][::-1], float(tau), val.size, args.confidence, int(test.size), binary=binary)
        mu_cert = float(frontier["mu"][::-1][choice.position]) if choice.certified else 1.0
        mu_norm = float(MUS[normal_index(frontier["accuracy"], float(tau), n_eff, args.confidence, cheapest_last=False)])
        for name, picked in (("carrot_certified", CarrotRouter.choose(fit.p_hat[test], fit.cost_hat[test], m_cert)),
                             ("carrot_normal", CarrotRouter.choose(fit.p_hat[test], fit.cost_hat[test], m_norm)),
                             ("fixed_mu_certified", fit.head.route(fit.p_hat[test], fit.cost_hat[test], mu_cert)),
                             ("fixed_mu_normal", fit.head.route(fit.p_hat[test], fit.cost_hat[test], mu_norm))):
            row[f"{name}_acc"] = float(bench.scores[test, picked].mean())
            row[f"{name}_usd"] = 1000.0 * float(bench.costs[test, picked].mean())
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", default=["0-19"])
    parser.add_argument("--benchmark", default="synthetic")
    parser.add_argument("--data", default=None)
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    rows = [row for seed in parse_seeds(args.seeds) for row in run_seed(args, seed)]
    seeds = sorted({r["seed"] for r in rows})
    print(f"{args.benchmark}, {len(seeds)} split seeds x 9 targets, confidence {args.confidence}")
    print(f"{'router':>20} {'floors met':>10} {'worst seed':>10} {'mean $/1K':>10}")
    for name in ("carrot_certified", "carrot_normal", "fixed_mu_certified", "fixed_mu_normal"):
        met = np.array([r[f"{name}_acc"] >= r["tau"] - 1e-12 for r in rows])
        per_seed = [np.mean([r[f"{name}_acc"] >= r["tau"] - 1e-12 for r in rows if r["seed"] == s]) for s in seeds]
        usd = np.mean([r[f"{name}_usd"] for r in rows])
        print(f"{name:>20} {met.mean():>10.1%} {min(per_seed):>10.1%} {usd:>10.3f}")
    for base in ("carrot", "fixed_mu"):
        ratio = np.sum([r[f"{base}_certified_usd"] for r in rows]) / np.sum([r[f"{base}_normal_usd"] for r in rows])
        print(f"{base}: certified / normal cost {ratio:.3f}")
    tops = np.array([[r["certified_top"], r["normal_top"]] for r in rows if r["tau"] == max(x["tau"] for x in rows if x["seed"] == r["seed"])])
    print(f"highest target served: certified median {np.median(tops[:, 0]):.3f}, normal approximation median {np.median(tops[:, 1]):.3f}")


if __name__ == "__main__":
    main()
