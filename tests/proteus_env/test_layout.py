"""Package structure: the user folders live in one module, and proteus_env's modules import each other without a cycle."""

import ast
from pathlib import Path

import pytest

import proteus_env
from proteus_env import paths

PACKAGE = Path(proteus_env.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _target(node: ast.ImportFrom | ast.Import, alias: ast.alias, modules: dict[str, Path], package: str) -> str | None:
    """The proteus_env module an import statement loads, or None."""
    if isinstance(node, ast.Import):
        name = alias.name
    else:
        base = node.module or ""
        if node.level:  # relative import
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
        name = f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
    return name if name in modules and name != "proteus_env" else None


def _imports(modules: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """Module-level proteus_env imports of every module, and any such import inside a function."""
    graph: dict[str, set[str]] = {}
    nested: list[str] = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        graph[name] = {t for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                       for alias in node.names if (t := _target(node, alias, modules, package))}
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        nested += [f"{name}.{func.name} imports {t}" for alias in node.names
                                   if (t := _target(node, alias, modules, package))]
    return graph, nested


def test_no_proteus_env_module_imports_another_inside_a_function():
    _, nested = _imports(_modules())
    assert not nested, nested


def test_proteus_env_modules_import_each_other_without_a_cycle():
    graph, _ = _imports(_modules())
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_user_folders_come_from_paths_and_keep_their_old_import(tmp_path, monkeypatch):
    from proteus_env.loaders.sources import cache_root, proteus_home, user_data_dir

    assert proteus_home is paths.proteus_home and cache_root is paths.cache_root and user_data_dir is paths.user_data_dir
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "datasets"))
    assert paths.proteus_home() == tmp_path / "home"
    assert paths.user_data_dir() == tmp_path / "home" / "data"
    assert paths.cache_root() == tmp_path / "home" / "cache" and paths.cache_root(tmp_path / "c") == tmp_path / "c"
    assert paths.env_data_dir() == tmp_path / "datasets"
    monkeypatch.setenv(paths.DATA_DIR_ENV, "")
    assert paths.env_data_dir() is None


def test_every_benchmark_loader_is_registered():
    assert proteus_env.available_benchmarks() == ["routerbench", "sprout", "synthetic"]


#: The one sanctioned way proteus_env reaches the agents package: the lazy (PEP 562) forwarding of
#: ``evaluate_policy`` in proteus_env/__init__.py (issue 10: ``from proteus_env import evaluate_policy``).
FORWARDING_EXCEPTION = ("proteus_env", "_FORWARDED", {"evaluate_policy": "agents.evaluation.any_agent"})


def _outward_references(tree: ast.AST) -> list[tuple[int, str]]:
    """Import statements of agents / callbacks, and string constants naming their modules (for importlib)."""
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if node.value.split(".")[0] in ("agents", "callbacks") and " " not in node.value else []
        found += [(node.lineno, n) for n in names if n.split(".")[0] in ("agents", "callbacks")]
    return found


def test_proteus_env_imports_neither_agents_nor_callbacks_but_the_one_named_forwarding():
    """The dependency direction (DESIGN.md): proteus_env imports neither agents nor callbacks, anywhere.

    The single exception is :data:`FORWARDING_EXCEPTION`: ``proteus_env.__init__`` maps
    ``evaluate_policy`` to its module in ``_FORWARDED`` and imports it in ``__getattr__`` on first use.
    """
    package, variable, mapping = FORWARDING_EXCEPTION
    offenders = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        allowed: set[int] = set()
        if name == package:
            for node in tree.body:
                if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == variable:
                    assert ast.literal_eval(node.value) == mapping, f"{variable} may forward only {mapping}"
                    allowed = {n.lineno for n in ast.walk(node.value)}
        offenders += [f"{name}:{line} {target}" for line, target in _outward_references(tree) if line not in allowed]
    assert not offenders, offenders


def test_import_proteus_env_loads_neither_agents_nor_torch_and_evaluate_policy_stays_torch_free():
    import subprocess
    import sys

    code = ("import sys, proteus_env; a = sorted(m for m in ('agents', 'callbacks', 'torch') if m in sys.modules); "
            "from proteus_env import evaluate_policy; b = 'torch' in sys.modules; print(a, b, evaluate_policy.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] False agents.evaluation.any_agent"
