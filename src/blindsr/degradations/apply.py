"""Applying degradations: pure, batched, differentiable functions (no randomness of their own).

``lr = Q( clip( (hr * k) downarrow_s + n ) )`` where ``*`` is a per-sample correlation with the protocol's padding,
``downarrow_s`` MATLAB-exact bicubic, ``n`` the noise map, and the optional clip / 8-bit quantisation ``Q`` come
from the `Pipeline`. The returned noise map is always ``lr - lr_clean``, so ``lr == lr_clean + noise_map`` holds
in every mode: without clipping and quantisation it is exactly ``sigma / 255 * eps``; with them it is the
*effective* noise left in the stored LR image (what a denoiser would have to remove).

Gradients flow to ``hr``, the kernels and the noise map (DMSR's consistency loss re-degrades HR with *estimated*
kernels and noise maps). The 8-bit rounding uses a straight-through estimator (identity gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from blindsr.degradations.noise import gaussian_noise_map, standard_normal
from blindsr.degradations.spec import DegradationParams, Pipeline
from blindsr.ops.checks import check_image_batch
from blindsr.ops.color import quantize_uint8
from blindsr.ops.filter import filter2d_per_sample
from blindsr.ops.precision import fp32_region
from blindsr.ops.resize import bicubic_downscale

__all__ = ["DegradationResult", "blur_downscale", "degrade", "synthesize_lr"]


@dataclass(frozen=True, slots=True)
class DegradationResult:
    """A degraded batch.

    Attributes:
        lr: (B, 3, h, w) the degraded images.
        lr_clean: (B, 3, h, w) blurred and downscaled, before noise (8-bit if ``quantize_clean``).
        noise_map: (B, 3, h, w) ``lr - lr_clean``: the ground-truth noise map.
    """

    lr: torch.Tensor
    lr_clean: torch.Tensor
    noise_map: torch.Tensor


def _straight_through_quantize(x: torch.Tensor) -> torch.Tensor:
    return x + (quantize_uint8(x) - x).detach()


def blur_downscale(
    hr: torch.Tensor,
    kernels: torch.Tensor,
    *,
    scale: int,
    padding: str = "replicate",
    bicubic_border: str = "symmetric",
) -> torch.Tensor:
    """``(hr * k) downarrow_s``: per-sample blur, then MATLAB bicubic downscaling by `scale`.

    Args:
        hr: (B, C, H, W) float images; H and W divisible by `scale` (modcrop first).
        kernels: (B, k, k) per-sample kernels (k odd).
        scale: integer factor.
        padding: blur border mode (``"replicate"`` DMSR/SRMD, ``"reflect"`` MRDA/DASR).
        bicubic_border: ``"symmetric"`` (MATLAB) or ``"replicate"`` (MRDA/DASR reference code).

    Returns:
        (B, C, H / scale, W / scale) in `hr`'s dtype, not clipped. Computed without autocast (training data is never
        synthesised in bf16: a bf16 blur moves an 8-bit LR pixel by up to 2.5 levels; blindsr.ops.precision).
    """
    with fp32_region(hr.device):
        blurred = filter2d_per_sample(hr, kernels, padding=padding)  # type: ignore[arg-type]
        return bicubic_downscale(blurred, scale, border=bicubic_border)  # type: ignore[arg-type]


def synthesize_lr(
    hr: torch.Tensor,
    kernels: torch.Tensor,
    *,
    scale: int,
    noise_map: torch.Tensor | None = None,
    pipeline: Pipeline | None = None,
) -> DegradationResult:
    """Degrade with explicit kernels and an explicit additive noise map (the pure core of the engine).

    Args:
        hr: (B, 3, H, W) float RGB in [0, 1], H and W divisible by `scale`.
        kernels: (B, k, k) blur kernels.
        scale: integer downscaling factor.
        noise_map: (B, 3, H / scale, W / scale) additive noise in image units, or None for no noise.
        pipeline: padding, borders, clipping and quantisation (default: DMSR's float protocol).

    Returns:
        A `DegradationResult`.

    >>> from blindsr.degradations.kernels import delta_kernels
    >>> out = synthesize_lr(torch.rand(2, 3, 16, 16), delta_kernels(2, 15), scale=4)
    >>> out.lr.shape, bool(out.noise_map.abs().max() == 0)
    (torch.Size([2, 3, 4, 4]), True)
    """
    check_image_batch(hr, name="hr")
    pipeline = pipeline or Pipeline()
    if kernels.ndim != 3 or kernels.shape[0] != hr.shape[0]:
        raise ValueError(f"kernels must be (B, k, k) with B = {hr.shape[0]}, got {tuple(kernels.shape)}")
    lr_clean = blur_downscale(
        hr, kernels, scale=scale, padding=pipeline.blur_padding, bicubic_border=pipeline.bicubic_border
    )
    if pipeline.quantize_clean:
        lr_clean = _straight_through_quantize(lr_clean)
    lr = lr_clean
    if noise_map is not None:
        if noise_map.shape != lr_clean.shape:
            raise ValueError(f"noise_map must have shape {tuple(lr_clean.shape)}, got {tuple(noise_map.shape)}")
        lr = lr + noise_map
    if pipeline.clip:
        lr = lr.clamp(0.0, 1.0)
    if pipeline.quantize:
        lr = _straight_through_quantize(lr)
    return DegradationResult(lr=lr, lr_clean=lr_clean, noise_map=lr - lr_clean)


def degrade(
    hr: torch.Tensor,
    deg: DegradationParams,
    *,
    scale: int,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> DegradationResult:
    """Blur each image with its own kernel, downscale by `scale`, add its own Gaussian noise.

    Args:
        hr: (B, 3, H, W) float RGB in [0, 1]; H and W divisible by `scale`.
        deg: per-sample kernels (B, k, k) and noise levels (B,), e.g. from
            :func:`~blindsr.degradations.sample_degradation`; moved to ``hr.device`` if needed.
        scale: integer downscaling factor.
        noise: (B, 3, h, w) standard-normal samples (the noise realisation before scaling by sigma / 255).
        generator: alternatively, the generator to draw those samples from. One of `noise` / `generator` is
            required when any noise level is positive.

    Returns:
        A `DegradationResult` (``lr``, ``lr_clean``, ``noise_map``).

    >>> from blindsr.degradations.presets import get_training_preset
    >>> from blindsr.degradations.sample import sample_degradation
    >>> g = torch.Generator().manual_seed(0)
    >>> deg = sample_degradation(get_training_preset("dmsr"), 2, g)
    >>> degrade(torch.rand(2, 3, 32, 32), deg, scale=4, generator=g).lr.shape
    torch.Size([2, 3, 8, 8])
    """
    check_image_batch(hr, name="hr", channels=None)
    if deg.batch_size != hr.shape[0]:
        raise ValueError(f"deg has {deg.batch_size} samples but hr has {hr.shape[0]} images")
    if deg.kernels.device != hr.device:
        deg = deg.to(hr.device)
    b, c, h, w = hr.shape
    if h % scale or w % scale:
        raise ValueError(f"hr size {h}x{w} is not divisible by scale {scale}; modcrop it first")
    noise_map = None
    if bool((deg.noise_sigma > 0).any()):
        if noise is None:
            if generator is None:
                raise ValueError("noise levels are positive: pass `noise` (standard normal) or a `generator`")
            # always drawn in float32, so a seed gives the same realisation whatever the image dtype
            noise = standard_normal((b, c, h // scale, w // scale), generator=generator, device=hr.device)
        noise_map = gaussian_noise_map(noise.to(device=hr.device, dtype=hr.dtype), deg.noise_sigma.to(hr.device))
    return synthesize_lr(hr, deg.kernels.to(hr.dtype), scale=scale, noise_map=noise_map, pipeline=deg.pipeline)
