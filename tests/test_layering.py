"""The import rules of docs/ARCHITECTURE.md ("Layering"), checked on every import in the tree.

Every ``import`` and ``from … import`` is read with :mod:`ast`, at module level and inside
functions alike, so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"knowledge", "agent", "ui", "evals", "benchmarks", "prompts"}

# package -> our packages it must not import (the rest of ours, and all third-party, are allowed)
FORBIDDEN = {
    "knowledge": {"agent", "ui", "evals", "benchmarks", "prompts"},
    "prompts": {"agent", "ui", "evals", "benchmarks", "knowledge"},
    "agent": {"ui", "evals", "benchmarks"},
    "ui": {"benchmarks", "evals"},
    "evals": {"benchmarks"},
}
# (file, imported package) pairs the table allows as named exceptions
ALLOWED = {
    ("ui/cli.py", "evals"),  # `persona eval` runs the harness, imported only when that command runs
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) for every absolute import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, top in imports_of(path):
            if top in FORBIDDEN[package] and (rel, top) not in ALLOWED:
                bad.append(f"{rel}:{line} imports {top}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_the_steps_below_it(package: str) -> None:
    assert (ROOT / package).is_dir()
    assert violations(package) == []


def test_the_rule_sees_lazy_imports(tmp_path: Path) -> None:
    """The checker must catch an import inside a function, not only at module level."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from agent.types import Chunk\n    import evals.run\n", encoding="utf-8")
    assert imports_of(f) == [(2, "agent"), (3, "evals")]


def test_the_named_exception_is_still_needed() -> None:
    """An exception nobody uses any more is removed from the table, not kept as a blanket pass."""
    for rel, top in ALLOWED:
        assert top in {t for _, t in imports_of(ROOT / rel)}, f"{rel} no longer imports {top}"


def test_the_runtime_path_does_not_load_the_harness() -> None:
    """Answering a question (extractive) in a fresh interpreter loads nothing from evals/ or ui/."""
    import subprocess
    import sys

    code = (
        "import sys; import agent.pipeline, agent.verify, agent.checker, knowledge.ingest; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'evals', 'ui', 'benchmarks'}); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
