"""Lint, format and type checks run with the tests, so CI catches them.

ruff and mypy are dev dependencies (``make install`` installs them, as does ``pip install -e '.[dev]'``): a missing
tool FAILS these tests rather than skipping them, so a CI job without them cannot pass by accident. To run the suite
without them on purpose (a bare environment, a quick local run), set ``BLINDSR_SKIP_QUALITY=1``: the tests are then
skipped, with that reason in the report.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL_HINT = "it is a dev dependency: run `make install` (or `pip install -e '.[dev]'`)"

pytestmark = pytest.mark.skipif(
    os.environ.get("BLINDSR_SKIP_QUALITY") == "1", reason="BLINDSR_SKIP_QUALITY=1: lint and type checks opted out"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True)


def _ruff() -> str:
    beside = Path(sys.executable).parent / "ruff"  # the venv's ruff, when the venv is not on PATH
    found = str(beside) if beside.exists() else shutil.which("ruff")
    if found is None:
        pytest.fail(f"ruff is not installed; {INSTALL_HINT}, or set BLINDSR_SKIP_QUALITY=1 to skip these checks")
    return found


def test_ruff_lint_and_format() -> None:
    ruff = _ruff()
    lint = _run(ruff, "check", "src", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(ruff, "format", "--check", "src", "tests", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def test_mypy() -> None:
    if not _installed("mypy"):
        pytest.fail(f"mypy is not installed; {INSTALL_HINT}, or set BLINDSR_SKIP_QUALITY=1 to skip these checks")
    out = _run(sys.executable, "-m", "mypy")
    assert out.returncode == 0, out.stdout + out.stderr
