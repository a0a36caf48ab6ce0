"""Fixtures of the web demo tests: a tiny random DMSR release file and small PNG files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from blindsr.data.images import write_image
from blindsr.nets.dmsr import DMSRNet
from blindsr.zoo.weights import save_release

TINY_KWARGS = {"scale": 2, "n_feats": 8, "n_groups": 1, "n_blocks": 1, "extractor_channels": 8}


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random x2 DMSR (8 features, one block) saved as a release file, ``tiny-x2.safetensors``."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny-x2.safetensors"
    save_release(DMSRNet(**TINY_KWARGS), path, arch="dmsr", arch_kwargs=TINY_KWARGS, scale=2)  # type: ignore[arg-type]
    return path


PngWriter = Callable[..., Path]


def _write_png(path: Path, height: int, width: int, *, seed: int = 0) -> Path:
    """A smooth colour image with some texture, as an 8-bit RGB PNG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / max(width - 1, 1), y / max(height - 1, 1), 0.5 + 0.5 * np.sin(x / 3.0)], axis=2)
    pixels = np.clip(base * 220 + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    write_image(path, pixels)
    return path


@pytest.fixture
def write_png() -> PngWriter:
    """``write_png(path, height, width, *, seed=0) -> path``: a smooth, textured 8-bit RGB PNG."""
    return _write_png
