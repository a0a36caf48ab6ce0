"""Per-sample dynamic depthwise convolution: one k×k kernel per (sample, channel), predicted from a code vector.

The degradation-aware convolutions of DASR (Wang et al., CVPR 2021, "DA conv") and MRDA (Xia et al., TIP 2023,
Eq. 8, "RDA conv") share this branch: an MLP maps the degradation code of each sample to C depthwise kernels,
which filter that sample's C feature channels. Used by ``nets/dasr.py`` (DAConv) and ``nets/mrda.py`` (RDAConv).

Batched form (``impl="grouped"``, training and inference): the batch is folded into the channels,
``(B, C, H, W) → (1, B·C, H, W)``, and one grouped convolution with ``groups = B·C`` applies kernel ``b·C + c`` to
channel c of sample b. No Python loop over samples. ONNX fixes a convolution's group count in the graph, which
would freeze the batch size, so the export (``blindsr.archs.mrda.use_traceable_depthwise``) selects
``impl="traceable"``: the same sum over the k² taps written as shifted slices of the zero-padded input times each
tap's (B, C, 1, 1) weight, with k a Python int. The two agree to rounding (about 1e-7 in float32).

Parameter count of the generator for code dimension d, C channels and k×k kernels (no biases):
``d·d + d·C·k²``; 40,960 for d = C = 64, k = 3 (the DASR/MRDA width).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from blindsr.ops.checks import check_image_batch, check_odd_kernel_size

__all__ = [
    "DepthwiseBranch",
    "DepthwiseImpl",
    "DepthwiseKernelGenerator",
    "KernelSource",
    "dynamic_depthwise_conv2d",
]

# "dynamic": kernels predicted per sample from the degradation code; "static": ordinary learned depthwise kernels,
# shared by all samples (MRDA Table V, ablation S5: "ordinary convs" instead of dynamic ones).
KernelSource = Literal["dynamic", "static"]
DepthwiseImpl = Literal["grouped", "traceable"]
"""How ``dynamic_depthwise_conv2d`` computes the filter: see the module text."""


def _tracing() -> bool:
    """Whether an exporter or compiler is recording the call (shapes are then traced values, not ints)."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def dynamic_depthwise_conv2d(
    x: Tensor, weight: Tensor, *, impl: DepthwiseImpl = "grouped", kernel_size: int | None = None
) -> Tensor:
    """Filter each channel of each sample with its own k×k kernel (cross-correlation, zero padding ``k // 2``).

    Args:
        x: (B, C, H, W) features.
        weight: (B, C, k, k) kernels, k odd; ``weight[b, c]`` filters ``x[b, c]``.
        impl: ``"grouped"`` (one grouped convolution; shapes checked) or ``"traceable"`` (shifted slices and
            products, for the ONNX exporters; see the module text).
        kernel_size: k, a Python int. Required by ``"traceable"``, which must not read it from a (traced) shape;
            checked against `weight` when the shapes are checked.

    Returns:
        (B, C, H, W), equal to ``F.conv2d(x[b:b+1], weight[b].unsqueeze(1), padding=k // 2, groups=C)`` for each b.

    Raises:
        ValueError: bad shapes or `kernel_size` (checked in eager mode only: while an exporter traces the call the
            sizes are traced values), a bad `impl`, or ``"traceable"`` without `kernel_size`.
    """
    if impl not in ("grouped", "traceable"):
        raise ValueError(f"impl must be 'grouped' or 'traceable', got {impl!r}")
    if impl == "traceable" and kernel_size is None:
        raise ValueError("dynamic_depthwise_conv2d(impl='traceable') needs kernel_size")
    if not _tracing():
        check_image_batch(x, name="x")
        B, C = x.shape[:2]
        if weight.ndim != 4 or weight.shape[:2] != (B, C) or weight.shape[2] != weight.shape[3]:
            raise ValueError(f"weight must have shape (B, C, k, k) = ({B}, {C}, k, k), got {tuple(weight.shape)}")
        check_odd_kernel_size(weight.shape[-1])
        if kernel_size is not None and kernel_size != weight.shape[-1]:
            raise ValueError(f"kernel_size is {kernel_size}, but weight has shape {tuple(weight.shape)}")
    if impl == "traceable":
        assert kernel_size is not None
        return _shift_sum(x, weight, kernel_size)
    B, C, H, W = x.shape
    k = weight.shape[-1]
    out = F.conv2d(x.reshape(1, B * C, H, W), weight.reshape(B * C, 1, k, k), padding=k // 2, groups=B * C)
    return out.view(B, C, H, W)


def _shift_sum(x: Tensor, weight: Tensor, k: int) -> Tensor:
    # the "traceable" form: sum over the k² taps of the shifted, zero-padded input times the tap's per-(b, c) weight
    height, width = x.shape[-2], x.shape[-1]
    xp = F.pad(x, (k // 2,) * 4)
    out = xp[:, :, 0:height, 0:width] * weight[:, :, 0:1, 0:1]
    for t in range(1, k * k):
        i, j = divmod(t, k)
        out = out + xp[:, :, i : i + height, j : j + width] * weight[:, :, i : i + 1, j : j + 1]
    return out


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

    The attribute ``impl`` selects how the dynamic kernels are applied: ``"grouped"`` (default) or ``"traceable"``
    (set by the ONNX export on its copy of the network: ``blindsr.archs.mrda.use_traceable_depthwise``).

    Args:
        code_dim: d, the length of the per-sample code.
        channels: C.
        kernel_size: k, odd.
        kernel: "dynamic" or "static".
    """

    def __init__(self, *, code_dim: int = 64, channels: int = 64, kernel_size: int = 3, kernel: KernelSource) -> None:
        super().__init__()
        check_odd_kernel_size(kernel_size)
        self.kernel_size = kernel_size
        self.impl: DepthwiseImpl = "grouped"
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
            return dynamic_depthwise_conv2d(x, self.generator(code), impl=self.impl, kernel_size=self.kernel_size)
        assert self.static is not None
        return self.static(x)
