"""How the routing head's term scales spread μ over the cost–quality frontier.

For each (γ, s_b, s_c) it routes the synthetic benchmark's test split at fixed μ = 0, 0.01, …, 1
and prints the accuracy and cost ends and the μ-span between reaching 10 % and 90 % of the
accuracy rise (the design asks that μ's range spans the frontier, not a sliver of it), then the
fixed-μ table at μ = 0, 0.1, …, 1 for the default head. These figures chose ``HeadConfig``'s
defaults (see its docstring).

    python benchmarks/frontier.py [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from proteus_env import HeadConfig, HeadFit, fit_routing_head, make_synthetic_benchmark
from proteus_env.routing_head import fixed_mu_frontier

GRID = [(3.0, s_b, s_c) for s_b in (0.0, 0.5, 1.0) for s_c in (1.0, 2.0, 3.0, 5.0)]
GRID += [(2.0, s_b, s_c) for s_b in (0.0, 0.1, 0.25) for s_c in (2.0, 3.0, 4.0)]


def spread(benchmark, fit: HeadFit, config: HeadConfig) -> dict[str, float]:
    head = dataclasses.replace(fit.head, config=config)
    scaled = HeadFit(head, fit.p_hat, fit.cost_hat, fit.cost_norm)
    mus = np.linspace(0.0, 1.0, 101)
    frontier = fixed_mu_frontier(benchmark, scaled, mus, split="test")
    acc = frontier["accuracy"]
    low, high = acc[0], acc.max()
    mu10 = mus[np.argmax(acc >= low + 0.1 * (high - low))]
    mu90 = mus[np.argmax(acc >= low + 0.9 * (high - low))]
    return {"acc_mu0": low, "acc_max": high, "usd_mu0": frontier["usd_per_1k"][0], "usd_max": frontier["usd_per_1k"].max(),
            "mu10": mu10, "mu90": mu90, "span": mu90 - mu10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    benchmark = make_synthetic_benchmark(seed=args.seed)
    fit = fit_routing_head(benchmark, seed=args.seed)
    print(f"{'gamma':>5} {'s_b':>5} {'s_c':>5} {'acc@mu=0':>9} {'acc max':>8} {'$/1K@0':>7} {'$/1K max':>8} {'mu10':>5} {'mu90':>5} {'span':>5}")
    for gamma, s_b, s_c in GRID:
        r = spread(benchmark, fit, HeadConfig(gamma=gamma, quality_scale=s_b, cost_scale=s_c))
        print(f"{gamma:>5.1f} {s_b:>5.2f} {s_c:>5.1f} {r['acc_mu0']:>9.3f} {r['acc_max']:>8.3f} {r['usd_mu0']:>7.3f} {r['usd_max']:>8.2f} "
              f"{r['mu10']:>5.2f} {r['mu90']:>5.2f} {r['span']:>5.2f}")
    default = fixed_mu_frontier(benchmark, fit, np.linspace(0.0, 1.0, 11), split="test")
    print(f"\nDefault head {HeadConfig()}: fixed-μ routing on the test split")
    print(f"{'mu':>4} {'accuracy':>9} {'USD/1K':>8}")
    for mu, acc, usd in zip(default["mu"], default["accuracy"], default["usd_per_1k"], strict=True):
        print(f"{mu:>4.1f} {acc:>9.3f} {usd:>8.3f}")


if __name__ == "__main__":
    main()
