"""Doctest collection for ``src/blindsr`` (``--doctest-modules`` and ``testpaths`` in pyproject.toml).

Every ``>>>`` example of the package runs with the suite. Each module named in ``OPTIONAL_EXAMPLES`` works with an
optional dependency (an extra of pyproject.toml); where that dependency is not installed, the module's examples are
reported as one skip naming it, instead of failing. Every other module must import and pass with the core
dependencies alone. This file sits in ``src/``, outside the package, so it is never installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Generator
from pathlib import Path

import pytest

# module (relative to src/) -> the optional dependencies its examples may use, and the extra that installs them
OPTIONAL_EXAMPLES: dict[str, tuple[tuple[str, ...], str]] = {
    "blindsr/serve/app.py": (("fastapi", "starlette"), "demo"),
    "blindsr/cli/serve.py": (("fastapi", "uvicorn"), "demo"),
    "blindsr/zoo/onnx.py": (("onnx", "onnxruntime"), "export"),
    "blindsr/cli/export_onnx.py": (("onnx", "onnxruntime"), "export"),
    "blindsr/analysis/plots.py": (("matplotlib",), "analysis"),
}

SRC = Path(__file__).resolve().parent


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class _SkippedExamples(pytest.File):
    """Stands in for the doctests of a module whose optional dependency is missing: collecting it skips."""

    reason: str = ""

    def collect(self) -> list[pytest.Item]:
        pytest.skip(self.reason)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(
    file_path: Path, parent: pytest.Collector
) -> Generator[None, list[pytest.Collector | None], list[pytest.Collector | None]]:
    collected = yield
    try:
        key = file_path.resolve().relative_to(SRC).as_posix()
    except ValueError:
        return collected
    if key not in OPTIONAL_EXAMPLES:
        return collected
    needs, extra = OPTIONAL_EXAMPLES[key]
    missing = [name for name in needs if not _installed(name)]
    if not missing or not any(c is not None for c in collected):
        return collected
    stand_in = _SkippedExamples.from_parent(parent, path=file_path)
    stand_in.reason = f"examples need {', '.join(missing)}: pip install -e '.[{extra}]' (in the clone)"
    return [stand_in]
