"""``proteus sweep``: grid or random search over config overrides × split seeds × benchmarks on Ray Tune.

- :mod:`agents.sweep.space`: the search space (``--grid``, ``--random``, seeds, benchmarks), checked before Ray starts;
- :mod:`agents.sweep.trial`: one trial = one :func:`agents.proteus.train.train` run reporting to Tune at every dual update;
- :mod:`agents.sweep.metrics`: what is reported and how configurations rank;
- :mod:`agents.sweep.runner`: run or resume a sweep, write ``trials.csv``, ``configs.csv`` and ``best.json``.

Ray is optional (``pip install 'proteus-routing-gym[ray]'``); importing this package does not import it.
"""

from agents.sweep.metrics import RANKING, validation_metrics
from agents.sweep.runner import SweepInterrupted, SweepResult, SweepSpec, resume_sweep, run_sweep
from agents.sweep.space import SearchSpace

__all__ = ["RANKING", "SearchSpace", "SweepInterrupted", "SweepResult", "SweepSpec", "resume_sweep", "run_sweep", "validation_metrics"]
