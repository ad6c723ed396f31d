"""The result leaf and the package layout: columns, constants, and imports without a cycle."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import agents.evaluation
from agents.evaluation.result import RESULT_COLUMNS, TAU_INDEPENDENT, EvalResult

PACKAGE = Path(agents.evaluation.__file__).parent


def _result(rows):
    empty = pd.DataFrame()
    return EvalResult(results=pd.DataFrame(rows), aggregates=empty, dynamic=empty, dynamic_summary=empty, fixed_models=empty,
                      ranges=empty, taus=np.array([0.5]), seeds=[0], confidences=(None,), benchmark={}, routers=[], schedules={})


def test_columns_name_the_confidence_and_the_slack():
    assert "calibration_confidence" in RESULT_COLUMNS and "slack" in RESULT_COLUMNS
    assert not any("margin" in column for column in RESULT_COLUMNS)
    assert TAU_INDEPENDENT == {"oracle", "best_fixed", "cheapest", "random"}


def test_router_names_and_families_keep_evaluation_order():
    result = _result({"router": ["carrot", "oracle", "carrot[confidence=0.95]", "carrot"],
                      "family": ["carrot", "oracle", "carrot", "carrot"]})
    assert result.router_names == ["carrot", "oracle", "carrot[confidence=0.95]"]
    assert result.families() == {"carrot": "carrot", "oracle": "oracle", "carrot[confidence=0.95]": "carrot"}


def _sibling_imports(path: Path) -> tuple[set[str], list[int]]:
    """(modules of agents.evaluation imported anywhere in ``path``, lines of imports inside functions)."""
    tree = ast.parse(path.read_text())
    siblings, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agents.evaluation."):
            siblings.add(node.module.rsplit(".", 1)[1])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested += [n.lineno for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return siblings, nested


def test_the_package_has_no_import_cycle_and_no_hidden_imports():
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    assert {"result", "contenders", "run", "dynamic", "report", "plots"} <= set(modules)
    graph = {}
    for name, path in modules.items():
        graph[name], nested = _sibling_imports(path)
        assert not nested, f"agents/evaluation/{name}.py imports inside a function (lines {nested})"
    assert graph["result"] == set()  # the leaf
    assert graph["report"] <= {"result"} and graph["plots"] <= {"result"}
    order: list[str] = []
    while len(order) < len(graph):  # topological sort: fails on a cycle
        ready = [n for n in graph if n not in order and graph[n] <= set(order)]
        assert ready, f"import cycle among {sorted(set(graph) - set(order))}"
        order += sorted(ready)
    assert order.index("run") > max(order.index(n) for n in ("result", "contenders", "dynamic", "report", "plots"))


def test_the_leaf_and_the_writers_load_without_the_protocol_or_torch():
    code = ("import sys, agents.evaluation.result, agents.evaluation.report, agents.evaluation.plots, agents.evaluation.dynamic; "
            "print(sorted(m for m in ('torch', 'agents.evaluation.run', 'agents.evaluation.contenders') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"

