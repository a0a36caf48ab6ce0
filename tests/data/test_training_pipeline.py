"""HR patches -> DataLoader -> sampled degradations -> LR, the path every training run takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from blindsr.data.hr_patches import HRPatchDataset
from blindsr.degradations import degrade, get_training_preset, sample_degradation


def test_patches_to_lr_on_the_fly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((70, 90, 3)) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    ds = HRPatchDataset(folders=[tmp_path], patch_size=48, repeat=4)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    for step, hr in enumerate(loader):
        g = torch.Generator().manual_seed(1000 + step)  # (run seed, step): independent of workers and device
        for name, scale in (("dmsr", 4), ("mrda-aniso-noise", 4), ("mrda-iso-x2", 2)):
            deg = sample_degradation(get_training_preset(name), hr.shape[0], g)
            out = degrade(hr, deg, scale=scale, generator=g)
            assert out.lr.shape == (hr.shape[0], 3, 48 // scale, 48 // scale)
            assert torch.isfinite(out.lr).all()
            assert torch.allclose(out.lr, out.lr_clean + out.noise_map, atol=1e-6)
    assert step == 2
