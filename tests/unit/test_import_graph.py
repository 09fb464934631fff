"""The arrows point one way: capabilities use the queue core, the core never imports a capability."""
from __future__ import annotations

import ast
from pathlib import Path

from dqueue import capabilities
from tests.helpers import ROOT

CORE = ("dqueue/store", "dqueue/worker")
# The migration environment loads every capability's tables through the registry, on purpose.
ALLOWED = {"dqueue/store/migrations/env.py": {"dqueue.capabilities"}}


def _capability_packages() -> set[str]:
    return {".".join(m.split(".")[:2]) for m in capabilities.MODULES} | {"dqueue.capabilities"}


def _imports(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, absolute, including relative and function-level imports."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _violations(root: Path = ROOT) -> list[str]:
    forbidden = _capability_packages()
    bad = []
    for core in CORE:
        for path in sorted((root / core).rglob("*.py")):
            rel = str(path.relative_to(root))
            for module in sorted(_imports(path, root) - ALLOWED.get(rel, set())):
                if any(module == p or module.startswith(p + ".") for p in forbidden):
                    bad.append(f"{rel} imports {module}")
    return bad


def test_the_queue_core_imports_no_capability() -> None:
    assert _violations() == []


def test_the_check_sees_relative_and_late_imports(tmp_path: Path) -> None:
    (tmp_path / "dqueue" / "store").mkdir(parents=True)
    (tmp_path / "dqueue" / "worker").mkdir()
    (tmp_path / "dqueue" / "store" / "probe.py").write_text("def f() -> None:\n    from ..zenodo import store\n")
    (tmp_path / "dqueue" / "worker" / "probe.py").write_text("import dqueue.stash.schema\nfrom dqueue import jobs\n")
    assert _violations(tmp_path) == ["dqueue/store/probe.py imports dqueue.zenodo",
                                     "dqueue/store/probe.py imports dqueue.zenodo.store",
                                     "dqueue/worker/probe.py imports dqueue.stash.schema"]
