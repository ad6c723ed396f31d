"""Environment speed, measured in one run and reported as ratios.

Prints steps per second of:
  * CartPole-v1, unwrapped (the reference of a cheap Gymnasium env);
  * a raw numpy score + argmax loop over one batch of queries (the routing work with no env),
    and the same loop one query at a time;
  * ProteusRoutingEnv unwrapped, and through gym.make (with its checker/order wrappers);
  * ProteusRoutingEnv unwrapped with session_state=True (feedback delay 10, rate 0.3, sessions of
    1,000 queries: the issue-12 observation, computed from revealed outcomes only);
  * ProteusVectorEnv (the batched path) with the same batch size as the numpy loop.

Targets (gym core issue): unwrapped single env >= 1.0x CartPole, with and without session state
(issue 12); batched path >= 25 % of the numpy loop at the same batch size.

    python benchmarks/env_speed.py [--steps 200000] [--batch 1024]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import proteus_env
from proteus_env import ProteusVectorEnv


def _rate(step, n: int) -> float:
    start = time.perf_counter()
    step(n)
    return n / (time.perf_counter() - start)


def cartpole(n: int) -> None:
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=0)
    for i in range(n):
        _, _, terminated, truncated, _ = env.step(i & 1)
        if terminated or truncated:
            env.reset()


def proteus_single(env, n: int) -> None:
    env.reset(seed=0)
    actions = [np.array([m], dtype=np.float32) for m in np.linspace(0, 1, 97)]
    for i in range(n):
        _, _, terminated, truncated, _ = env.step(actions[i % 97])
        if terminated or truncated:
            env.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000, help="steps of each single-env measurement")
    parser.add_argument("--batch", type=int, default=1024, help="sessions of the batched path and the numpy loop")
    args = parser.parse_args()

    unwrapped = gym.make("Proteus-Synthetic-v0").unwrapped  # fits the head once (cached for the rest)
    made = gym.make("Proteus-Synthetic-v0")
    stateful = gym.make("Proteus-Synthetic-v0", session_state=True, feedback_delay=10, feedback_rate=0.3, session_length=1000).unwrapped
    fit = unwrapped.head_fit
    head = fit.head
    rows_pool = unwrapped.benchmark.split_index("train")
    rng = np.random.default_rng(0)
    batch = args.batch
    n_batches = max(20, args.steps // batch)
    prior = head.config.quality_scale * head.quality_prior

    def numpy_loop(n_iter: int) -> None:
        for _ in range(n_iter):
            rows = rows_pool[rng.integers(0, rows_pool.size, batch)]
            mu = rng.random(batch)
            w = (1.0 - mu) ** head.config.gamma * head.config.cost_scale
            (fit.p_hat[rows] + mu[:, None] * prior - w[:, None] * fit.cost_hat[rows]).argmax(axis=1)

    def numpy_per_query(n_iter: int) -> None:
        for i in range(n_iter):
            row = rows_pool[i % rows_pool.size]
            mu = (i % 97) / 96
            (fit.p_hat[row] + mu * prior - (1.0 - mu) ** head.config.gamma * head.config.cost_scale * fit.cost_hat[row]).argmax()

    venv = ProteusVectorEnv(batch)
    venv.reset(seed=0)
    actions = [np.full((batch, 1), m, dtype=np.float32) for m in np.linspace(0, 1, 7)]

    def vector(n_iter: int) -> None:
        for i in range(n_iter):
            venv.step(actions[i % 7])

    results = {
        "CartPole-v1 unwrapped": _rate(cartpole, args.steps),
        "numpy score+argmax, one query per call": _rate(numpy_per_query, args.steps),
        f"numpy score+argmax, batch {batch}": _rate(numpy_loop, n_batches) * batch,
        "ProteusRoutingEnv unwrapped": _rate(lambda n: proteus_single(unwrapped, n), args.steps),
        "ProteusRoutingEnv via gym.make": _rate(lambda n: proteus_single(made, n), args.steps),
        "ProteusRoutingEnv unwrapped, session_state": _rate(lambda n: proteus_single(stateful, n), args.steps),
        f"ProteusVectorEnv, {batch} sessions": _rate(vector, n_batches) * batch,
    }
    cart = results["CartPole-v1 unwrapped"]
    loop = results[f"numpy score+argmax, batch {batch}"]
    print(f"{'path':45s} {'steps/s':>14s} {'x CartPole':>11s} {'x numpy loop':>13s}")
    for name, rate in results.items():
        print(f"{name:45s} {rate:14,.0f} {rate / cart:11.2f} {rate / loop:13.3f}")
    single_ratio = results["ProteusRoutingEnv unwrapped"] / cart
    session_ratio = results["ProteusRoutingEnv unwrapped, session_state"] / cart
    batched_ratio = results[f"ProteusVectorEnv, {batch} sessions"] / loop
    print(f"\nunwrapped single env / CartPole = {single_ratio:.2f} (target >= 1.0): {'met' if single_ratio >= 1.0 else 'MISSED'}")
    print(f"session-state env / CartPole   = {session_ratio:.2f} (target >= 1.0): {'met' if session_ratio >= 1.0 else 'MISSED'}")
    print(f"batched path / numpy loop      = {batched_ratio:.2f} (target >= 0.25): {'met' if batched_ratio >= 0.25 else 'MISSED'}")
    print(f"(proteus_env {proteus_env.__version__}, numpy {np.__version__}, gymnasium {gym.__version__})")


if __name__ == "__main__":
    main()
