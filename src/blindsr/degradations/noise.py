"""Additive white Gaussian noise: per-sample sigma (0-255 units), explicit randomness, reproducible seeds."""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "gaussian_noise_map", "standard_normal"]


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from the parts: the first 8 bytes of ``sha256("p0|p1|...")``, big-endian.

    Never Python's ``hash()``, which is salted per process (docs/specs/degradations_and_protocols.md §7).

    >>> derive_seed("dmsr-grid", "Set5", "baby", "x4", 0) == derive_seed("dmsr-grid", "Set5", "baby", "x4", 0)
    True
    """
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def standard_normal(
    shape: tuple[int, ...],
    *,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """N(0, 1) samples drawn from `generator` on the generator's device, then moved to `device`.

    A CPU generator gives the same numbers whatever the target device (the evaluation presets rely on this).

    >>> g = torch.Generator().manual_seed(0)
    >>> standard_normal((2, 3), generator=g).shape
    torch.Size([2, 3])
    """
    eps = torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)
    return eps if device is None else eps.to(device)


def gaussian_noise_map(eps: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Scale standard-normal samples to noise maps: ``sigma[b] / 255 * eps[b]``.

    Args:
        eps: (B, C, H, W) standard-normal samples (colour noise: independent per pixel and channel).
        sigma: (B,) noise levels on the 0-255 scale.

    Returns:
        (B, C, H, W) noise in [0, 1] image units.

    >>> gaussian_noise_map(torch.ones(2, 1, 1, 1), torch.tensor([0.0, 25.5])).flatten().tolist()
    [0.0, 0.10000000149011612]
    """
    if sigma.ndim != 1 or sigma.shape[0] != eps.shape[0]:
        raise ValueError(f"sigma must have shape ({eps.shape[0]},), got {tuple(sigma.shape)}")
    return eps * (sigma.to(eps.dtype) / 255.0).view(-1, *([1] * (eps.ndim - 1)))
