"""`blindsr.version`: the installed distribution's version, and a valid one when its metadata is missing."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

import blindsr
import blindsr.version


def test_the_version_is_the_installed_distributions() -> None:
    assert blindsr.__version__ == blindsr.version.__version__ == importlib.metadata.version("blindsr")


def test_missing_metadata_gives_the_unknown_version(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    try:
        assert importlib.reload(blindsr.version).__version__ == blindsr.version.UNKNOWN_VERSION == "0+unknown"
    finally:
        monkeypatch.undo()
        importlib.reload(blindsr.version)
    assert blindsr.version.__version__ == importlib.metadata.version("blindsr")
