"""Per-tenant online state: running accuracy from realized feedback, and the dual controller.

Each tenant has a floor τ (its default target). Realized scores of its served requests arrive
through ``POST /v1/feedback``; they update an exponentially weighted running accuracy

    acc ← (d·S + y) / (d·W + 1),   d = 0.5 ** (1 / half_life)

(``S``, ``W`` the decayed score sum and weight) and, with the same weights, the running target
(the τ each scored request asked for). Every ``update_every`` feedback items, one step of the
tenant's controller from :mod:`callbacks.dual` runs on the constraint error

    e = running target − running accuracy      (positive when the tenant misses its floor)

and its multiplier λ ∈ [0, max_boost] becomes the tenant's *boost*: requests of the tenant are
routed at ``min(1, τ + boost)``. When realized accuracy falls short (drift, a masked-out model, an
optimistic calibration), the boost grows until the floor holds; when the tenant is over-served, it
shrinks back towards 0 (the cheapest routing that meets the floor).

The state is a small JSON document, written to SQLite by :mod:`agents.serving.store`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from agents.serving.config import ControllerConfig, TenantConfig
from callbacks.dual import DualController, make_controller


def build_controller(config: ControllerConfig) -> DualController:
    """One-bin controller of ``config`` (λ is the boost, bounded by ``max_boost``)."""
    return make_controller(config.kind, 1, eta=config.eta, lambda_max=max(config.max_boost, 1e-9), pid_gains=config.pid_gains)


@dataclasses.dataclass
class TenantState:
    """The online state of one tenant.

    Attributes:
        name: Tenant name (``"-"``: requests naming no tenant; no controller runs for them).
        config: Its settings (``None`` for the anonymous pseudo-tenant).
        settings: Its controller and running-accuracy settings.
        feedback_count: Feedback items received.
        score_sum: Sum of realized scores (for the lifetime mean).
        weighted_score: Decayed sum of realized scores.
        weighted_target: Decayed sum of the targets of the scored requests.
        weight: Decayed count.
        updates: Controller updates so far.
        boost: Current boost added to the tenant's τ (the controller's λ).
        realized_cost_usd: Sum of realized USD costs reported with feedback.
        controller: The dual controller (``None`` for the anonymous pseudo-tenant).
    """

    name: str
    config: TenantConfig | None
    settings: ControllerConfig = dataclasses.field(default_factory=ControllerConfig)
    feedback_count: int = 0
    score_sum: float = 0.0
    weighted_score: float = 0.0
    weighted_target: float = 0.0
    weight: float = 0.0
    updates: int = 0
    boost: float = 0.0
    realized_cost_usd: float = 0.0
    controller: DualController | None = None

    @classmethod
    def new(cls, name: str, config: TenantConfig | None, defaults: ControllerConfig | None = None) -> TenantState:
        """A fresh state (no feedback yet, boost 0); ``defaults`` are the settings of the anonymous pseudo-tenant."""
        if config is None:
            return cls(name=name, config=None, settings=defaults or ControllerConfig())
        return cls(name=name, config=config, settings=config.controller, controller=build_controller(config.controller))

    # ------------------------------------------------------------------ reading
    @property
    def running_accuracy(self) -> float:
        """The exponentially weighted realized accuracy (NaN before any feedback)."""
        return self.weighted_score / self.weight if self.weight > 0 else math.nan

    @property
    def running_target(self) -> float:
        """The same average of the targets the scored requests asked for (NaN before feedback)."""
        return self.weighted_target / self.weight if self.weight > 0 else math.nan

    @property
    def mean_accuracy(self) -> float:
        """Lifetime mean realized score (NaN before any feedback)."""
        return self.score_sum / self.feedback_count if self.feedback_count else math.nan

    def served_tau(self, tau: float) -> float:
        """The target to route a request of this tenant at: its τ plus the boost, at most 1."""
        return min(1.0, tau + self.boost)

    # ------------------------------------------------------------------ feedback
    def with_feedback(self, items: list[tuple[float, float, float | None]]) -> TenantState:
        """A new state after ``items`` of ``(score, requested τ, realized cost or None)``, in order.

        The receiver is left unchanged (the caller makes the new state durable, then swaps it in).
        """
        new = copy.deepcopy(self)
        settings = self.settings
        decay = 0.5 ** (1.0 / settings.half_life)
        for score, target, cost in items:
            new.feedback_count += 1
            new.score_sum += score
            new.weighted_score = decay * new.weighted_score + score
            new.weighted_target = decay * new.weighted_target + target
            new.weight = decay * new.weight + 1.0
            if cost is not None:
                new.realized_cost_usd += cost
            if new.controller is not None and new.feedback_count % settings.update_every == 0:
                error = new.running_target - new.running_accuracy
                new.boost = float(new.controller.update(error)[0])
                new.updates += 1
        return new

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-able state (the settings are not included: they come from the configuration)."""
        return {"feedback_count": self.feedback_count, "score_sum": self.score_sum, "weighted_score": self.weighted_score,
                "weighted_target": self.weighted_target, "weight": self.weight, "updates": self.updates, "boost": self.boost,
                "realized_cost_usd": self.realized_cost_usd, "controller": None if self.controller is None else self.controller.state()}

    @classmethod
    def from_dict(cls, name: str, config: TenantConfig | None, data: dict[str, Any],
                  defaults: ControllerConfig | None = None) -> tuple[TenantState, str | None]:
        """Restore a saved state under the current settings.

        Returns:
            ``(state, warning)``: when the saved controller state does not fit the current
            settings (another controller kind, a smaller ``max_boost``), the statistics are kept,
            the controller starts afresh and ``warning`` says why; otherwise ``warning`` is ``None``.
        """
        state = cls.new(name, config, defaults)
        for key in ("feedback_count", "updates"):
            setattr(state, key, int(data.get(key, 0)))
        for key in ("score_sum", "weighted_score", "weighted_target", "weight", "realized_cost_usd"):
            setattr(state, key, float(data.get(key, 0.0)))
        warning = None
        saved = data.get("controller")
        if state.controller is not None and saved is not None:
            try:
                state.controller.load_state(saved)
                state.boost = float(state.controller.lambdas[0])
            except ValueError as exc:
                state.controller = build_controller(config.controller) if config is not None else None
                state.boost = 0.0
                warning = f"tenant {name!r}: saved controller state does not fit the current settings ({exc}); the controller restarts at boost 0."
        return state, warning

    def summary(self) -> dict[str, Any]:
        """What ``GET /v1/tenants`` shows for this tenant."""

        def number(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {"tenant": self.name, "tau": None if self.config is None else self.config.tau,
                "confidence": None if self.config is None else self.config.confidence,
                "boost": self.boost, "tau_served": None if self.config is None else self.served_tau(self.config.tau),
                "running_accuracy": number(self.running_accuracy), "running_target": number(self.running_target),
                "mean_accuracy": number(self.mean_accuracy), "feedback_count": self.feedback_count, "controller_updates": self.updates,
                "controller": None if self.controller is None else self.controller.state(), "realized_cost_usd": self.realized_cost_usd}
