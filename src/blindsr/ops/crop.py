"""Cropping helpers shared by datasets, metrics and the command line."""

from __future__ import annotations

import torch


def modcrop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom rows and right columns so that H and W are multiples of `scale`.

    This is the standard SR convention (MATLAB ``modcrop``): keep the top-left
    ``(H - H mod s) x (W - W mod s)`` region.

    Args:
        image: tensor whose last two dimensions are (H, W).
        scale: positive integer.

    Returns:
        A view of `image` with H and W divisible by `scale`.

    >>> modcrop(torch.zeros(3, 10, 7), 4).shape
    torch.Size([3, 8, 4])
    """
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]
