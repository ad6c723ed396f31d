"""What a trial reports, and how configurations rank (compliance first, then violation, then cost)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from agents.sweep.metrics import configurations, validation_metrics


def test_validation_metrics_of_one_dual_pass():
    metrics = validation_metrics(1024, {"tau": np.array([0.4, 0.5, 0.6]), "accuracy": np.array([0.45, 0.5, np.nan]),
                                        "usd_per_1k": np.array([0.1, 0.2, np.nan]), "tau_span": 0.7})
    assert metrics["timesteps"] == 1024
    assert metrics["floor_compliance"] == 2 / 3  # a bin without data is not met
    assert math.isclose(metrics["violation"], 0.0) and math.isclose(metrics["usd_per_1k"], 0.15) and metrics["tau_span"] == 0.7


def _trial(key, status, compliance, violation, usd):
    return {"status": status, "k": key, "floor_compliance": compliance, "violation": violation, "usd_per_1k": usd,
            "accuracy": 0.5, "tau_span": 1.0}


def test_configurations_rank_compliance_then_violation_then_cost_and_skip_failed_ones():
    trials = pd.DataFrame([
        _trial("cheap", "TERMINATED", 0.5, 0.05, 0.1), _trial("cheap", "TERMINATED", 0.5, 0.05, 0.1),
        _trial("safe", "TERMINATED", 1.0, 0.0, 0.9), _trial("safe", "TERMINATED", 1.0, 0.0, 0.7),
        _trial("safe_cheaper", "TERMINATED", 1.0, 0.0, 0.5), _trial("safe_cheaper", "TERMINATED", 1.0, 0.0, 0.5),
        _trial("broken", "TERMINATED", 1.0, 0.0, 0.1), _trial("broken", "ERROR", math.nan, math.nan, math.nan),
    ])
    table = configurations(trials, ["k"])
    assert list(table["k"]) == ["safe_cheaper", "safe", "cheap", "broken"]
    assert list(table["rank"][:3]) == [1, 2, 3] and math.isnan(table["rank"].iloc[3])
    assert table.loc[table["k"] == "safe", "usd_per_1k"].item() == 0.8
    assert table.loc[table["k"] == "broken", "n_complete"].item() == 1
