"""Per-session compliance (issue 12): test-split sessions of L queries, realized feedback, every router.

An operator's SLA is a floor on a session's *realized* accuracy. Here the test split of a seed is
cut into sessions of ``length`` queries (seeded; with ``task_drift`` each session's queries come
from a drifting mixture of the benchmark's tasks instead). Each session is served under a target
τ (every τ of the grid, or a within-session ``tau_schedule`` between two targets), and realized
outcomes are fed back to the routers that take them, ``feedback_delay`` queries late and only for
a ``feedback_rate`` share of the queries (the same rule as the environment's
``session_state``): PROTEUS routers through :meth:`agents.proteus.router.ProteusRouter.session`,
CARROT and the PI-steered CARROT through their ``session``. Routers without a session (the other
baselines) route each session's queries in batches at the τ in force and ignore the feedback.

A session *meets its floor* when its realized accuracy is at least its (mean) τ; a router's
compliance is the share of its sessions that did; its cost is the mean USD per 1K queries.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from agents.baselines import CalibrationSettings, CarrotRouter, SteeredCarrotRouter
from proteus_env._validation import check_int
from proteus_env.benchmark import Benchmark
from proteus_env.routing_head import HeadFit
from proteus_env.session import TAU_SCHEDULES, TaskMix, check_feedback, tau_path

#: Columns of the per-session table (``EvalResult.sessions``).
SESSION_COLUMNS: tuple[str, ...] = ("seed", "router", "tau", "session", "tau_mean", "accuracy", "usd_per_1k", "met")
#: Columns of the per-router summary (``EvalResult.session_summary``).
SESSION_SUMMARY_COLUMNS: tuple[str, ...] = (
    "router", "compliance", "compliance_sd", "mean_accuracy", "mean_usd_per_1k", "mean_usd_per_1k_sd", "n_sessions", "n_seeds",
)
#: τ values of a within-session schedule are rounded to multiples of this (as the dynamic scenarios do).
TAU_QUANTUM = 0.005


@dataclasses.dataclass(frozen=True)
class SessionProtocol:
    """How the sessions are served.

    Attributes:
        length: Queries per session (default 500).
        feedback_delay: Queries until an outcome is revealed (0: before the next query).
        feedback_rate: Share of outcomes ever revealed, in [0, 1].
        tau_schedule: ``"constant"`` (one session per τ of the grid) or ``"step"``, ``"drift"``,
            ``"cyclic"`` (τ moves within each session between two targets, 20 % and 80 % into the
            achievable range; a session is judged against its mean τ).
        task_drift: Draw each session's queries from a drifting task mixture (start and end drawn
            per session, :class:`proteus_env.session.TaskMix` ``"drift"``) instead of a random
            split of the test set.

    Raises:
        ValueError: Naming the bad field and its value.
    """

    length: int = 500
    feedback_delay: int = 0
    feedback_rate: float = 1.0
    tau_schedule: str = "constant"
    task_drift: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", check_int(self.length, "session_length", minimum=2))
        delay, rate = check_feedback(self.feedback_delay, self.feedback_rate)
        object.__setattr__(self, "feedback_delay", delay)
        object.__setattr__(self, "feedback_rate", rate)
        if self.tau_schedule not in TAU_SCHEDULES:
            raise ValueError(f"`tau_schedule` must be one of {list(TAU_SCHEDULES)}, got {self.tau_schedule!r}.")
        object.__setattr__(self, "task_drift", bool(self.task_drift))


def session_plan(bench: Benchmark, rows: np.ndarray, protocol: SessionProtocol, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The sessions' rows ``(S, L)`` and reveal masks ``(S, L)`` for one seed.

    Without task drift: the rows shuffled and cut into ``S = rows.size // L`` sessions (one
    session drawn with replacement when the split is smaller than L). With it: ``S`` sessions of
    a drifting task mixture. The reveal mask is drawn with ``feedback_rate`` (all True at rate 1).
    """
    rows = np.asarray(rows, dtype=np.int64)
    length = protocol.length
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1212]))
    n_sessions = max(1, rows.size // length)
    if protocol.task_drift:
        plan = TaskMix("drift", bench.task, rows).draw(rng, n_sessions, length)
    elif rows.size < length:
        plan = rng.choice(rows, size=(1, length), replace=True)
    else:
        plan = rng.permutation(rows)[: n_sessions * length].reshape(n_sessions, length)
    revealed = rng.random(plan.shape) < protocol.feedback_rate if protocol.feedback_rate < 1.0 else np.ones(plan.shape, dtype=bool)
    return plan, revealed


def tau_paths(taus: Sequence[float], protocol: SessionProtocol, low: float, high: float) -> list[tuple[float, np.ndarray]]:
    """``(label, τ per query)`` for every target setting: each τ of the grid, or the one schedule between two targets."""
    length = protocol.length
    if protocol.tau_schedule == "constant":
        return [(float(t), np.full(length, float(t))) for t in taus]
    start, end = round(low + 0.2 * (high - low), 3), round(low + 0.8 * (high - low), 3)
    path = tau_path(protocol.tau_schedule, start, end, length)
    path = np.clip(np.round(np.round(path / TAU_QUANTUM) * TAU_QUANTUM, 10), min(start, end), max(start, end))
    return [(float(path.mean()), path)]


@dataclasses.dataclass(frozen=True)
class StreamingContender:
    """A router that serves sessions: ``open(tau)`` returns a session, ``step(sessions, rows)`` routes one query of each.

    ``step`` returns the chosen model per session; sessions take ``set_tau`` and ``observe``.
    """

    name: str
    open: Callable[[float], Any]
    step: Callable[[list[Any], np.ndarray], np.ndarray]


def proteus_streaming(name: str, router: Any, bench: Benchmark, fit: HeadFit, protocol: SessionProtocol, *, calibrated: bool,
                      confidence: float | None) -> StreamingContender:
    """A PROTEUS router as a streaming contender (its sessions of all τ routed with one policy call per step)."""

    def open_session(tau: float) -> Any:
        return router.session(tau, length=protocol.length, confidence=confidence, deploy_queries=protocol.length, calibrated=calibrated)

    def step(sessions: list[Any], rows: np.ndarray) -> np.ndarray:
        query = bench.embeddings[rows] if router.include_query else None
        decisions = router.route_sessions(sessions, fit.p_hat[rows], fit.cost_hat[rows], usd=bench.costs[rows], query=query)
        return np.array([d.index for d in decisions], dtype=np.int64)

    return StreamingContender(name, open_session, step)


def carrot_streaming(router: CarrotRouter, protocol: SessionProtocol) -> StreamingContender:
    """A CARROT (static or PI-steered) router as a streaming contender."""

    def open_session(tau: float) -> Any:
        return router.session(tau, length=protocol.length)

    def step(sessions: list[Any], rows: np.ndarray) -> np.ndarray:
        return np.array([session.route_row(int(row)).index for session, row in zip(sessions, rows, strict=True)], dtype=np.int64)

    return StreamingContender(router.name, open_session, step)


def serve_streaming(contender: StreamingContender, bench: Benchmark, plan: np.ndarray, revealed: np.ndarray, paths: np.ndarray,
                    delay: int) -> np.ndarray:
    """Serve ``N`` sessions in lock-step; returns the chosen model ``(N, L)``.

    Args:
        contender: The streaming router.
        bench: The benchmark (realized scores for the feedback).
        plan: ``(N, L)`` rows.
        revealed: ``(N, L)`` which outcomes are ever revealed.
        paths: ``(N, L)`` τ in force per query.
        delay: Queries until an outcome is revealed (the outcome of query ``j`` is observed right
            after query ``j + delay`` is routed, before the next one).
    """
    n, length = plan.shape
    sessions = [contender.open(float(paths[i, 0])) for i in range(n)]
    choice = np.empty((n, length), dtype=np.int64)
    for t in range(length):
        if t:
            for i in np.flatnonzero(paths[:, t] != paths[:, t - 1]):
                sessions[i].set_tau(float(paths[i, t]))
        choice[:, t] = contender.step(sessions, plan[:, t])
        j = t - delay
        if j >= 0:
            for i in np.flatnonzero(revealed[:, j]):
                sessions[i].observe(j, float(bench.scores[plan[i, j], choice[i, j]]))
    return choice


def serve_batches(route: Callable[[np.ndarray, float], tuple[np.ndarray, Any]], plan: np.ndarray, paths: np.ndarray) -> np.ndarray:
    """Route every session's queries in batches of equal τ (for routers without sessions); returns ``(N, L)`` choices."""
    choice = np.empty(plan.shape, dtype=np.int64)
    for i in range(plan.shape[0]):
        for tau in np.unique(paths[i]):
            where = paths[i] == tau
            picked, _ = route(plan[i, where], float(tau))
            choice[i, where] = np.asarray(picked, dtype=np.int64)
    return choice


def session_records(name: str, seed: int, bench: Benchmark, plan: np.ndarray, choice: np.ndarray, paths: np.ndarray,
                    labels: np.ndarray) -> list[dict[str, Any]]:
    """One record per session: realized accuracy, USD per 1K and whether the floor (mean τ) was met."""
    realized = bench.scores[plan, choice].astype(np.float64)
    usd = bench.costs[plan, choice]
    out = []
    per_label: dict[float, int] = {}
    for i in range(plan.shape[0]):
        label = float(labels[i])
        index = per_label.get(label, 0)
        per_label[label] = index + 1
        accuracy, tau_mean = float(realized[i].mean()), float(paths[i].mean())
        out.append({"seed": int(seed), "router": name, "tau": label, "session": index, "tau_mean": tau_mean, "accuracy": accuracy,
                    "usd_per_1k": 1000.0 * float(usd[i].mean()), "met": bool(accuracy >= tau_mean - 1e-12)})
    return out


def run_sessions(seed: int, bench: Benchmark, fit: HeadFit, rows: np.ndarray, taus: Sequence[float], low: float, high: float,
                 protocol: SessionProtocol, *, streaming: Sequence[StreamingContender] = (),
                 batch: Mapping[str, Callable[[np.ndarray, float], tuple[np.ndarray, Any]]] | None = None) -> list[dict[str, Any]]:
    """Per-session records of every contender on one seed's test sessions (:data:`SESSION_COLUMNS`)."""
    plan, revealed = session_plan(bench, rows, protocol, seed)
    settings = tau_paths(taus, protocol, low, high)
    all_plan = np.concatenate([plan] * len(settings))
    all_revealed = np.concatenate([revealed] * len(settings))
    all_paths = np.concatenate([np.broadcast_to(path, plan.shape) for _, path in settings])
    labels = np.repeat([label for label, _ in settings], plan.shape[0])
    out: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unreachable targets are reported as missed floors
        for contender in streaming:
            choice = serve_streaming(contender, bench, all_plan, all_revealed, all_paths, protocol.feedback_delay)
            out += session_records(contender.name, seed, bench, all_plan, choice, all_paths, labels)
        for name, route in (batch or {}).items():
            choice = serve_batches(route, all_plan, all_paths)
            out += session_records(name, seed, bench, all_plan, choice, all_paths, labels)
    return out


def session_contenders(seed_contenders: Mapping[str, Any], bench: Benchmark, fit: HeadFit, confidences: Sequence[float | None],
                       protocol: SessionProtocol) -> tuple[list[StreamingContender], dict[str, Callable[..., Any]]]:
    """Split one seed's contenders into streaming ones and batch ones, and add the session baselines.

    CARROT and the PI-steered CARROT are built anew for sessions: their certified floors (with a
    confidence) are about a session of ``length`` queries (``CalibrationSettings(confidence,
    deploy_queries=length)``). PROTEUS routers open sessions (calibrated at the same confidence
    for ``length`` queries; ``proteus_raw`` uncalibrated). Every other contender routes in batches.
    """
    streaming: list[StreamingContender] = []
    batch: dict[str, Callable[..., Any]] = {}
    for confidence in confidences:
        settings = CalibrationSettings(confidence=confidence, deploy_queries=protocol.length)
        for router in (CarrotRouter(bench, fit, settings), SteeredCarrotRouter(bench, fit, settings)):
            streaming.append(carrot_streaming(router, protocol))
    for name, contender in seed_contenders.items():
        if contender.family == "carrot":
            continue  # replaced by the session-sized CARROT above
        if contender.kind == "proteus":
            streaming.append(proteus_streaming(name, contender.router, bench, fit, protocol, calibrated=contender.calibrated,
                                               confidence=contender.confidence))
        else:
            batch[name] = contender.route
    return streaming, batch


def summarize_sessions(records: pd.DataFrame) -> pd.DataFrame:
    """One row per router: compliance (share of sessions meeting their floor; sd over seeds) and mean cost."""
    if records.empty:
        return pd.DataFrame(columns=list(SESSION_SUMMARY_COLUMNS))
    rows = []
    for router, part in records.groupby("router", sort=False):
        per_seed = part.groupby("seed")
        compliance_sd = per_seed["met"].mean().std(ddof=1) if per_seed.ngroups > 1 else float("nan")
        usd_sd = per_seed["usd_per_1k"].mean().std(ddof=1) if per_seed.ngroups > 1 else float("nan")
        rows.append({"router": router, "compliance": float(part["met"].mean()), "compliance_sd": float(compliance_sd),
                     "mean_accuracy": float(part["accuracy"].mean()), "mean_usd_per_1k": float(part["usd_per_1k"].mean()),
                     "mean_usd_per_1k_sd": float(usd_sd), "n_sessions": int(part.shape[0]), "n_seeds": int(per_seed.ngroups)})
    return pd.DataFrame(rows, columns=list(SESSION_SUMMARY_COLUMNS))
