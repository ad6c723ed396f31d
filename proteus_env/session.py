"""Sessions as sequential problems: realized feedback, τ schedules and task mixtures (issue 12).

Pure numpy, no torch, shared by :class:`~proteus_env.ProteusRoutingEnv`,
:class:`~proteus_env.ProteusVectorEnv` and the routers' streaming sessions (``agents``), so that
a deployed router sees exactly what training saw:

* :func:`session_features` is the one definition of the session-state observation (``progress``,
  ``running_accuracy``, ``accuracy_slack``, ``revealed`` and, with a budget, ``spend``), computed
  only from outcomes revealed so far; :class:`SessionLedger` keeps the counts it needs when
  outcomes arrive one by one (``observe(query_id, score)``).
* :func:`tau_path` holds the shapes of the τ schedules (``step``, ``drift``, ``cyclic``), also
  used by the dynamic-target scenarios of ``agents.evaluation.dynamic``.
* :class:`TaskMix` draws a session's queries from a (possibly drifting) mixture of the
  benchmark's tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from proteus_env._validation import check_int, check_number, check_positive

#: Named τ schedules of ``tau_schedule`` (a callable of progress is accepted too).
TAU_SCHEDULES: tuple[str, ...] = ("constant", "step", "drift", "cyclic")
#: Full periods of the ``cyclic`` schedule over one session (or one stream).
CYCLIC_PERIODS = 2
#: Observation keys added by ``session_state=True`` (``spend`` only with a budget).
SESSION_KEYS: tuple[str, ...] = ("progress", "running_accuracy", "accuracy_slack", "revealed")
#: The session-state key added with ``budget_usd_per_1k``.
SPEND_KEY = "spend"
#: Names of the constraints, in the order of ``info["costs"]``.
CONSTRAINTS: tuple[str, ...] = ("accuracy", "budget")
#: Named task mixtures of ``task_mix`` (besides a mapping or a pair of mappings).
TASK_MIXES: tuple[str, ...] = ("uniform", "drift")

TauSchedule = str | Callable[[float], float]


# ---------------------------------------------------------------------------- τ schedules
def tau_path(name: str, start: float | np.ndarray, end: float | np.ndarray, length: int) -> np.ndarray:
    """τ at every step of a session (or stream) of ``length`` queries, from ``start`` towards ``end``.

    * ``constant``: ``start`` throughout;
    * ``step``: ``start`` for the first half (``t < length // 2``), ``end`` for the second;
    * ``drift``: linear from ``start`` (first query) to ``end`` (last query);
    * ``cyclic``: a sine between the two with :data:`CYCLIC_PERIODS` periods, starting mid-way
      (``(start + end)/2 + (end − start)/2 · sin(2π·periods·t/length)``).

    ``start`` and ``end`` may be ``(n,)`` arrays (one per session): the result is then ``(n, length)``
    and row ``i`` is bit-identical to ``tau_path(name, start[i], end[i], length)``.

    Raises:
        ValueError: On an unknown name or ``length < 1``.
    """
    if name not in TAU_SCHEDULES:
        raise ValueError(f"`tau_schedule` must be a callable of progress or one of {list(TAU_SCHEDULES)}, got {name!r}.")
    length = check_int(length, "length", minimum=1)
    start = np.asarray(start, dtype=np.float64)[..., None]
    end = np.asarray(end, dtype=np.float64)[..., None]
    t = np.arange(length, dtype=np.float64)
    if name == "constant":
        path = start + 0.0 * t
    elif name == "step":
        path = np.where(t < length // 2, start, end)
    elif name == "drift":
        path = start + (end - start) * (t / max(length - 1, 1))
    else:
        path = (start + end) / 2.0 + (end - start) / 2.0 * np.sin(2.0 * np.pi * CYCLIC_PERIODS * t / length)
    low, high = np.minimum(start, end), np.maximum(start, end)
    return np.clip(path, low, high)


def check_tau_schedule(schedule: Any, name: str = "tau_schedule") -> TauSchedule:
    """Return ``schedule`` after checking it is a callable or one of :data:`TAU_SCHEDULES`.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    if callable(schedule):
        return schedule
    if isinstance(schedule, str) and schedule in TAU_SCHEDULES:
        return schedule
    raise ValueError(f"`{name}` must be a callable of progress or one of {list(TAU_SCHEDULES)}, got {schedule!r}.")


def callable_tau_path(schedule: Callable[[float], float], length: int, name: str = "tau_schedule") -> np.ndarray:
    """τ at every step from a callable of progress ``t / length`` (each value checked to lie in [0, 1]).

    Raises:
        ValueError: Naming ``name``, the progress and the value, if a value is not a number in [0, 1].
    """
    path = np.empty(int(length))
    for t in range(int(length)):
        value = schedule(t / length)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` returned {value!r} at progress {t / length:g}; it must return a τ in [0, 1].") from None
        if not 0.0 <= number <= 1.0:  # also NaN
            raise ValueError(f"`{name}` returned {value!r} at progress {t / length:g}; it must return a τ in [0, 1].")
        path[t] = number
    return path


def check_tau_path(path: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """An explicit τ path (``options["tau_path"]``) as float64 of ``shape``, every value in [0, 1].

    Raises:
        ValueError: Naming ``name``, on a wrong shape or a value outside [0, 1] (or NaN).
    """
    try:
        array = np.asarray(path, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be an array of τ values, got {path!r}.") from None
    try:
        array = np.broadcast_to(array, shape).copy()
    except ValueError:
        raise ValueError(f"`{name}` must have shape {shape} (or broadcast to it), got {array.shape}.") from None
    bad = ~((array >= 0.0) & (array <= 1.0))
    if bad.any():
        raise ValueError(f"`{name}` must hold τ values in [0, 1], got {array[bad].reshape(-1)[0]!r}.")
    return array


# ---------------------------------------------------------------------------- feedback and the session state
def check_feedback(delay: Any, rate: Any) -> tuple[int, float]:
    """``(feedback_delay, feedback_rate)`` after checking an integer >= 0 and a number in [0, 1].

    Raises:
        ValueError: Naming the argument and its value.
    """
    return check_int(delay, "feedback_delay", minimum=0), check_number(rate, "feedback_rate", low=0.0, high=1.0)


def check_budget(budget_usd_per_1k: Any) -> float | None:
    """``budget_usd_per_1k`` as a finite float > 0, or ``None`` (no budget).

    Raises:
        ValueError: Naming the argument and its value.
    """
    return None if budget_usd_per_1k is None else check_positive(budget_usd_per_1k, "budget_usd_per_1k")


def session_observation_spaces(budget: bool) -> dict[str, spaces.Box]:
    """The ``Box`` of every session-state key (``spend`` only with a budget)."""
    unit = spaces.Box(0.0, 1.0, (1,), np.float32)
    out = {"progress": unit, "running_accuracy": unit, "accuracy_slack": spaces.Box(-1.0, 1.0, (1,), np.float32), "revealed": unit}
    if budget:
        out[SPEND_KEY] = spaces.Box(0.0, np.inf, (1,), np.float32)
    return out


def session_values(t: Any, length: int, n_revealed: Any, revealed_sum: Any, tau: Any, usd_sum: Any = None,
                   session_budget: float | None = None) -> tuple[Any, ...]:
    """The values of :func:`session_features`, as a tuple in the order of :data:`SESSION_KEYS` (then ``spend``).

    The one computation behind the session state (the environments call it in their hot path; the
    dict of :func:`session_features` is built from it). Scalars in, floats out; ``(n,)`` arrays in,
    arrays out.
    """
    if not isinstance(n_revealed, np.ndarray):
        running = revealed_sum / n_revealed if n_revealed > 0 else tau
        values: tuple[Any, ...] = (t / length, running, running - tau, n_revealed / t if t > 0 else 0.0)
    else:
        n_revealed = n_revealed.astype(np.float64, copy=False)
        running = np.where(n_revealed > 0, revealed_sum / np.maximum(n_revealed, 1.0), tau)
        served = np.asarray(t, dtype=np.float64)
        values = (served / length + 0.0 * n_revealed, running, running - tau, np.where(served > 0, n_revealed / np.maximum(served, 1.0), 0.0))
    if session_budget is not None:
        values += (usd_sum / session_budget,)
    return values


def session_features(t: Any, length: int, n_revealed: Any, revealed_sum: Any, tau: Any, usd_sum: Any = None,
                     session_budget: float | None = None) -> dict[str, Any]:
    """The session-state observation, from what has been revealed after ``t`` served queries.

    The one definition shared by the environments and the routers' sessions (both go through
    :func:`session_values`). For one session give Python numbers (returns floats); for a batch give
    ``(n,)`` arrays for ``n_revealed`` (and the others; returns float64 arrays).

    * ``progress`` = ``t / length``, the share of the session already served;
    * ``running_accuracy`` = mean revealed score, and **τ before the first reveal** (no evidence
      either way, so the slack starts at 0);
    * ``accuracy_slack`` = ``running_accuracy − τ`` (τ the target in force now);
    * ``revealed`` = ``n_revealed / t``, the share of served queries whose outcome is known (0 at ``t = 0``);
    * ``spend`` (only with ``session_budget``) = USD spent so far / the session's budget. Charges are
      known when a query is served, so ``spend`` counts every served query, revealed or not.

    Args:
        t: Queries served so far.
        length: Queries in the session.
        n_revealed: Outcomes revealed so far.
        revealed_sum: Sum of the revealed scores.
        tau: The target in force for the next query.
        usd_sum: USD spent so far (with ``session_budget``).
        session_budget: The session's budget in USD (``budget_usd_per_1k · length / 1000``), or ``None``.

    Returns:
        ``{key: value}`` for :data:`SESSION_KEYS` (and ``spend``).
    """
    values = session_values(t, length, n_revealed, revealed_sum, tau, usd_sum, session_budget)
    return dict(zip((*SESSION_KEYS, SPEND_KEY), values, strict=False))


class SessionLedger:
    """The running state of one served session, updated as queries are served and outcomes arrive.

    What a deployed router keeps (``agents``' ``session()`` objects): ``serve`` registers a routed
    query and its charge and returns its id; ``observe(query_id, score)`` records a realized
    outcome whenever it arrives (late, out of order, or never); :meth:`features` is
    :func:`session_features` of what was observed so far, exactly as the environment computes it.

    Args:
        length: Planned queries in the session (``progress`` = served / length; serving more is
            allowed, ``progress`` then exceeds 1).
        session_budget: The session's budget in USD, or ``None``.

    Raises:
        ValueError: On ``length < 1`` or a budget that is not a finite number > 0.
    """

    def __init__(self, length: int, session_budget: float | None = None) -> None:
        self.length = check_int(length, "session_length", minimum=1)
        self.session_budget = None if session_budget is None else check_positive(session_budget, "session_budget")
        self.served = 0
        self.usd_sum = 0.0
        self.n_revealed = 0
        self.revealed_sum = 0.0
        self._observed: set[int] = set()
        self._charges: list[float] = []

    def serve(self, usd: float = 0.0) -> int:
        """Register one routed query and its USD charge; return its query id (0, 1, 2, ...)."""
        query_id = self.served
        charge = check_number(usd, "usd", low=0.0)
        self.served += 1
        self.usd_sum += charge
        self._charges.append(charge)
        return query_id

    def charge(self, query_id: Any, usd: Any) -> None:
        """Replace the charge recorded for a served query (e.g. the predicted USD by the invoiced one).

        Raises:
            ValueError: On an id that was never served or a charge that is not a finite number >= 0.
        """
        qid = check_int(query_id, "query_id", minimum=0)
        if qid >= self.served:
            raise ValueError(f"`query_id`={query_id!r} was never served in this session ({self.served} queries so far).")
        value = check_number(usd, "usd", low=0.0)
        self.usd_sum += value - self._charges[qid]
        self._charges[qid] = value

    def observe(self, query_id: Any, score: Any) -> None:
        """Record the realized score of a served query.

        Raises:
            ValueError: On an id that was never served, one already observed, or a score outside
                [0, 1] (naming the id and the value).
        """
        qid = check_int(query_id, "query_id", minimum=0)
        if qid >= self.served:
            raise ValueError(f"`query_id`={query_id!r} was never served in this session ({self.served} queries so far).")
        if qid in self._observed:
            raise ValueError(f"`query_id`={qid} was already observed; each outcome counts once.")
        value = check_number(score, "score", low=0.0, high=1.0)
        self._observed.add(qid)
        self.n_revealed += 1
        self.revealed_sum += value

    def features(self, tau: float) -> dict[str, float]:
        """:func:`session_features` of this session at target ``tau``."""
        return session_features(self.served, self.length, self.n_revealed, self.revealed_sum, float(tau), self.usd_sum,
                                self.session_budget)


@dataclasses.dataclass(frozen=True)
class SessionDecision:
    """The routing decision for one query of a streaming session (``router.session(...)``).

    Attributes:
        query_id: The id to pass to ``session.observe(query_id, score)`` when the outcome arrives.
        model: The chosen model's name.
        index: Its index.
        mu: The quality preference μ (PROTEUS), the trade-off ``m`` (CARROT), NaN otherwise.
        expected_accuracy: p̂ of the chosen model.
        charge: The USD charged to the session for this query (predicted or known; ``charge`` replaces it).
        tau: The session's target when the query was routed.
        tau_input: The target the router acted on (PROTEUS: the calibrated τ input; steered CARROT:
            τ plus the controller's offset).
    """

    query_id: int
    model: str
    index: int
    mu: float
    expected_accuracy: float
    charge: float
    tau: float
    tau_input: float


class PIController:
    """A discrete proportional–integral controller with a clipped output and anti-windup (pure Python).

    ``u = k_p·e + k_i·I`` with ``I`` the sum of the errors, ``u`` clipped to [``low``, ``high``];
    when the output saturates, the last error is taken back out of ``I`` (conditional integration),
    so the integral never winds up beyond what the output can use.

    Args:
        kp: Proportional gain >= 0.
        ki: Integral gain >= 0.
        low: Lowest output.
        high: Highest output (>= ``low``).

    Raises:
        ValueError: On negative or non-finite gains, or ``low > high``.
    """

    def __init__(self, kp: float, ki: float, *, low: float, high: float) -> None:
        self.kp = check_number(kp, "kp", low=0.0)
        self.ki = check_number(ki, "ki", low=0.0)
        self.low = check_number(low, "low")
        self.high = check_number(high, "high", low=self.low)
        self.integral = 0.0
        self.output = 0.0

    def update(self, error: float) -> float:
        """One step with error ``e`` (positive: below target); returns the new output."""
        error = check_number(error, "error")
        self.integral += error
        output = self.kp * error + self.ki * self.integral
        if output > self.high or output < self.low:
            self.integral -= error  # anti-windup: do not integrate while saturated
            output = min(max(output, self.low), self.high)
        self.output = output
        return output

    def reset(self) -> None:
        """Back to a zero integral and output."""
        self.integral = 0.0
        self.output = 0.0


# ---------------------------------------------------------------------------- task mixtures
class TaskMix:
    """Draw session rows from a mixture of the benchmark's tasks, possibly drifting over the session.

    ``spec`` is one of:

    * a mapping ``{task: weight}`` (weights >= 0, not all 0; tasks left out get 0): a stationary mixture;
    * a pair ``[start, end]`` of such mappings: at progress ``p = t / length`` the mixture is
      ``(1 − p)·start + p·end``;
    * ``"uniform"``: every task of the pool equally likely (whatever its size);
    * ``"drift"``: per session, a start and an end mixture drawn from a flat Dirichlet, then as a pair.

    Within a task, rows are drawn uniformly with replacement.

    Args:
        spec: The mixture.
        tasks: ``(N,)`` task name of every benchmark row (``Benchmark.task``).
        pool: The rows sessions are drawn from.

    Raises:
        ValueError: Naming ``task_mix``: an unknown name or task (listing those of the pool),
            negative or non-finite weights, all weights 0, or a pair that is not two mappings.
    """

    def __init__(self, spec: Any, tasks: np.ndarray, pool: np.ndarray) -> None:
        task_of_row = np.asarray(tasks)[pool]
        self.names: tuple[str, ...] = tuple(str(name) for name in np.unique(task_of_row))
        order = np.argsort(task_of_row, kind="stable")
        self.sorted_rows = np.asarray(pool)[order]
        counts = np.array([int(np.sum(task_of_row == name)) for name in self.names], dtype=np.int64)
        self.counts = counts
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.random = False
        self.spec = spec
        if isinstance(spec, str):
            if spec not in TASK_MIXES:
                raise ValueError(f"`task_mix` must be a mapping of task weights, a pair of them, or one of {list(TASK_MIXES)}; got {spec!r}.")
            self.random = spec == "drift"
            self.start = self.end = np.full(len(self.names), 1.0 / len(self.names))
        elif isinstance(spec, Mapping):
            self.start = self.end = self._weights(spec, "task_mix")
        elif isinstance(spec, Sequence) and len(spec) == 2 and all(isinstance(part, Mapping) for part in spec):
            self.start = self._weights(spec[0], "task_mix[0]")
            self.end = self._weights(spec[1], "task_mix[1]")
        else:
            raise ValueError(f"`task_mix` must be a mapping of task weights, a pair of them, or one of {list(TASK_MIXES)}; got {spec!r}.")

    def _weights(self, mapping: Mapping[str, Any], name: str) -> np.ndarray:
        unknown = sorted(str(key) for key in mapping if str(key) not in self.names)
        if unknown:
            raise ValueError(f"`{name}` names tasks {unknown} that are not in the session pool; available: {list(self.names)}.")
        weights = np.zeros(len(self.names))
        for key, value in mapping.items():
            weights[self.names.index(str(key))] = check_number(value, f"{name}[{key!r}]", low=0.0)
        total = weights.sum()
        if not total > 0:
            raise ValueError(f"`{name}` must give some task a weight > 0, got {dict(mapping)!r}.")
        return weights / total

    def draw(self, rng: np.random.Generator, n: int, length: int) -> np.ndarray:
        """``(n, length)`` benchmark rows, one session per line, drawn with ``rng``."""
        if self.random:
            start = rng.dirichlet(np.ones(len(self.names)), size=n)
            end = rng.dirichlet(np.ones(len(self.names)), size=n)
        else:
            start = np.broadcast_to(self.start, (n, len(self.names)))
            end = np.broadcast_to(self.end, (n, len(self.names)))
        progress = (np.arange(length) / length)[None, :, None]
        weights = (1.0 - progress) * start[:, None, :] + progress * end[:, None, :]  # (n, L, T)
        cumulative = np.cumsum(weights, axis=-1)
        u = rng.random((n, length))[..., None] * cumulative[..., -1:]
        task = np.minimum((u >= cumulative).sum(axis=-1), len(self.names) - 1)
        task = np.where(weights[np.arange(n)[:, None], np.arange(length)[None, :], task] > 0, task,
                        np.argmax(weights, axis=-1))  # rounding never lands on a task of weight 0
        offsets = rng.integers(0, self.counts[task])
        return self.sorted_rows[self.starts[task] + offsets]


def check_task_mix(spec: Any, tasks: np.ndarray | None, pool: np.ndarray) -> TaskMix | None:
    """The :class:`TaskMix` of ``spec`` (``None``: rows uniform over the pool, no mixture).

    Raises:
        ValueError: On a bad spec (see :class:`TaskMix`) or a benchmark without tasks.
    """
    if spec is None:
        return None
    if tasks is None:
        raise ValueError("`task_mix` needs a benchmark with tasks (Benchmark.task), and this one has none.")
    return TaskMix(spec, tasks, pool)


def session_budget_usd(budget_usd_per_1k: float | None, length: int) -> float | None:
    """The budget of one session of ``length`` queries in USD, or ``None``."""
    return None if budget_usd_per_1k is None else budget_usd_per_1k * length / 1000.0


def budget_cost(usd: Any, budget_usd_per_1k: float) -> Any:
    """The budget constraint signal of a step: ``usd / (budget per query) − 1`` (≤ 0 on average ⇔ within budget)."""
    return usd * (1000.0 / budget_usd_per_1k) - 1.0


__all__ = [
    "CONSTRAINTS",
    "CYCLIC_PERIODS",
    "PIController",
    "SessionDecision",
    "SESSION_KEYS",
    "SPEND_KEY",
    "TASK_MIXES",
    "TAU_SCHEDULES",
    "SessionLedger",
    "TaskMix",
    "budget_cost",
    "callable_tau_path",
    "check_budget",
    "check_feedback",
    "check_task_mix",
    "check_tau_path",
    "check_tau_schedule",
    "session_budget_usd",
    "session_features",
    "session_observation_spaces",
    "session_values",
    "tau_path",
]
