"""ToySR: a small residual SR network with a bicubic skip, for tests, the engine's examples and CPU smoke runs.

Not a paper model: head conv, ``n_blocks`` residual blocks (conv-ReLU-conv), PixelShuffle upsampler, tail conv,
plus MATLAB-bicubic upscaling of the input, so a network with zero output is exactly bicubic.

The attribute ``traceable_skip`` (default False) computes that skip with ``ops.resize_traceable`` instead: the ONNX
export sets it on its copy of the network (``blindsr.archs.toy``), since the matrix form is frozen at the traced size.
"""

from __future__ import annotations

import torch
from torch import nn

from blindsr.ops.checks import MAX_DEPTH, MAX_WIDTH, check_counts
from blindsr.ops.resize import bicubic_upscale
from blindsr.ops.resize_traceable import bicubic_upscale_traceable

__all__ = ["ToySR"]


class _ResBlock(nn.Module):
    def __init__(self, n_feats: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(n_feats, n_feats, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ToySR(nn.Module):
    """A small SR network: ``sr = tail(upsample(body(head(lr)))) + bicubic(lr)``."""

    def __init__(self, *, scale: int, n_feats: int = 32, n_blocks: int = 4) -> None:
        super().__init__()
        check_counts("ToySR", maximum=8, scale=scale)
        check_counts("ToySR", maximum=MAX_WIDTH, n_feats=n_feats)
        check_counts("ToySR", minimum=0, maximum=MAX_DEPTH, n_blocks=n_blocks)
        self.scale = scale
        self.traceable_skip = False
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = nn.Sequential(*(_ResBlock(n_feats) for _ in range(n_blocks)))
        self.upsample = nn.Sequential(nn.Conv2d(n_feats, n_feats * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        self.tail = nn.Conv2d(n_feats, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as bicubic
        assert self.tail.bias is not None
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        feats = self.head(lr)
        skip = bicubic_upscale_traceable(lr, self.scale) if self.traceable_skip else bicubic_upscale(lr, self.scale)
        return self.tail(self.upsample(self.body(feats) + feats)) + skip
