"""The trained router against the strongest non-RL competitors, seed by seed (issues 3, 14 and 17).

For each split seed (the seed changes the split, the routing head's folds and the training):

1. train the PROTEUS agent with the default config (or ``--set`` overrides) on the benchmark;
2. build a 9-point τ grid from the cheapest model's validation accuracy to the highest τ that a
   certified CARROT can serve (validation data only; nothing is chosen on test);
3. route the whole test split at every τ with PROTEUS, with CARROT and with the fixed-μ router,
   all three on the same p̂ and per-query ĉ and certified the same way: the floor on the test
   split's realized accuracy holds with probability ``--confidence`` (Learn-then-Test,
   :mod:`proteus_env.guarantees`);
4. report per seed: the τ-span (0 = τ-blind, 1 = the whole achievable range), the accuracy range
   the router can reach on validation, the floors met, the cost against CARROT and the fixed-μ
   router (pooled over the grid, and the worst single target), and the training wall time.

The summary gives the distribution over seeds (median and worst seed), never the best run.

    python benchmarks/agent_targets.py --seeds 10-29
    python benchmarks/agent_targets.py --seeds 0-4 --models gpt-4-1106-preview,zero-one-ai/Yi-34B-Chat
    python benchmarks/agent_targets.py --benchmark routerbench --data ../shared/data/routerbench/routerbench_0shot_sample365.csv --seeds 0-9
    python benchmarks/agent_targets.py --speed-only ARTIFACT     # PPO steps/s, batched and single-query routing
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from seeds import parse_seeds
from stable_baselines3 import PPO

from agents.baselines import CalibrationSettings, CarrotRouter, cheapest_router
from agents.proteus.collapse import CollapsedPolicyWarning
from agents.proteus.policies import BetaActorCriticPolicy
from agents.proteus.router import ProteusRouter, UnreachableTargetWarning
from agents.proteus.train import apply_override, load_config, train
from proteus_env.env import ProteusRoutingEnv
from proteus_env.guarantees import certify, scores_are_binary
from proteus_env.routing_head import fixed_mu_frontier

ENV_IDS = {"synthetic": "Proteus-Synthetic-v0", "routerbench": "Proteus-RouterBench-v0", "sprout": "Proteus-SPROUT-v0"}




def tau_grid(carrot: CarrotRouter, cheapest_val_accuracy: float, n: int = 9) -> np.ndarray:
    """From the cheapest model's validation accuracy to the highest τ the certified CARROT serves."""
    accuracy, _ = carrot.validation_curve()
    candidates = np.arange(cheapest_val_accuracy, float(np.max(accuracy)), 0.001)
    certified = [t for t in candidates if carrot.calibrate(float(t)).feasible]
    return np.linspace(cheapest_val_accuracy, max(certified) if certified else cheapest_val_accuracy, n)


def fixed_mu_choices(bench, fit, taus: np.ndarray, confidence: float, n_deploy: int) -> list[tuple[float, bool]]:
    """The certified fixed μ for each τ (fixed-sequence testing from μ = 1 down), like every calibrated router."""
    frontier = fixed_mu_frontier(bench, fit, np.linspace(0.0, 1.0, 201), split="val")
    val = bench.split_index("val")
    binary = scores_are_binary(bench.scores[val])
    out = []
    for tau in taus:
        choice = certify(frontier["accuracy"][::-1], float(tau), val.size, confidence, n_deploy, binary=binary)
        out.append((float(frontier["mu"][::-1][choice.position]) if choice.certified else 1.0, choice.certified))
    return out


def evaluate_seed(seed: int, env_id: str, config: dict[str, Any], args: argparse.Namespace, out_root: Path) -> dict[str, Any]:
    """Train one seed and compare the three routers on its test split."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapsedPolicyWarning)  # recorded in the summary and reported below
        result = train(env_id, config=config, out_dir=out_root / f"seed{seed}", seed=seed, timesteps=args.timesteps, data_path=args.data)
        router = ProteusRouter.load(result.out_dir)
    wall = time.perf_counter() - start
    env_kwargs = {**gym.spec(env_id).kwargs, **config.get("env_kwargs", {}), "split_seed": seed, "split": "val"}
    if args.data:
        env_kwargs["data_path"] = args.data
    env = ProteusRoutingEnv(**env_kwargs)
    bench, fit = env.benchmark, env.head_fit
    test, val = bench.split_index("test"), bench.split_index("val")
    settings = CalibrationSettings(confidence=args.confidence, deploy_queries=int(test.size))
    carrot = CarrotRouter(bench, fit, settings)
    cheap = cheapest_router(bench, fit)
    taus = tau_grid(carrot, float(bench.scores[val, cheap.route(val, 0.5)].mean()))
    fixed = fixed_mu_choices(bench, fit, taus, args.confidence, int(test.size))
    rows = []
    for tau, (mu, mu_ok) in zip(taus, fixed, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnreachableTargetWarning)
            routed = router.route_observations(fit.p_hat[test], fit.cost_hat[test], float(tau), confidence=args.confidence,
                                               deploy_queries=int(test.size))
        c_choice = carrot.route(test, float(tau))
        f_choice = fit.head.route(fit.p_hat[test], fit.cost_hat[test], mu)
        row = {"seed": seed, "tau": float(tau), "proteus_reachable": bool(routed.reachable), "fixed_mu_reachable": mu_ok,
               "carrot_reachable": bool(carrot.calibrate(float(tau)).feasible), "proteus_mu": float(routed.mu.mean())}
        for name, choice in (("proteus", routed.indices), ("carrot", c_choice), ("fixed_mu", f_choice)):
            row[f"{name}_acc"] = float(bench.scores[test, choice].mean())
            row[f"{name}_usd"] = 1000 * float(bench.costs[test, choice].mean())
        rows.append(row)
    summary = result.summary
    return {"seed": seed, "wall_s": wall, "train_wall_s": summary["wall_time_s"], "tau_span": summary.get("tau_span"),
            "reachable": summary.get("reachable_accuracy"), "achievable": summary.get("achievable_accuracy"),
            "collapsed": summary.get("collapsed"), "rows": rows, "router": router, "fit": fit, "test": test}


def _seed_line(res: dict[str, Any]) -> str:
    rows = res["rows"]
    met = {name: sum(r[f"{name}_acc"] >= r["tau"] for r in rows) for name in ("proteus", "carrot", "fixed_mu")}
    p = np.array([r["proteus_usd"] for r in rows])
    c = np.array([r["carrot_usd"] for r in rows])
    f = np.array([r["fixed_mu_usd"] for r in rows])
    unreachable = sum(not r["proteus_reachable"] for r in rows)
    low, high = res["reachable"]
    span = res["tau_span"]
    span_text = f"{span:>5.2f}" if span is not None and np.isfinite(span) else "  n/a"  # undefined: no achievable span on validation
    return (f"{res['seed']:>4} {span_text} [{low:.3f}, {high:.3f}] {met['proteus']:>2}/{len(rows)} ({unreachable} unr.) "
            f"{met['carrot']:>2}/{len(rows)} {met['fixed_mu']:>2}/{len(rows)}   {p.sum() / c.sum():>5.3f} {np.max(p / c):>5.2f}   "
            f"{p.sum() / f.sum():>5.3f} {np.max(p / f):>5.2f}   {res['train_wall_s']:>5.0f}")


def report(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Print the per-seed table and the distribution over seeds; return the figures."""
    print(f"\n{'seed':>4} {'span':>5} {'reachable (val)':>16} {'PROTEUS met':>18} {'CARROT':>6} {'fixed-μ':>7}   "
          f"{'vs CARROT':>11}   {'vs fixed-μ':>11}   {'train s':>7}")
    print(f"{'':>4} {'':>5} {'':>16} {'':>18} {'':>6} {'':>7}   {'pool':>5} {'worst':>5}   {'pool':>5} {'worst':>5}")
    for res in results:
        print(_seed_line(res))
    rows = [r for res in results for r in res["rows"]]
    spans = np.array([np.nan if res["tau_span"] is None else res["tau_span"] for res in results], dtype=float)
    ratio_c = np.array([sum(r["proteus_usd"] for r in res["rows"]) / sum(r["carrot_usd"] for r in res["rows"]) for res in results])
    ratio_f = np.array([sum(r["proteus_usd"] for r in res["rows"]) / sum(r["fixed_mu_usd"] for r in res["rows"]) for res in results])
    worst_c = np.array([max(r["proteus_usd"] / r["carrot_usd"] for r in res["rows"]) for res in results])
    figures = {
        "seeds": [res["seed"] for res in results],
        # an undefined span (no achievable range on a tiny validation split) counts as the worst
        "span_median": float(np.median(np.nan_to_num(spans, nan=0.0))), "span_worst": float(np.min(np.nan_to_num(spans, nan=0.0))),
        "seeds_span_ge_0.9": int((spans >= 0.9).sum()), "seeds_span_undefined": int(np.isnan(spans).sum()),
        "met_proteus": float(np.mean([r["proteus_acc"] >= r["tau"] for r in rows])),
        "met_carrot": float(np.mean([r["carrot_acc"] >= r["tau"] for r in rows])),
        "met_fixed_mu": float(np.mean([r["fixed_mu_acc"] >= r["tau"] for r in rows])),
        "met_proteus_where_certified": float(np.mean([r["proteus_acc"] >= r["tau"] for r in rows if r["proteus_reachable"]] or [np.nan])),
        "unreachable_proteus": int(sum(not r["proteus_reachable"] for r in rows)),
        "cost_vs_carrot_pooled": float(sum(r["proteus_usd"] for r in rows) / sum(r["carrot_usd"] for r in rows)),
        "cost_vs_carrot_seed_median": float(np.median(ratio_c)), "cost_vs_carrot_seed_worst": float(np.max(ratio_c)),
        "cost_vs_carrot_worst_target": float(np.max(worst_c)),
        "cost_vs_fixed_mu_pooled": float(sum(r["proteus_usd"] for r in rows) / sum(r["fixed_mu_usd"] for r in rows)),
        "cost_vs_fixed_mu_seed_median": float(np.median(ratio_f)), "cost_vs_fixed_mu_seed_worst": float(np.max(ratio_f)),
        "train_wall_s_median": float(np.median([res["train_wall_s"] for res in results])),
    }
    print(f"\nover {len(results)} seeds: span median {figures['span_median']:.2f}, worst {figures['span_worst']:.2f} "
          f"({figures['seeds_span_ge_0.9']} seeds >= 0.9)")
    print(f"floors met: PROTEUS {figures['met_proteus']:.1%} ({figures['unreachable_proteus']} targets it declared uncertifiable; "
          f"{figures['met_proteus_where_certified']:.1%} of the others), CARROT {figures['met_carrot']:.1%}, "
          f"fixed-μ {figures['met_fixed_mu']:.1%}")
    print(f"cost vs CARROT: pooled {figures['cost_vs_carrot_pooled']:.3f}, per seed median {figures['cost_vs_carrot_seed_median']:.3f}, "
          f"worst seed {figures['cost_vs_carrot_seed_worst']:.3f}, worst single target {figures['cost_vs_carrot_worst_target']:.2f}")
    print(f"cost vs fixed-μ: pooled {figures['cost_vs_fixed_mu_pooled']:.3f}, per seed median {figures['cost_vs_fixed_mu_seed_median']:.3f}, "
          f"worst seed {figures['cost_vs_fixed_mu_seed_worst']:.3f}")
    print(f"training wall time: median {figures['train_wall_s_median']:.0f} s")
    return figures


def speed(router: ProteusRouter, fit, test: np.ndarray, env_id: str = "Proteus-Synthetic-v0") -> dict:
    out = {}
    for name, policy in (("beta", BetaActorCriticPolicy), ("multiinput", "MultiInputPolicy")):
        env = gym.make(env_id)
        model = PPO(policy, env, n_steps=1024, batch_size=256, n_epochs=5, seed=0, device="cpu")
        start = time.perf_counter()
        model.learn(8192)
        out[f"ppo_steps_per_s_{name}"] = 8192 / (time.perf_counter() - start)
    out["beta_vs_multiinput"] = out["ppo_steps_per_s_beta"] / out["ppo_steps_per_s_multiinput"]
    reps = int(np.ceil(1_000_000 / test.size))
    p_hat = np.tile(fit.p_hat[test], (reps, 1))[:1_000_000]
    c_hat = np.tile(fit.cost_hat[test], (reps, 1))[:1_000_000]
    router.route_observations(p_hat[:1000], c_hat[:1000], 0.6)
    for threads in (1, 2):  # batched routing is compute-bound: both cores help on a quiet machine
        torch.set_num_threads(threads)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            router.route_observations(p_hat, c_hat, 0.6)
            times.append(time.perf_counter() - start)
        out[f"route_decisions_per_s_{threads}_threads"] = p_hat.shape[0] / min(times)
    torch.set_num_threads(1)  # a single query: thread hand-off costs more than it saves
    latencies = []
    for i in range(2000):
        start = time.perf_counter()
        router.route_observations(p_hat[i : i + 1], c_hat[i : i + 1], 0.6)
        latencies.append(time.perf_counter() - start)
    out["single_query_p50_ms"] = 1000 * float(np.median(latencies))
    return out




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", default=["0-4"], help="split seeds: 10-29, or 0 1 2, or 0-4,7")
    parser.add_argument("--benchmark", choices=sorted(ENV_IDS), default="synthetic")
    parser.add_argument("--data", default=None, help="data file of a real benchmark")
    parser.add_argument("--models", default=None, help="comma-separated model subset, e.g. gpt-4-1106-preview,zero-one-ai/Yi-34B-Chat")
    parser.add_argument("--confidence", type=float, default=0.95, help="probability with which each certified floor must hold")
    parser.add_argument("--timesteps", type=int, default=None, help="default: the config's n_timesteps")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="artifacts/agent_targets")
    parser.add_argument("--speed-only", default=None, metavar="ARTIFACT", help="only the speed figures, with this trained artifact")
    args = parser.parse_args()
    env_id = ENV_IDS[args.benchmark]
    config = load_config(env_id)
    if args.speed_only:
        router = ProteusRouter.load(args.speed_only)
        seed = int(json.loads((Path(args.speed_only) / "benchmark.json").read_text())["env_kwargs"]["split_seed"])
        env = ProteusRoutingEnv(**{**gym.spec(env_id).kwargs, **config.get("env_kwargs", {}), "split_seed": seed})
        for key, value in speed(router, env.head_fit, env.benchmark.split_index("test"), env_id).items():
            print(f"{key}: {value:,.3f}")
        return
    for assignment in args.overrides:
        apply_override(config, assignment)
    if args.models:
        config.setdefault("env_kwargs", {})["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    out_root = Path(args.out)
    results = []
    for seed in parse_seeds(args.seeds):
        results.append(evaluate_seed(seed, env_id, config, args, out_root))
        print(_seed_line(results[-1]), flush=True)
    figures = report(results)
    out_root.mkdir(parents=True, exist_ok=True)
    record = {"figures": figures, "per_seed": [{k: v for k, v in res.items() if k not in ("router", "fit", "test")} for res in results],
              "benchmark": args.benchmark, "models": args.models, "config_overrides": args.overrides, "confidence": args.confidence}
    (out_root / "agent_targets.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
