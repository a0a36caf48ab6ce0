"""Device checks: the engine on CUDA matches CPU (skipped without a GPU; never in CI)."""

from __future__ import annotations

import pytest
import torch

from blindsr.degradations import degrade, get_training_preset, sample_degradation
from blindsr.metrics import psnr_and_ssim

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_degrade_on_cuda_matches_cpu() -> None:
    hr = torch.rand(4, 3, 64, 64)
    for name in ("dmsr", "mrda-aniso-noise"):
        deg = sample_degradation(get_training_preset(name), 4, torch.Generator().manual_seed(0))
        cpu = degrade(hr, deg, scale=4, generator=torch.Generator().manual_seed(1))
        gpu = degrade(hr.cuda(), deg.to("cuda"), scale=4, generator=torch.Generator().manual_seed(1))
        tol = 1e-5 if name == "dmsr" else 1.5 / 255  # 8-bit rounding may flip on ties
        assert (gpu.lr.cpu() - cpu.lr).abs().max() < tol


def test_metrics_on_cuda_match_cpu() -> None:
    a, b = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    p1, s1 = psnr_and_ssim(a, b, scale=4)
    p2, s2 = psnr_and_ssim(a.cuda(), b.cuda(), scale=4)
    assert torch.allclose(p1, p2.cpu()) and torch.allclose(s1, s2.cpu())
