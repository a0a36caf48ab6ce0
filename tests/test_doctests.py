"""The ``>>>`` examples of every module in ``src/blindsr`` run with the suite: this keeps that configured.

pytest collects them itself (``--doctest-modules`` with ``src`` in ``testpaths``, pyproject.toml); src/conftest.py
skips, with a reason, the examples of the few modules that need a missing optional dependency.
"""

from __future__ import annotations

import pytest


def test_the_suite_collects_the_package_examples(pytestconfig: pytest.Config) -> None:
    assert "src" in pytestconfig.getini("testpaths")
    assert pytestconfig.getoption("doctestmodules"), "--doctest-modules left the addopts of pyproject.toml"
