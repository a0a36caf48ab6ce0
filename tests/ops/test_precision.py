from __future__ import annotations

import torch

from blindsr.degradations import degrade, get_training_preset, sample_degradation
from blindsr.ops.precision import fp32_region


def test_fp32_region_switches_an_enclosing_autocast_off_and_back_on() -> None:
    x = torch.rand(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16
        with fp32_region(torch.device("cpu")):
            assert (x @ x).dtype == torch.float32
        assert (x @ x).dtype == torch.bfloat16
    with fp32_region("cpu"):
        assert torch.equal(x @ x, x @ x)


def test_training_degradations_are_synthesised_in_fp32_under_autocast() -> None:
    spec = get_training_preset("mrda-iso-x2")
    hr = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    deg = sample_degradation(spec, 2, torch.Generator().manual_seed(1))
    reference = degrade(hr, deg, scale=2, generator=torch.Generator().manual_seed(2)).lr
    for dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cpu", dtype=dtype):
            lr = degrade(hr, deg, scale=2, generator=torch.Generator().manual_seed(2)).lr
        assert lr.dtype == torch.float32 and torch.equal(lr, reference)
