"""The only random function of the degradation engine: draw per-sample parameters from a `DegradationSpec`."""

from __future__ import annotations

import torch

from blindsr.degradations.kernels import anisotropic_gaussian_kernels, delta_kernels, isotropic_gaussian_kernels
from blindsr.degradations.spec import DegradationParams, DegradationSpec

__all__ = ["sample_degradation"]


def _uniform(lo_hi: tuple[float, float], n: int, generator: torch.Generator) -> torch.Tensor:
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
    return (lo + (hi - lo) * u).float()


def sample_degradation(spec: DegradationSpec, batch_size: int, generator: torch.Generator) -> DegradationParams:
    """Draw `batch_size` degradations from `spec`.

    The draws are made on the generator's device in a fixed order (kernel parameters, noise level, then the
    noise-free coin when ``spec.noise_free_prob`` > 0), so a CPU generator seeded from ``(run seed, step)`` gives the
    same parameters on every device and with any number of data-loader workers. Noise *realisations* are drawn
    when applying (:func:`~blindsr.degradations.degrade`), from a generator passed there.

    Args:
        spec: the distributions.
        batch_size: number of samples B.
        generator: the source of randomness (required: randomness is explicit).

    Returns:
        `DegradationParams` on the generator's device; with ``spec.per == "batch"`` all B samples share one draw.

    >>> from blindsr.degradations.presets import get_training_preset
    >>> g = torch.Generator().manual_seed(0)
    >>> deg = sample_degradation(get_training_preset("mrda-iso-x4"), 4, g)
    >>> deg.kernels.shape, bool((deg.kernel_sigma == deg.kernel_sigma[0]).all())
    (torch.Size([4, 21, 21]), True)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isinstance(generator, torch.Generator):
        raise TypeError("generator must be a torch.Generator (randomness is explicit in blindsr)")
    n = batch_size if spec.per == "image" else 1

    def expand(t: torch.Tensor) -> torch.Tensor:
        return t if n == batch_size else t.expand(batch_size).clone()

    kernel_sigma = lambda1 = lambda2 = theta = None
    if spec.kernel == "iso":
        kernel_sigma = expand(_uniform(spec.sigma, n, generator))
        kernels = isotropic_gaussian_kernels(kernel_sigma, spec.kernel_size)
    elif spec.kernel == "aniso":
        lambda1 = expand(_uniform(spec.lambda1, n, generator))
        lambda2 = expand(_uniform(spec.lambda2, n, generator))
        theta = expand(_uniform(spec.theta, n, generator))
        kernels = anisotropic_gaussian_kernels(lambda1, lambda2, theta, spec.kernel_size)
    else:
        kernels = delta_kernels(batch_size, spec.kernel_size, device=generator.device)
    noise_sigma = _uniform(spec.noise, n, generator)
    if spec.noise_free_prob > 0:  # drawn last, and only when asked, so the paper presets' streams are unchanged
        clean = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64) < spec.noise_free_prob
        noise_sigma = torch.where(clean, torch.zeros_like(noise_sigma), noise_sigma)
    noise_sigma = expand(noise_sigma)
    return DegradationParams(
        kernels=kernels,
        noise_sigma=noise_sigma,
        pipeline=spec.pipeline,
        kernel_sigma=kernel_sigma,
        lambda1=lambda1,
        lambda2=lambda2,
        theta=theta,
    )
