"""The agent issue's targets, measured in one run: compliance, cost against CARROT, speed.

For each seed (the seed changes the split, the routing head's folds and the training):

1. train the PROTEUS agent on ``Proteus-Synthetic-v0`` with the default config;
2. build a 9-point τ grid over the feasible range, from the validation accuracy of the cheapest
   model to the highest τ that a validation-calibrated CARROT (same p̂, same per-query ĉ, same
   margin) can still certify; validation data only, nothing is chosen on test;
3. route the whole test split at every τ with PROTEUS (validation-calibrated τ map) and with
   CARROT, both with the 95 % one-sided margin and without one (raw);
4. report realized test accuracy and USD per 1K queries per τ.

Then: training wall time per seed, PPO steps/s with BetaActorCriticPolicy against
MultiInputPolicy in this run, ``ProteusRouter`` batched decisions per second with the observations
given, and single-query latency.

    python benchmarks/agent_targets.py --seeds 0 1 2 3 4 [--timesteps N] [--set ppo.learning_rate=0.001]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO

from agents.baselines import CalibrationSettings, CarrotRouter, cheapest_router
from agents.proteus.policies import BetaActorCriticPolicy
from agents.proteus.router import ProteusRouter, UnreachableTargetWarning
from agents.proteus.train import apply_override, load_config, train
from proteus_env.env import ProteusRoutingEnv

CONFIDENCE = 0.95


def tau_grid(carrot: CarrotRouter, cheapest_val_accuracy: float, n: int = 9) -> np.ndarray:
    """From the cheapest model's validation accuracy to the highest τ CARROT certifies with the margin."""
    accuracy, _ = carrot.validation_curve()
    best = float(np.max(accuracy))
    candidates = np.arange(cheapest_val_accuracy, best, 0.001)
    certified = [t for t in candidates if carrot.target(float(t)) <= best]
    high = max(certified) if certified else best
    return np.linspace(cheapest_val_accuracy, high, n)


def evaluate_seed(seed: int, config: dict, timesteps: int | None, out_root: Path) -> dict:
    start = time.perf_counter()
    result = train(config=config, out_dir=out_root / f"seed{seed}", seed=seed, timesteps=timesteps)
    wall = time.perf_counter() - start
    router = ProteusRouter.load(result.out_dir)
    env = ProteusRoutingEnv(**{**gym.spec("Proteus-Synthetic-v0").kwargs, **config.get("env_kwargs", {}), "split_seed": seed, "split": "val"})
    bench, fit = env.benchmark, env.head_fit
    test, val = bench.splits["test"], bench.splits["val"]
    carrot_margin = CarrotRouter(bench, fit, CalibrationSettings(confidence=CONFIDENCE))
    carrot_raw = CarrotRouter(bench, fit)
    cheap = cheapest_router(bench, fit)
    cheap_val = float(bench.scores[val, cheap.route(val, 0.5)].mean())
    taus = tau_grid(carrot_margin, cheap_val)
    rows = []
    for tau in taus:
        for label, conf, carrot in (("margin", CONFIDENCE, carrot_margin), ("raw", None, carrot_raw)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnreachableTargetWarning)
                routed = router.route_observations(fit.p_hat[test], fit.cost_hat[test], float(tau), confidence=conf)
            p_choice = routed.indices
            c_choice = carrot.route(test, float(tau))
            rows.append({
                "seed": seed, "tau": float(tau), "variant": label,
                "proteus_acc": float(bench.scores[test, p_choice].mean()),
                "proteus_usd": 1000 * float(bench.costs[test, p_choice].mean()),
                "proteus_mu": float(routed.mu.mean()),
                "carrot_acc": float(bench.scores[test, c_choice].mean()),
                "carrot_usd": 1000 * float(bench.costs[test, c_choice].mean()),
            })
    return {"seed": seed, "wall_s": wall, "train_wall_s": result.summary["wall_time_s"], "rows": rows, "router": router, "fit": fit, "test": test}


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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--timesteps", type=int, default=None, help="default: the config's n_timesteps")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default="artifacts/agent_targets")
    parser.add_argument("--speed-only", default=None, metavar="ARTIFACT", help="only the speed figures, with this trained artifact")
    args = parser.parse_args()
    config = load_config("Proteus-Synthetic-v0")
    if args.speed_only:
        router = ProteusRouter.load(args.speed_only)
        seed = int(json.loads((Path(args.speed_only) / "benchmark.json").read_text())["env_kwargs"]["split_seed"])
        env = ProteusRoutingEnv(**{**gym.spec("Proteus-Synthetic-v0").kwargs, **config.get("env_kwargs", {}), "split_seed": seed})
        for key, value in speed(router, env.head_fit, env.benchmark.splits["test"]).items():
            print(f"{key}: {value:,.3f}")
        return
    for assignment in args.overrides:
        apply_override(config, assignment)
    out_root = Path(args.out)
    results = [evaluate_seed(seed, config, args.timesteps, out_root) for seed in args.seeds]
    rows = [r for res in results for r in res["rows"]]
    for variant in ("margin", "raw"):
        sub = [r for r in rows if r["variant"] == variant]
        print(f"\n== {variant} ({'95 % one-sided margin' if variant == 'margin' else 'no margin'}) ==")
        print(f"{'seed':>4} {'tau':>6} {'PROTEUS acc':>11} {'$/1K':>7} {'mu':>5} {'met':>4} | {'CARROT acc':>10} {'$/1K':>7} {'met':>4}")
        for r in sub:
            print(f"{r['seed']:>4} {r['tau']:>6.3f} {r['proteus_acc']:>11.3f} {r['proteus_usd']:>7.3f} {r['proteus_mu']:>5.2f} "
                  f"{'yes' if r['proteus_acc'] >= r['tau'] else 'NO':>4} | {r['carrot_acc']:>10.3f} {r['carrot_usd']:>7.3f} "
                  f"{'yes' if r['carrot_acc'] >= r['tau'] else 'NO':>4}")
        p_comp = np.mean([r["proteus_acc"] >= r["tau"] for r in sub])
        c_comp = np.mean([r["carrot_acc"] >= r["tau"] for r in sub])
        p_usd = np.mean([r["proteus_usd"] for r in sub])
        c_usd = np.mean([r["carrot_usd"] for r in sub])
        print(f"compliance over (tau, seed) pairs: PROTEUS {p_comp:.1%}  CARROT {c_comp:.1%}")
        print(f"mean $/1K: PROTEUS {p_usd:.3f}  CARROT {c_usd:.3f}  ratio {p_usd / c_usd:.3f}")
    walls = [res["train_wall_s"] for res in results]
    print(f"\ntraining wall time per seed: {', '.join(f'{w:.0f} s' for w in walls)} (max {max(walls):.0f} s)")
    figures = speed(results[0]["router"], results[0]["fit"], results[0]["test"])
    for key, value in figures.items():
        print(f"{key}: {value:,.3f}")
    summary = {"rows": rows, "train_wall_s": walls, "speed": figures, "config_overrides": args.overrides}
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "agent_targets.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
