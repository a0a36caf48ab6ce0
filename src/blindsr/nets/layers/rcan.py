"""RCAN building blocks: Image Super-Resolution Using Very Deep Residual Channel Attention Networks.

Zhang et al., ECCV 2018, arXiv:1807.02758. Reference code (read, not copied): yulunzhang/RCAN@f722e5d and the
PyTorch port in XPixelGroup/BasicSR@8d56e3a. Used as DMSR's backbone (docs/specs/dmsr.md §3.2–3.3).

Paper → code:
    Channel attention, CA (Sec. 3.3, Fig. 3) ................ ChannelAttention
    Residual channel attention block, RCAB (Sec. 3.4, Fig. 4)  RCAB
    Residual group, RG, with short skip (Sec. 3.2, Fig. 2) .... ResidualGroup
    Upscale module (Sec. 3.1: conv + PixelShuffle) ............ Upsampler

Parameter counts for 64 channels and the default reduction 16: ChannelAttention 580, RCAB 74,436,
ResidualGroup (20 RCABs) 1,525,648. Initialisation: PyTorch defaults, as in both reference implementations.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["RCAB", "ChannelAttention", "ResidualGroup", "Upsampler"]


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention: ``x · sigmoid(W2 · ReLU(W1 · avgpool(x)))``.

    The bottleneck has ``max(1, channels // reduction)`` channels, so narrow test models still build.
    """

    def __init__(self, *, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weights(x.mean(dim=(2, 3), keepdim=True))

    def weights(self, pooled: Tensor) -> Tensor:
        """The per-channel gates ``sigmoid(W2 · ReLU(W1 · pooled))`` from the pooled input (B, C, 1, 1).

        Separate from ``forward`` so tiled inference can gate each tile with the whole image's pooled statistics.
        """
        return self.excite(self.squeeze(pooled).relu()).sigmoid()


class RCAB(nn.Module):
    """Conv3×3 → ReLU → Conv3×3 → channel attention, plus the block input. No normalisation, no residual scaling."""

    def __init__(self, *, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv1 = _conv3x3(channels, channels)
        self.conv2 = _conv3x3(channels, channels)
        self.attention = ChannelAttention(channels=channels, reduction=reduction)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.attention(self.conv2(self.conv1(x).relu()))


class ResidualGroup(nn.Module):
    """`n_blocks` RCABs → Conv3×3, plus the group input (short skip connection)."""

    def __init__(self, *, channels: int, n_blocks: int = 20, reduction: int = 16) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(RCAB(channels=channels, reduction=reduction) for _ in range(n_blocks)))
        self.conv = _conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(self.blocks(x))


class Upsampler(nn.Module):
    """Sub-pixel upsampling by `scale`: stages of Conv3×3 (C → r²C) → PixelShuffle(r) [→ ReLU].

    ×3 is one stage with r = 3; a power of two 2ⁿ is n stages with r = 2 (×4: two ×2 stages).
    `activation_after` puts a ReLU after every stage, as DMSR's Table B.7 lists ("Conv, PixelShuffle, ReLU");
    RCAN itself has none (False).
    """

    def __init__(self, *, scale: int, channels: int, activation_after: bool = True) -> None:
        super().__init__()
        if scale == 3:
            factors = [3]
        elif scale >= 2 and scale & (scale - 1) == 0:
            factors = [2] * (scale.bit_length() - 1)
        else:
            raise ValueError(f"scale must be 3 or a power of two >= 2, got {scale}")
        layers: list[nn.Module] = []
        for r in factors:
            layers += [_conv3x3(channels, r * r * channels), nn.PixelShuffle(r)]
            if activation_after:
                layers.append(nn.ReLU())
        self.stages = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.stages(x)
