"""PSNR and SSIM exactly as SR papers compute them (spec: ``docs/specs/degradations_and_protocols.md`` section 5).

Default protocol ``sr-y``:

1. both images rounded to 8 bits (clamp to [0, 1], ``floor(255 x + 0.5)``: MATLAB's half-away-from-zero);
2. luma Y of MATLAB ``rgb2ycbcr`` (BT.601 studio range, 0-255, **not** rounded);
3. ``scale`` pixels cropped from every side;
4. PSNR ``10 log10(255^2 / MSE)`` in float64 (identical images give +inf, not capped);
5. SSIM of Wang et al. (``ssim_index.m``): 11x11 Gaussian window sigma 1.5, 'valid' filtering, C1 = (0.01 * 255)^2,
   C2 = (0.03 * 255)^2, population (not sample) variances;
6. per-image scores; a dataset score is the mean of per-image scores.

This matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)`` and the SRMD/RCAN MATLAB scripts.
"""

from __future__ import annotations

import torch

from blindsr.metrics.protocols import MetricProtocol, get_metric_protocol
from blindsr.ops.color import quantize_uint8, rgb_to_y

__all__ = ["prepare_for_metric", "psnr", "psnr_and_ssim", "ssim"]


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be (B, 3, H, W) or (3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


def prepare_for_metric(
    x: torch.Tensor, *, scale: int | None = None, protocol: str | MetricProtocol = "sr-y"
) -> torch.Tensor:
    """Apply a protocol's quantisation, colour transform and border crop.

    Args:
        x: (B, 3, H, W) or (3, H, W) RGB in [0, 1] (a single channel is treated as gray RGB).
        scale: the SR factor (the border crop of ``sr-y``).
        protocol: protocol name or object.

    Returns:
        (B, C, H', W') float64 on the 0-255 scale: C = 1 (Y) or 3 (RGB).
    """
    p = get_metric_protocol(protocol)
    x = _as_batch(x, "image").to(torch.float64)
    if p.quantize_uint8:
        x = quantize_uint8(x)
    if p.color == "y_bt601_matlab":
        x = rgb_to_y(x)
        if p.round_y:
            x = torch.floor(x + 0.5)
    else:
        x = x * 255.0
    b = p.border(scale)
    if b > 0:
        if x.shape[-2] <= 2 * b or x.shape[-1] <= 2 * b:
            raise ValueError(f"image {x.shape[-2]}x{x.shape[-1]} is too small for a {b}-pixel border crop")
        x = x[..., b:-b, b:-b]
    return x


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    if sr.shape[-2:] != hr.shape[-2:]:
        raise ValueError(
            f"SR and HR sizes differ: {tuple(sr.shape[-2:])} vs {tuple(hr.shape[-2:])} "
            "(is the HR modcropped to the scale?)"
        )


def _psnr_prepared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = (a - b).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)  # mse == 0 -> +inf


def _gaussian_1d(size: int = 11, sigma: float = 1.5, *, device: torch.device | None = None) -> torch.Tensor:
    c = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(c * c) / (2 * sigma * sigma))
    return g / g.sum()  # outer(g, g) is fspecial('gaussian', 11, 1.5): the window is separable


def _ssim_prepared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n, c, h, w = a.shape
    if h < 11 or w < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the border crop, got {h}x{w}")
    g = _gaussian_1d(device=a.device)
    x = a.reshape(n * c, 1, h, w)
    y = b.reshape(n * c, 1, h, w)
    # the five local moments in one batched, separable 'valid' filtering: two 1-D passes instead of 11x11, each a
    # matrix-vector product over unfolded windows (float64 conv2d takes a slow path on CPU; this is ~5x faster)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    stack = stack.unfold(2, 11, 1) @ g
    stack = stack.unfold(3, 11, 1) @ g
    mu_x, mu_y, exx, eyy, exy = stack.unbind(dim=1)
    sxx = exx - mu_x * mu_x
    syy = eyy - mu_y * mu_y
    sxy = exy - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    smap = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2))
    return smap.reshape(n, c, -1).mean(dim=2).mean(dim=1)


def psnr(
    sr: torch.Tensor, hr: torch.Tensor, *, scale: int | None = None, protocol: str | MetricProtocol = "sr-y"
) -> torch.Tensor:
    """Per-image PSNR in dB under a metric protocol.

    Args:
        sr: (B, 3, H, W) or (3, H, W) RGB in [0, 1].
        hr: same shape as `sr` (modcropped to the scale).
        scale: the SR factor; ``sr-y`` crops that many pixels from each side.
        protocol: ``"sr-y"`` (default), ``"rgb"``, ``"sr-y-nocrop"`` or a `MetricProtocol`.

    Returns:
        (B,) float64 PSNR; +inf for identical images.

    >>> hr = torch.full((1, 3, 16, 16), 0.5)
    >>> psnr(hr, hr, scale=2).item()
    inf
    """
    _check_pair(sr, hr)
    return _psnr_prepared(
        prepare_for_metric(sr, scale=scale, protocol=protocol), prepare_for_metric(hr, scale=scale, protocol=protocol)
    )


def ssim(
    sr: torch.Tensor, hr: torch.Tensor, *, scale: int | None = None, protocol: str | MetricProtocol = "sr-y"
) -> torch.Tensor:
    """Per-image SSIM (Wang et al., 11x11 Gaussian sigma 1.5, 'valid') under a metric protocol.

    Args:
        sr: (B, 3, H, W) or (3, H, W) RGB in [0, 1].
        hr: same shape as `sr`.
        scale: the SR factor (border crop).
        protocol: protocol name or object.

    Returns:
        (B,) float64 SSIM in [-1, 1]; 1 for identical images.

    >>> x = torch.rand(2, 3, 32, 32)
    >>> ssim(x, x, scale=4).tolist()
    [1.0, 1.0]
    """
    _check_pair(sr, hr)
    return _ssim_prepared(
        prepare_for_metric(sr, scale=scale, protocol=protocol), prepare_for_metric(hr, scale=scale, protocol=protocol)
    )


def psnr_and_ssim(
    sr: torch.Tensor, hr: torch.Tensor, *, scale: int | None = None, protocol: str | MetricProtocol = "sr-y"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both metrics with one preparation pass: ``(psnr (B,), ssim (B,))``."""
    _check_pair(sr, hr)
    a = prepare_for_metric(sr, scale=scale, protocol=protocol)
    b = prepare_for_metric(hr, scale=scale, protocol=protocol)
    return _psnr_prepared(a, b), _ssim_prepared(a, b)
