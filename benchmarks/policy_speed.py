"""PPO training speed: BetaActorCriticPolicy against SB3's MultiInputPolicy on Proteus-Synthetic-v0.

Same env, same PPO settings, same process, one torch thread; the two policies alternate so that
machine load affects both alike, and the median of the repeats is reported. Prints steps/s of
each and their ratio (target: Beta / MultiInput >= 0.8).

    python benchmarks/policy_speed.py [--timesteps 8192] [--n-steps 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import torch as th
from stable_baselines3 import PPO

import proteus_env  # noqa: F401  (registers the ids)
from agents.proteus.policies import BetaActorCriticPolicy

POLICIES = {"BetaActorCriticPolicy": BetaActorCriticPolicy, "MultiInputPolicy": "MultiInputPolicy"}


def steps_per_second(policy: object, timesteps: int, n_steps: int, seed: int) -> float:
    env = gym.make("Proteus-Synthetic-v0")
    model = PPO(policy, env, n_steps=n_steps, seed=seed, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    elapsed = time.perf_counter() - start
    env.close()
    return model.num_timesteps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=8192)
    parser.add_argument("--n-steps", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)
    gym.make("Proteus-Synthetic-v0").close()  # warm the benchmark cache outside the timings

    results: dict[str, list[float]] = {name: [] for name in POLICIES}
    for _ in range(args.repeats):
        for name, policy in POLICIES.items():
            results[name].append(steps_per_second(policy, args.timesteps, args.n_steps, args.seed))
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"PPO on Proteus-Synthetic-v0: {args.timesteps} timesteps, n_steps={args.n_steps}, 1 env, 1 torch thread, "
          f"median of {args.repeats}")
    for name, values in results.items():
        print(f"  {name:22s} {median[name]:8.0f} steps/s   (runs: {', '.join(f'{v:.0f}' for v in values)})")
    ratio = median["BetaActorCriticPolicy"] / median["MultiInputPolicy"]
    print(f"  ratio Beta / MultiInput: {ratio:.2f}  (target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'})")


if __name__ == "__main__":
    main()
