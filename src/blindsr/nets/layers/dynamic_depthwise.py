"""Per-sample dynamic depthwise convolution: one k×k kernel per (sample, channel), predicted from a code vector.

The degradation-aware convolutions of DASR (Wang et al., CVPR 2021, "DA conv") and MRDA (Xia et al., TIP 2023,
Eq. 8, "RDA conv") share this branch: an MLP maps the degradation code of each sample to C depthwise kernels,
which filter that sample's C feature channels. Used by ``nets/dasr.py`` (DAConv) and ``nets/mrda.py`` (RDAConv).

Batched form: the batch is folded into the channels, ``(B, C, H, W) → (1, B·C, H, W)``, and one grouped
convolution with ``groups = B·C`` applies kernel ``b·C + c`` to channel c of sample b. No Python loop over samples.

Parameter count of the generator for code dimension d, C channels and k×k kernels (no biases):
``d·d + d·C·k²``; 40,960 for d = C = 64, k = 3 (the DASR/MRDA width).
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from blindsr.ops.checks import check_image_batch, check_odd_kernel_size

__all__ = ["DepthwiseBranch", "DepthwiseKernelGenerator", "KernelSource", "dynamic_depthwise_conv2d"]

# "dynamic": kernels predicted per sample from the degradation code; "static": ordinary learned depthwise kernels,
# shared by all samples (MRDA Table V, ablation S5: "ordinary convs" instead of dynamic ones).
KernelSource = Literal["dynamic", "static"]


def dynamic_depthwise_conv2d(x: Tensor, weight: Tensor) -> Tensor:
    """Filter each channel of each sample with its own k×k kernel (cross-correlation, zero padding ``k // 2``).

    Args:
        x: (B, C, H, W) features.
        weight: (B, C, k, k) kernels, k odd; ``weight[b, c]`` filters ``x[b, c]``.

    Returns:
        (B, C, H, W), equal to ``F.conv2d(x[b:b+1], weight[b].unsqueeze(1), padding=k // 2, groups=C)`` for each b.
    """
    check_image_batch(x, name="x")
    B, C, H, W = x.shape
    if weight.ndim != 4 or weight.shape[:2] != (B, C) or weight.shape[2] != weight.shape[3]:
        raise ValueError(f"weight must have shape (B, C, k, k) = ({B}, {C}, k, k), got {tuple(weight.shape)}")
    k = weight.shape[-1]
    check_odd_kernel_size(k)
    out = F.conv2d(x.reshape(1, B * C, H, W), weight.reshape(B * C, 1, k, k), padding=k // 2, groups=B * C)
    return out.view(B, C, H, W)


class DepthwiseKernelGenerator(nn.Module):
    """``code → Linear(d → d, no bias) → LReLU(0.1) → Linear(d → C·k², no bias) → (B, C, k, k)`` kernels.

    Args:
        code_dim: d, the length of the per-sample code (64 in DASR and MRDA).
        channels: C, one kernel per channel (64).
        kernel_size: k, odd (3).
    """

    def __init__(self, *, code_dim: int = 64, channels: int = 64, kernel_size: int = 3) -> None:
        super().__init__()
        check_odd_kernel_size(kernel_size)
        self.channels = channels
        self.kernel_size = kernel_size
        self.mlp = nn.Sequential(
            nn.Linear(code_dim, code_dim, bias=False),
            nn.LeakyReLU(0.1),
            nn.Linear(code_dim, channels * kernel_size * kernel_size, bias=False),
        )

    def forward(self, code: Tensor) -> Tensor:
        """Map a (B, d) code to (B, C, k, k) depthwise kernels (row-major taps, channel-major per sample)."""
        k = self.kernel_size
        return self.mlp(code).view(code.shape[0], self.channels, k, k)


class DepthwiseBranch(nn.Module):
    """A depthwise k×k convolution without bias, its kernels either predicted per sample or static.

    ``kernel="dynamic"``: ``dynamic_depthwise_conv2d(x, DepthwiseKernelGenerator(code))`` (DASR / MRDA).
    ``kernel="static"``: ``Conv2d(C, C, k, groups=C, bias=False)``, ignoring the code (MRDA Table V, S5).

    Args:
        code_dim: d, the length of the per-sample code.
        channels: C.
        kernel_size: k, odd.
        kernel: "dynamic" or "static".
    """

    def __init__(self, *, code_dim: int = 64, channels: int = 64, kernel_size: int = 3, kernel: KernelSource) -> None:
        super().__init__()
        check_odd_kernel_size(kernel_size)
        self.generator: DepthwiseKernelGenerator | None = None
        self.static: nn.Conv2d | None = None
        if kernel == "dynamic":
            self.generator = DepthwiseKernelGenerator(code_dim=code_dim, channels=channels, kernel_size=kernel_size)
        elif kernel == "static":
            self.static = nn.Conv2d(
                channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False
            )
        else:
            raise ValueError(f"kernel must be 'dynamic' or 'static', got {kernel!r}")

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        """Filter (B, C, H, W) features; `code` (B, d) drives the dynamic kernels. Returns (B, C, H, W)."""
        if self.generator is not None:
            return dynamic_depthwise_conv2d(x, self.generator(code))
        assert self.static is not None
        return self.static(x)
