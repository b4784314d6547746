"""The shape of the code base (``docs/architecture.md``): no import cycle among the modules of
``cueflow/`` and ``plugins/`` (the package's ``__init__`` and type-checking imports included),
no import from a layer up to a layer above it, and no module over 400 lines unless its
docstring says why on a line starting with ``Long because:``.

Imports are read from the source with :mod:`ast`, so an import inside ``if TYPE_CHECKING:`` or
inside a function counts like any other. ``from cueflow import ids`` counts as importing both
``cueflow.ids`` and the package ``cueflow`` (its ``__init__`` runs first); below the top layer,
write ``import cueflow.ids as ids`` or ``from cueflow.ids import ...`` instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "interfaces: REST API, CLI, agents, UI, test kits",
        (
            "cueflow",  # the package's __init__: the public facade
            "cueflow.__main__",
            "cueflow.agents",
            "cueflow.api",
            "cueflow.cli",
            "cueflow.client",
            "cueflow.commands",
            "cueflow.http_client",
            "cueflow.testing",
            "cueflow.ui",
            "cueflow.webhooks",
            "cueflow.worker_api",
            "cueflow.worker_core",
        ),
    ),
    ("engine: lifecycle and public Python API", ("cueflow.engine", "cueflow.runner")),
    (
        "use cases, the scheduler and the dispatcher: each receives the services",
        (
            "cueflow.accounts",
            "cueflow.alert_rules",
            "cueflow.alerts",
            "cueflow.api_keys",
            "cueflow.authentication",
            "cueflow.backfill",
            "cueflow.change_feed",
            "cueflow.claims",
            "cueflow.cues",
            "cueflow.declared_cues",
            "cueflow.dispatcher",
            "cueflow.echo",
            "cueflow.executions",
            "cueflow.fair_share",
            "cueflow.flow_runs",
            "cueflow.flow_schedule",
            "cueflow.flow_wire",
            "cueflow.flows",
            "cueflow.handoff",
            "cueflow.health",
            "cueflow.leases",
            "cueflow.manual_runs",
            "cueflow.outcomes",
            "cueflow.overlap",
            "cueflow.push_attempts",
            "cueflow.quotas",
            "cueflow.retention",
            "cueflow.run_limits",
            "cueflow.scheduler",
            "cueflow.scrape",
            "cueflow.signing_secrets",
            "cueflow.stats",
            "cueflow.step_executions",
            "cueflow.usage",
            "cueflow.verification",
            "cueflow.wire",
            "cueflow.workers",
        ),
    ),
    (
        "services: what the use cases receive",
        (
            "cueflow.longpoll",
            "cueflow.loops",
            "cueflow.metrics",
            "cueflow.services",
            "cueflow.signals",
        ),
    ),
    (
        "plugins: the plugin seam and the built-in transports and stores",
        (
            "cueflow.hookspecs",
            "cueflow.plugins",
            "cueflow.transport",
            "cueflow_inprocess",
            "cueflow_postgres",
            "cueflow_sqlite",
            "cueflow_webhook",
            "cueflow_worker",
        ),
    ),
    ("store: the storage seam and its SQL", ("cueflow.migrate", "cueflow.sql", "cueflow.store")),
    (
        "leaves: values, errors and helpers every layer may use",
        (
            "cueflow.clock",
            "cueflow.config",
            "cueflow.cron",
            "cueflow.dst",
            "cueflow.errors",
            "cueflow.extras",
            "cueflow.faults",
            "cueflow.handler_context",
            "cueflow.ids",
            "cueflow.jsonvalues",
            "cueflow.logs",
            "cueflow.markers",
            "cueflow.operation_ids",
            "cueflow.pulse",
            "cueflow.records",
            "cueflow.run_controls",
            "cueflow.flow_schemas",
            "cueflow.schedule",
            "cueflow.schema_examples",
            "cueflow.schemas",
            "cueflow.scopes",
            "cueflow.states",
            "cueflow.tracing",
            "cueflow.version",
        ),
    ),
]
"""The layers, top to bottom: a module may import from its own layer and the ones below."""


def _modules() -> dict[str, Path]:
    """Every module of ``cueflow/`` and ``plugins/`` (migrations aside), by dotted name."""
    found: dict[str, Path] = {}
    for top in ("cueflow", "plugins"):
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[0] == "plugins":
                parts = parts[1:]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Who imports whom among ``modules`` (type-checking and function-level imports included)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(kept + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of the longest prefix naming ``module``'s place."""
    best: tuple[int, int] | None = None
    for number, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact_only = prefix == "cueflow"  # the package itself, not everything under it
            matches = module == prefix or (not exact_only and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[1]):
                best = (number, len(prefix))
    return None if best is None else best[0]


def test_there_is_no_import_cycle() -> None:
    cycles = _cycles(_graph(_modules()))
    assert cycles == [], "import cycles:\n" + "\n".join(", ".join(c) for c in cycles)


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in _modules() if _layer_of(m) is None)
    assert missing == [], f"place these modules in a layer of LAYERS: {missing}"


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for module, imported in _graph(_modules()).items():
        own = _layer_of(module)
        for target in sorted(imported):
            theirs = _layer_of(target)
            if own is not None and theirs is not None and theirs < own:
                upward.append(f"{module} ({LAYERS[own][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert upward == [], "upward imports:\n" + "\n".join(upward)


def test_nothing_below_the_engine_imports_it() -> None:
    engine_layer = _layer_of("cueflow.engine")
    assert engine_layer is not None
    importers = sorted(
        module
        for module, imported in _graph(_modules()).items()
        if "cueflow.engine" in imported and (_layer_of(module) or 0) > engine_layer
    )
    assert importers == []


def test_the_check_finds_a_cycle_made_by_a_type_checking_import(tmp_path: Path) -> None:
    type_checking_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import b\n"
    (tmp_path / "a.py").write_text(type_checking_only)
    (tmp_path / "b.py").write_text("def f():\n    from a import g\n")
    (tmp_path / "c.py").write_text("import a\n")
    graph = _graph({name: tmp_path / f"{name}.py" for name in "abc"})
    assert _cycles(graph) == [["a", "b"]]


MAX_MODULE_LINES = 400
"""A module longer than this holds two ideas, unless its docstring says why it does not."""


def _too_long(root: Path) -> list[str]:
    """``path: N lines`` for each module under ``root`` over :data:`MAX_MODULE_LINES` lines
    whose module docstring has no line starting with ``Long because:``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text()
        lines = len(source.splitlines())
        if lines <= MAX_MODULE_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(source)) or ""
        if not any(line.strip().startswith("Long because:") for line in docstring.splitlines()):
            found.append(f"{path.relative_to(root.parent)}: {lines} lines")
    return found


def test_no_module_is_over_400_lines_without_a_reason_at_its_top() -> None:
    too_long = _too_long(ROOT / "cueflow") + _too_long(ROOT / "plugins")
    assert too_long == [], (
        "split these modules (one concept each) or say why one is long in its docstring, on a "
        f"line starting with 'Long because:' (over {MAX_MODULE_LINES} lines):\n"
        + "\n".join(too_long)
    )


def test_only_a_reason_at_the_top_lets_a_module_be_long(tmp_path: Path) -> None:
    package = tmp_path / "package"
    package.mkdir()
    body = "x = 1\n" * MAX_MODULE_LINES
    (package / "plain.py").write_text('"""Two ideas."""\n' + body)
    (package / "reason_below.py").write_text('"""Two ideas."""\n# Long because: no\n' + body)
    reason = '"""One idea.\n\nLong because: the table of every code is one list.\n"""\n'
    (package / "reasoned.py").write_text(reason + body)
    (package / "short.py").write_text('"""Short."""\n' + body[: -len("x = 1\n")])
    assert _too_long(package) == [
        f"package/plain.py: {MAX_MODULE_LINES + 1} lines",
        f"package/reason_below.py: {MAX_MODULE_LINES + 2} lines",
    ]
