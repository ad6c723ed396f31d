"""``proteus sweep``'s search space (issue 10): generated --grid / --random / seeds / benchmarks, checked without Ray."""

from __future__ import annotations

import probe_generators as gen
import pytest

#: Generated inputs of the default run (the benchmark script runs more).
N_SPACES = 40


def test_sweep_search_space_probes(env_ctx):
    outcomes = [gen.run_sweep_space(env_ctx, spec) for spec in gen.draw(gen.sweep_space_specs(), N_SPACES)]
    bad = [str(o) for o in outcomes if not o.ok]
    assert not bad, "\n".join(bad)
    assert {o.outcome for o in outcomes} == {"correct", "clear error"}


SWEEP_CASES = [i for i, (argv, _, _) in enumerate(gen.CLI_CASES) if argv[0] == "sweep" or "--ray" in argv or "--address" in argv]


@pytest.mark.parametrize("case", SWEEP_CASES, ids=lambda i: " ".join(gen.CLI_CASES[i][0][:1] + gen.CLI_CASES[i][0][-2:]))
def test_sweep_and_eval_ray_cli_cases_in_process(cli_ctx, case):
    outcome = gen.run_cli(cli_ctx, {"case": case}, in_process=True)
    assert outcome.outcome == "clear error", outcome
