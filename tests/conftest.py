"""Shared fixtures: CPU, fixed seeds, and the optional shared benchmark data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # makes `_reference` importable

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def shared_data_root() -> Path | None:
    """`../shared/data` next to the checkout (or $BLINDSR_SHARED_DATA), None when absent."""
    env = os.environ.get("BLINDSR_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    for c in candidates:
        if (c / "Set5" / "HR").is_dir():
            return c
    return None


@pytest.fixture
def shared_data() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("shared benchmark data not found (set BLINDSR_SHARED_DATA or place it at ../shared/data)")
    return root
