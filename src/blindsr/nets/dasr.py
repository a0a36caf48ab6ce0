"""DASR's degradation-aware convolution: Unsupervised Degradation Representation Learning for Blind SR.

Wang et al., CVPR 2021, arXiv:2104.00416. Reference code (MIT, read, not copied): LongguangWang/DASR@51524af.
Built from ``docs/specs/mrda.md`` section 3. Here it serves MRDA's Table V ablations S4 ("DA module instead of
RDAM") and S5 (S4 with ordinary instead of dynamic convs), through ``RDANOptions(modulation="da")`` (and
``kernel="static"`` for S5) in ``nets/mrda.py``. "kernel" here is always a convolution kernel.
DASR's own generator (5 groups × 5 DA blocks) and its BatchNorm encoder with MoCo are not built here.

Paper → code:
    DA conv: dynamic depthwise conv from the degradation code, plus channel attention .... DAConv
    its degradation-aware kernels (the dynamic branch) ..... layers.dynamic_depthwise.DepthwiseBranch

DA conv, for features F (B, C, H, W) and code k (B, C)::

    out = Conv1×1(LReLU(DWConv(F; w(k)))) + F ⊙ CA(k)
    CA(k) = sigmoid(Conv1×1_{C/r→C}(LReLU(Conv1×1_{C→C/r}(k))))     (no biases, r = 8)

There is no internal residual (unlike MRDA's RDA conv). Parameters with C = 64, k = 3, r = 8: 46,144 (kernel
generator 40,960, 1×1 conv 4,160, channel attention 1,024); with ``kernel="static"``: 5,760.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from blindsr.nets.layers.dynamic_depthwise import DepthwiseBranch, KernelSource
from blindsr.ops.checks import check_image_batch

__all__ = ["DAConv"]


class DAConv(nn.Module):
    """DASR's DA conv: dynamic depthwise conv → LReLU → Conv1×1, plus the input scaled by a code-driven attention.

    Args:
        n_feats: C, the feature channels and the code length (64).
        kernel_size: side of the depthwise kernels (3).
        reduction: r, the channel attention's bottleneck is ``max(1, C // r)`` (8 in DASR).
        kernel: "dynamic" (DASR) or "static" (ordinary depthwise kernels, MRDA Table V S5).
    """

    def __init__(
        self, *, n_feats: int = 64, kernel_size: int = 3, reduction: int = 8, kernel: KernelSource = "dynamic"
    ) -> None:
        super().__init__()
        hidden = max(1, n_feats // reduction)
        self.depthwise = DepthwiseBranch(code_dim=n_feats, channels=n_feats, kernel_size=kernel_size, kernel=kernel)
        self.conv = nn.Conv2d(n_feats, n_feats, 1)
        self.attention = nn.Sequential(
            nn.Conv2d(n_feats, hidden, 1, bias=False),
            nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, n_feats, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        """Apply the DA conv.

        Args:
            x: (B, C, H, W) features.
            code: (B, C) degradation code.

        Returns:
            (B, C, H, W).
        """
        check_image_batch(x, name="x")
        out = self.conv(F.leaky_relu(self.depthwise(x, code), 0.1))
        return out + x * self.attention(code[:, :, None, None])
