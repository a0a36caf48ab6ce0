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
    """$BLINDSR_DATA (the data root `blindsr train` uses; $BLINDSR_SHARED_DATA is the older name), else
    `../shared/data` next to the checkout; None when it holds no Set5."""
    candidates = [Path(env) for name in ("BLINDSR_DATA", "BLINDSR_SHARED_DATA") if (env := os.environ.get(name))]
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    for c in candidates:
        if (c / "Set5" / "HR").is_dir():
            return c
    return None


@pytest.fixture
def shared_data() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("shared benchmark data not found (set BLINDSR_DATA or place it at ../shared/data)")
    return root
