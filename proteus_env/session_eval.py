"""Policies measured on whole sessions: the path of the dual callback and the τ calibration for session-state policies.

When the observation depends on the session so far (``session_state``, or a budget's
``lambda_budget``), a policy's accuracy at τ is no longer one batched forward pass over rows
(:func:`proteus_env.policy_eval.accuracy_at_taus`): the rows are served as sessions, stepped in
lock-step in a :class:`~proteus_env.ProteusVectorEnv` that shares the environment, so the policy
sees exactly the observations of training (issue 12).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from proteus_env.policy_eval import BatchPolicy
from proteus_env.vector import ProteusVectorEnv


def needs_sessions(env: Any) -> bool:
    """Whether a policy of ``env`` must be measured on whole sessions (its observation depends on the session so far).

    True with ``session_state`` or a budget (``lambda_budget`` is observed); then
    :func:`session_accuracy_at_taus` replaces the batched :func:`accuracy_at_taus`.
    """
    return bool(getattr(env, "session_state", False) or getattr(env, "budget_usd_per_1k", None) is not None)


def session_plan_rows(rows: np.ndarray, length: int, *, seed: int = 0) -> np.ndarray:
    """``rows`` shuffled (seeded) and cut into ``(S, length)`` sessions, ``S = rows.size // length`` (the rest unused).

    Raises:
        ValueError: If ``rows`` cannot fill one session.
    """
    rows = np.asarray(rows, dtype=np.int64)
    n_sessions = rows.size // int(length)
    if n_sessions < 1:
        raise ValueError(f"{rows.size} rows cannot fill one session of {length} queries; use shorter sessions or more rows.")
    shuffled = rows[np.random.default_rng([int(seed), 15485863]).permutation(rows.size)]
    return shuffled[: n_sessions * int(length)].reshape(n_sessions, int(length))


def session_accuracy_at_taus(policy: BatchPolicy, env: Any, rows: np.ndarray, taus: np.ndarray, *, seed: int = 0,
                             max_envs: int = 4096) -> dict[str, Any]:
    """Realized accuracy of ``policy`` at every τ, served as whole sessions of ``env`` (the session-state path).

    The rows are cut into sessions of ``env.session_length`` (:func:`session_plan_rows`); every τ
    serves the same sessions, at a constant τ (``tau_path``, whatever ``env.tau_schedule``), with
    ``env``'s feedback settings (delay, rate: reveal masks drawn with ``seed``) and ``env``'s λ
    tables. They are stepped in lock-step in a :class:`~proteus_env.ProteusVectorEnv` sharing
    ``env`` (one policy call per step for all of them), so the policy sees exactly the
    observations of training.

    Args:
        policy: Batched deterministic policy.
        env: The :class:`~proteus_env.ProteusRoutingEnv` whose settings, head and λ tables to use.
        rows: Benchmark rows to serve (for example the validation split).
        taus: ``(B,)`` targets.
        seed: Seed of the session cut and of the reveal masks.
        max_envs: Sessions stepped at once at most (memory bound).

    Returns:
        ``{"accuracy", "usd_per_1k", "mu_mean", "compliance", "budget_cost"}``, each ``(B,)``:
        mean realized accuracy, USD per 1K, mean μ, share of sessions meeting τ, and the mean
        budget constraint signal (NaN without a budget).
    """
    taus = np.asarray(taus, dtype=np.float64).reshape(-1)
    length = int(env.session_length)
    plan = session_plan_rows(rows, length, seed=seed)
    n_sessions = plan.shape[0]
    jobs = np.repeat(np.arange(taus.size), n_sessions)  # (B·S,) τ index of every session
    session_rows = np.tile(plan, (taus.size, 1))
    accuracy, usd, mu_sum, met = (np.zeros(jobs.size) for _ in range(4))
    per_chunk = max(1, int(max_envs))
    for start in range(0, jobs.size, per_chunk):
        part = slice(start, min(start + per_chunk, jobs.size))
        n = part.stop - part.start
        venv = ProteusVectorEnv(n, template=env)
        tau = taus[jobs[part]]
        obs, _ = venv.reset(seed=[int(seed), start], options={"tau_path": np.repeat(tau[:, None], length, axis=1),
                                                              "tau": tau, "rows": session_rows[part]})
        for _ in range(length):
            actions = np.asarray(policy(obs))
            if env.action_mode == "mu":
                actions = np.clip(np.asarray(actions, dtype=np.float32).reshape(n, -1), 0.0, 1.0)
            obs, _, terminated, _, info = venv.step(actions)
            step_info = info["final_info"] if terminated[0] else info
            if "mu" in step_info:
                mu_sum[part] += step_info["mu"]
        accuracy[part] = step_info["session_accuracy"]
        usd[part] = step_info["session_usd_cost"]
        met[part] = step_info["is_success"]
    budget = getattr(env, "budget_usd_per_1k", None)
    out: dict[str, list[float]] = {"accuracy": [], "usd_per_1k": [], "mu_mean": [], "compliance": [], "budget_cost": []}
    for b in range(taus.size):
        mine = jobs == b
        out["accuracy"].append(float(accuracy[mine].mean()))
        out["usd_per_1k"].append(1000.0 * float(usd[mine].sum()) / (n_sessions * length))
        out["mu_mean"].append(float(mu_sum[mine].sum()) / (n_sessions * length) if env.action_mode == "mu" else float("nan"))
        out["compliance"].append(float(met[mine].mean()))
        out["budget_cost"].append(float("nan") if budget is None else out["usd_per_1k"][-1] / budget - 1.0)
    return {key: np.array(values) for key, values in out.items()}
