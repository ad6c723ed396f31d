"""The synthetic benchmark against the published RouterBench figures (the gym core's acceptance table).

    python benchmarks/synthetic_calibration.py [--seed 0] [--n-queries 36497]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.metrics import roc_auc_score

from proteus_env import fit_routing_head, make_synthetic_benchmark
from proteus_env.synthetic import ROUTERBENCH_MODELS, ROUTERBENCH_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-queries", type=int, default=ROUTERBENCH_SIZE)
    args = parser.parse_args()
    bench = make_synthetic_benchmark(args.n_queries, seed=args.seed)
    fit = fit_routing_head(bench, seed=args.seed)
    test = bench.splits["test"]
    print(f"{'model':36s} {'score':>6} {'publ.':>6} {'USD/query':>10} {'publ.':>9} {'ratio':>6} {'test AUC':>8}")
    for k, model in enumerate(bench.models):
        score, usd = ROUTERBENCH_MODELS[model]
        auc = roc_auc_score(bench.scores[test, k] >= 0.5, fit.p_hat[test, k])
        print(f"{model:36s} {bench.scores[:, k].mean():>6.3f} {score:>6.3f} {bench.costs[:, k].mean():>10.6f} {usd:>9.6f} "
              f"{bench.costs[:, k].mean() / usd:>6.3f} {auc:>8.3f}")
    best = bench.scores.max(axis=1)
    print(f"\nqueries {bench.n_queries}; no model correct {np.mean(best <= 0):.1%} (published 3.6%); "
          f"oracle mean best score {best.mean():.3f} (published 0.917 on a 20% test split); "
          f"best single model {bench.scores.mean(axis=0).max():.3f} (published 0.781)")


if __name__ == "__main__":
    main()
