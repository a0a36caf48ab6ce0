"""The project's precision policy: which parts may run under a reduced-precision autocast, and the fp32 region.

Training runs its forward passes under ``torch.autocast`` when a config asks for ``precision: bf16`` (or ``fp16``
on a GPU). That is decided per *part*, not per run (docs/training.md, "Precision policy"):

- **MAML's inner loop is always fp32**: the adaptation of the MLN (every inner step, its loss and gradient) and
  every forward that uses the adapted weights (the meta stage's query loss, the teacher's D′_T, the oracle). An
  inner SGD step changes a weight by a few 1e-6 of its value, far below bf16's resolution (2^-8 ≈ 4e-3 relative):
  under a bf16 autocast the weights are cast to bf16 for each convolution, so almost every update is rounded away
  and the "adapted" network is the un-adapted one.
- **Degradations are always fp32**: the synthesis of training LR images (:func:`blindsr.degradations.blur_downscale`,
  so every preset and DMSR's re-simulation of Eq. 8) runs outside autocast. In bf16 the blur and bicubic
  convolutions move an LR pixel by up to 2.5 of 255 levels: a second, unintended degradation.
- Everything else (DMSR, RDAN_T/RDAN_S, DEN_T/DEN_S, the losses' inputs) may run under the configured autocast.

:func:`fp32_region` is the one way code opts out of an enclosing autocast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["fp32_region"]


@contextlib.contextmanager
def fp32_region(device: torch.device | str) -> Iterator[None]:
    """Run the block without autocast on `device`'s type: fp32 tensors and weights compute in fp32.

    Nested inside ``torch.autocast(...)`` this switches it off for the block and restores it afterwards; outside any
    autocast it changes nothing (so fp32 runs are bitwise unchanged).

    >>> import torch
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     with fp32_region("cpu"):
    ...         y = torch.ones(2, 2) @ torch.ones(2, 2)
    >>> y.dtype
    torch.float32
    """
    with torch.autocast(device_type=torch.device(device).type, enabled=False):
        yield
