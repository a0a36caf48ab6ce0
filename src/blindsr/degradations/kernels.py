"""Gaussian blur kernels, batched from per-sample parameters and differentiable in them.

Conventions (``docs/specs/degradations_and_protocols.md`` section 1): odd size k, coordinates ``-(k-1)/2 ...
(k-1)/2``, x = column (left to right), y = row (top to bottom), every kernel normalised to sum 1. Anisotropic kernels
use the *standard-deviation* convention of DASR/MRDA: ``Sigma = R(theta) diag(l1^2, l2^2) R(theta)^T`` with
``R = [[cos, -sin], [sin, cos]]``, so theta rotates +x towards +y (downwards on screen). SRMD/BSRGAN's *variance*
convention is ``l = lambda^2``.
"""

from __future__ import annotations

import torch

from blindsr.ops.checks import check_odd_kernel_size

__all__ = ["anisotropic_gaussian_kernels", "delta_kernels", "isotropic_gaussian_kernels", "kernel_grid"]

_EPS = torch.finfo(torch.float64).eps


def kernel_grid(
    size: int, *, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) coordinate grids of shape (size, size): x varies along columns, y along rows.

    >>> x, y = kernel_grid(3)
    >>> x[0].tolist(), y[:, 0].tolist()
    ([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0])
    """
    check_odd_kernel_size(size)
    r = (size - 1) / 2
    c = torch.linspace(-r, r, size, dtype=dtype, device=device)
    y, x = torch.meshgrid(c, c, indexing="ij")
    return x, y


def _normalise(logits: torch.Tensor) -> torch.Tensor:
    k = torch.exp(logits - logits.amax(dim=(-2, -1), keepdim=True))
    # MATLAB fspecial zeroes values below eps * max (no practical effect, kept for exactness)
    k = torch.where(k < _EPS * k.amax(dim=(-2, -1), keepdim=True), torch.zeros_like(k), k)
    return k / k.sum(dim=(-2, -1), keepdim=True)


def delta_kernels(
    batch: int, size: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """(batch, size, size) identity kernels (a single 1 at the centre).

    >>> delta_kernels(1, 3)[0].tolist()
    [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    check_odd_kernel_size(size)
    k = torch.zeros(batch, size, size, dtype=dtype, device=device)
    k[:, size // 2, size // 2] = 1.0
    return k


def isotropic_gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Isotropic Gaussian kernels ``exp(-(x^2 + y^2) / (2 sigma^2))``, normalised (MATLAB ``fspecial``).

    Args:
        sigma: (B,) standard deviations in pixels; 0 gives the identity (delta) kernel.
        size: odd kernel size (15 for DMSR/SRMD, 21 for IKC/DASR/MRDA).

    Returns:
        (B, size, size) kernels summing to 1, dtype and device of `sigma` (float32 if `sigma` is an integer tensor).

    >>> k = isotropic_gaussian_kernels(torch.tensor([1.3, 0.0]), 15)
    >>> round(k[0, 7, 7].item(), 6), k[1, 7, 7].item()
    (0.094175, 1.0)
    """
    check_odd_kernel_size(size)
    sigma = torch.as_tensor(sigma)
    if not sigma.is_floating_point():
        sigma = sigma.float()
    if sigma.ndim != 1:
        raise ValueError(f"sigma must have shape (B,), got {tuple(sigma.shape)}")
    if bool((sigma < 0).any()):
        raise ValueError("sigma must be >= 0")
    x, y = kernel_grid(size, dtype=sigma.dtype, device=sigma.device)
    positive = sigma > 0
    safe = torch.where(positive, sigma, torch.ones_like(sigma)).view(-1, 1, 1)
    k = _normalise(-(x * x + y * y) / (2 * safe * safe))
    delta = delta_kernels(sigma.shape[0], size, dtype=sigma.dtype, device=sigma.device)
    return torch.where(positive.view(-1, 1, 1), k, delta)


def anisotropic_gaussian_kernels(
    lambda1: torch.Tensor, lambda2: torch.Tensor, theta: torch.Tensor, size: int
) -> torch.Tensor:
    """Anisotropic Gaussian kernels ``exp(-p^T Sigma^-1 p / 2)`` in the standard-deviation convention.

    Args:
        lambda1: (B,) standard deviation along the rotated x axis (> 0).
        lambda2: (B,) standard deviation along the rotated y axis (> 0).
        theta: (B,) rotation in radians; theta and theta + pi give the same kernel.
        size: odd kernel size.

    Returns:
        (B, size, size) kernels summing to 1. With ``lambda1 == lambda2 == sigma`` this equals
        :func:`isotropic_gaussian_kernels` for any theta.

    >>> import math
    >>> k = anisotropic_gaussian_kernels(torch.tensor([3.5]), torch.tensor([1.5]), torch.tensor([math.radians(20)]), 21)
    >>> round(k[0, 10, 10].item(), 6), round(k[0, 11, 11].item(), 6)
    (0.030362, 0.026226)
    """
    check_odd_kernel_size(size)
    l1, l2, th = (torch.as_tensor(v) for v in (lambda1, lambda2, theta))
    dtype = torch.promote_types(torch.promote_types(l1.dtype, l2.dtype), th.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    l1, l2, th = (v.to(dtype) for v in (l1, l2, th))
    if not (l1.ndim == l2.ndim == th.ndim == 1 and l1.shape == l2.shape == th.shape):
        raise ValueError("lambda1, lambda2 and theta must all have shape (B,)")
    if bool((l1 <= 0).any()) or bool((l2 <= 0).any()):
        raise ValueError("lambda1 and lambda2 must be > 0")
    x, y = kernel_grid(size, dtype=dtype, device=l1.device)
    c, s = torch.cos(th).view(-1, 1, 1), torch.sin(th).view(-1, 1, 1)
    # coordinates in the kernel's own frame: R^T p
    u = c * x + s * y
    v = -s * x + c * y
    quad = (u / l1.view(-1, 1, 1)) ** 2 + (v / l2.view(-1, 1, 1)) ** 2
    return _normalise(-0.5 * quad)
