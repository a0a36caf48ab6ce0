"""Input checks for public functions: clear one-line errors instead of shape errors deep inside torch."""

from __future__ import annotations

from typing import Final

import torch

MAX_WIDTH: Final = 1024
"""Largest channel count a network constructor accepts (the papers use 64-256)."""
MAX_DEPTH: Final = 128
"""Largest number of blocks or groups a network constructor accepts (the papers use up to 27)."""
MAX_KERNEL: Final = 63
"""Largest kernel side a network constructor accepts (the papers use 1-21)."""

__all__ = [
    "MAX_DEPTH",
    "MAX_KERNEL",
    "MAX_WIDTH",
    "check_counts",
    "check_image_batch",
    "check_odd_kernel_size",
    "check_per_sample",
]


def check_image_batch(x: torch.Tensor, *, name: str = "image", channels: int | None = None) -> None:
    """Check that `x` is a floating (B, C, H, W) tensor.

    Args:
        x: the tensor to check.
        name: how the error message refers to `x`.
        channels: the required number of channels, or None for any.

    Raises:
        TypeError: `x` is not a floating-point tensor.
        ValueError: `x` is not 4-D or has the wrong number of channels.

    >>> check_image_batch(torch.zeros(2, 3, 8, 8), channels=3)
    >>> check_image_batch(torch.zeros(3, 8, 8))
    Traceback (most recent call last):
    ...
    ValueError: image must be a (B, C, H, W) batch, got shape (3, 8, 8)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {tuple(x.shape)}")


def check_odd_kernel_size(size: int) -> None:
    """Reject even or non-positive kernel sizes (kernels are centred on a pixel).

    >>> check_odd_kernel_size(15)
    >>> check_odd_kernel_size(14)
    Traceback (most recent call last):
    ...
    ValueError: kernel size must be a positive odd integer, got 14
    """
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size}")


def check_per_sample(values: torch.Tensor, batch: int, *, name: str) -> None:
    """Check that `values` holds one entry per sample: shape (batch,).

    >>> check_per_sample(torch.zeros(4), 4, name="sigma")
    """
    if values.ndim != 1 or values.shape[0] != batch:
        raise ValueError(f"{name} must have shape ({batch},) (one value per sample), got {tuple(values.shape)}")


def check_counts(owner: str, *, minimum: int = 1, maximum: int, **values: object) -> None:
    """Check that each of `values` (network widths, depths, ...) is an integer in ``minimum..maximum``.

    Constructors call this first, so a configuration or a model file with ``n_feats: -8`` or ``n_feats: 10**6``
    fails with one line naming the argument, instead of a shape error deep inside torch or gigabytes allocated.

    >>> check_counts("DMSRNet", maximum=1024, n_feats=64)
    >>> check_counts("DMSRNet", maximum=1024, n_feats=-8)
    Traceback (most recent call last):
    ...
    ValueError: DMSRNet: n_feats must be an integer in 1..1024, got -8
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ValueError(f"{owner}: {name} must be an integer in {minimum}..{maximum}, got {value!r}")
