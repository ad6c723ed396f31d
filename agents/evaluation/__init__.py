"""The evaluation protocol for any router or agent: realized test accuracy and cost per τ, over split seeds.

Modules, leaves first: :mod:`~agents.evaluation.result` (the result object and its columns),
:mod:`~agents.evaluation.dynamic` (targets that change within a stream),
:mod:`~agents.evaluation.contenders` (who is evaluated), :mod:`~agents.evaluation.report` and
:mod:`~agents.evaluation.plots` (what is written), :mod:`~agents.evaluation.run` (the protocol,
which uses all of them)::

    from agents.evaluation.run import EvalSettings, evaluate
    result = evaluate(["artifacts/seed0"], confidences=(None, 0.95), out_dir="reports/eval")
"""
