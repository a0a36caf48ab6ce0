"""The dependency direction of docs/design.md, checked on the source (a lightweight import-linter)."""

from __future__ import annotations

import ast
from pathlib import Path

import blindsr

SRC = Path(blindsr.__file__).parent

# package -> blindsr packages it must not import
FORBIDDEN = {
    "ops": {"degradations", "metrics", "data", "eval", "cli", "nets", "methods", "engine", "zoo"},
    "degradations": {"metrics", "data", "eval", "cli", "nets", "methods", "engine", "zoo"},
    "metrics": {"degradations", "data", "eval", "cli", "nets", "methods", "engine", "zoo"},
    "data": {"metrics", "eval", "cli", "nets", "methods", "engine", "zoo"},
    "eval": {"cli", "methods", "engine"},
    "engine": {"methods", "nets", "cli", "zoo"},
    "losses": {"degradations", "data", "metrics", "eval", "engine", "methods", "cli", "config", "nets", "zoo"},
    "nets": {"degradations", "data", "metrics", "eval", "engine", "methods", "cli", "config"},
    "methods": {"engine", "cli", "eval"},
    "zoo": {"methods", "engine", "cli", "eval", "data", "degradations", "metrics"},
    "inference": {"cli", "methods", "engine", "eval", "degradations", "metrics", "config"},
    "config": {"ops", "degradations", "metrics", "data", "eval", "engine", "nets", "methods", "cli"},
    "serve": {"methods", "engine", "eval", "cli"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("blindsr."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("blindsr."):
                    found.add(alias.name.split(".")[1])
    return found


def test_layers_point_downwards() -> None:
    violations = []
    for package, banned in FORBIDDEN.items():
        for path in (SRC / package).rglob("*.py"):
            bad = _imports(path) & banned
            if bad:
                violations.append(f"{path.relative_to(SRC)} imports {sorted(bad)}")
    assert not violations, violations


def test_pil_only_in_data_io_and_demo() -> None:
    users = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            )
            if any(n.split(".")[0] == "PIL" for n in names):
                users.append(str(path.relative_to(SRC)))
    assert set(users) <= {"data/io.py", "demo.py"}, users
