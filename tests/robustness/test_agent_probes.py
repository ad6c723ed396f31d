"""evaluate_policy (issue 10): generated callable outputs, algorithm names, damaged zips and module:function specs."""

from __future__ import annotations

import probe_generators as gen

#: Generated inputs of the default run (the benchmark script runs more).
N_AGENT = 12


def test_evaluate_policy_probes(agent_ctx):
    outcomes = [gen.run_agent(agent_ctx, spec) for spec in gen.draw(gen.agent_specs(), N_AGENT)]
    bad = [str(o) for o in outcomes if not o.ok]
    assert not bad, "\n".join(bad)
