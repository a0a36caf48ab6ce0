"""Colour conversions and 8-bit quantisation with MATLAB's conventions.

SR papers measure PSNR/SSIM on the luma of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio range):
``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with RGB in [0, 1] and Y on the 0-255 scale, not rounded.
See ``docs/specs/degradations_and_protocols.md`` section 5.
"""

from __future__ import annotations

import torch

__all__ = ["quantize_uint8", "rgb_to_y", "rgb_to_ycbcr", "ycbcr_to_rgb"]

# BT.601 studio-range matrix of MATLAB rgb2ycbcr, for RGB in [0, 1], output on the 0-255 scale.
_RGB_TO_YCBCR = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)
_YCBCR_OFFSET = (16.0, 128.0, 128.0)


def _matrix(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = x.dtype if x.is_floating_point() else torch.float32
    m = torch.tensor(_RGB_TO_YCBCR, dtype=dtype, device=x.device)
    b = torch.tensor(_YCBCR_OFFSET, dtype=dtype, device=x.device)
    return m, b


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] to YCbCr on the 0-255 scale (MATLAB ``rgb2ycbcr`` of a double image, times 255).

    Args:
        rgb: (..., 3, H, W) float RGB in [0, 1].

    Returns:
        (..., 3, H, W) YCbCr, Y in [16, 235], Cb and Cr in [16, 240], not rounded.

    >>> rgb_to_ycbcr(torch.ones(1, 3, 1, 1)).flatten().tolist()
    [235.0, 128.0, 128.0]
    """
    if rgb.shape[-3] != 3:
        raise ValueError(f"expected 3 channels in dim -3, got shape {tuple(rgb.shape)}")
    m, b = _matrix(rgb)
    return torch.einsum("ij,...jhw->...ihw", m, rgb) + b.view(3, 1, 1)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`: YCbCr on the 0-255 scale to RGB in [0, 1] (not clipped).

    >>> x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    >>> bool(torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x))
    True
    """
    if ycbcr.shape[-3] != 3:
        raise ValueError(f"expected 3 channels in dim -3, got shape {tuple(ycbcr.shape)}")
    m, b = _matrix(ycbcr)
    inv = torch.linalg.inv(m)
    return torch.einsum("ij,...jhw->...ihw", inv, ycbcr - b.view(3, 1, 1))


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """Luma Y (BT.601, MATLAB ranges) of RGB in [0, 1], on the 0-255 scale, not rounded.

    Args:
        rgb: (..., 3, H, W) float RGB in [0, 1].

    Returns:
        (..., 1, H, W): ``16 + 65.481 R + 128.553 G + 24.966 B``.

    >>> rgb_to_y(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1)).item()
    81.481
    """
    if rgb.shape[-3] != 3:
        raise ValueError(f"expected 3 channels in dim -3, got shape {tuple(rgb.shape)}")
    m, _ = _matrix(rgb)
    return torch.einsum("j,...jhw->...hw", m[0], rgb).unsqueeze(-3) + 16.0


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid as saving a PNG would: clamp to [0, 1], then ``floor(255 x + 0.5) / 255``.

    MATLAB's ``uint8()`` rounds halves away from zero; ``torch.round`` rounds halves to even, which differs on
    exact halves. For values in [0, 255] ``floor(v + 0.5)`` is MATLAB's rounding.

    Args:
        x: float tensor, nominally in [0, 1].

    Returns:
        Float tensor on the grid {0, 1/255, ..., 1}, same dtype and shape.

    >>> (quantize_uint8(torch.tensor([0.5 / 255, 2.5 / 255, 1.2])) * 255).tolist()
    [1.0, 3.0, 255.0]
    """
    return torch.floor(x.clamp(0.0, 1.0) * 255.0 + 0.5) / 255.0
