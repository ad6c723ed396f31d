"""τ-blind collapse: a trained policy that serves every target at nearly the same accuracy.

The dual callback measures, at every validation pass, the *τ-span*: the spread of the
deterministic policy's validation accuracy over the τ-bins and the two ends of the training
``tau_range``, relative to the achievable spread of fixed-μ routing on the same rows
(:func:`callbacks.dual.tau_span`). A policy that follows τ over the whole achievable range scores
about 1; one that ignores τ scores 0. Training records the final span in ``summary.json``
(:func:`collapse_record`); ``proteus train`` warns below :data:`COLLAPSE_SPAN` (or fails with
``--on-collapse fail``), and :class:`~agents.proteus.router.ProteusRouter` warns when it loads
such an artifact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: A final τ-span below this marks the artifact as collapsed.
COLLAPSE_SPAN = 0.8


class CollapsedPolicyWarning(UserWarning):
    """The trained policy barely follows τ: its validation accuracy spans too little of the achievable range."""


def collapse_record(span: float, taus: Sequence[float], accuracy: Sequence[float], achievable: tuple[float, float]) -> dict[str, Any]:
    """The ``summary.json`` entries that describe the final τ-span.

    Args:
        span: The final τ-span (NaN when it could not be measured).
        taus: The τ-bins' targets.
        accuracy: The validation accuracy at each bin.
        achievable: ``(low, high)`` achievable validation accuracy.
    """
    span = float(span)
    return {
        "tau_span": span if math.isfinite(span) else None,
        "tau_span_threshold": COLLAPSE_SPAN,
        "collapsed": bool(math.isfinite(span) and span < COLLAPSE_SPAN),
        "achievable_accuracy": [float(achievable[0]), float(achievable[1])],
        "bin_tau": [float(t) for t in taus],
        "bin_accuracy": [float(a) for a in accuracy],
    }


def describe_collapse(summary: Mapping[str, Any] | None) -> str | None:
    """A sentence naming the span and the bins when ``summary`` records a collapse, else ``None``."""
    if not summary or not summary.get("collapsed"):
        return None
    low, high = summary.get("achievable_accuracy", (math.nan, math.nan))
    bins = ", ".join(f"τ={t:.3f}: {a:.3f}" for t, a in zip(summary.get("bin_tau", []), summary.get("bin_accuracy", []), strict=False))
    return (f"the trained policy barely follows τ: its validation accuracy spans {summary['tau_span']:.2f} of the achievable "
            f"range [{low:.3f}, {high:.3f}] (below {summary.get('tau_span_threshold', COLLAPSE_SPAN)}); "
            f"accuracy per τ-bin: {bins}. Targets across the range will cost the same; retrain (another seed or config).")
