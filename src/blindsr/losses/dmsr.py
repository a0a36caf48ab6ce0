"""DMSR's three training losses (arXiv 2207.00943, Sec. 3.3, Eq. 6-8); their weighted sum (Eq. 5) is formed by
:class:`blindsr.methods.dmsr.DMSRMethod`.

``L_RE`` (Eq. 6), :func:`reconstruction_loss`
    The mean absolute error between the SR output and the HR image, ``(1/CHW) ||I_HR − I_SR||_1``.
``L_DR`` (Eq. 7), :func:`degradation_reconstruction_loss`
    Direct supervision of the degradation extractor: ``||N_GT − N_est||²_2 + ||K_GT − K_est||²_2``.
``L_DC`` (Eq. 8), :func:`degradation_consistency_loss`
    Consistency of the estimates with a re-simulation: the HR image degraded again with ``(K_est, N_est)`` gives
    ``I_sim``, the extractor's estimates on it are ``(K_sim, N_sim)``, and
    ``L_DC = ||I_sim − I_LR||²_2 + ||N_sim − N_est||²_2 + ||K_sim − K_est||²_2``. The re-simulation itself needs
    the degradation engine and is done by the method; this module only compares tensors.

The squared norms of Eq. 7-8 are, by default, means over the entries (``reduction="mean"``, the scale of an MSE);
``"sum"`` takes them literally, per image, averaged over the batch (see :mod:`blindsr.losses.pixel`). The kernel
terms can be reduced differently from the others (``kernel_reduction``): a 15×15 kernel's entries are about
1/225, so their mean squared error is tiny next to the noise term's.

Estimates (network outputs, possibly bf16 under autocast) are cast to float32 here; targets are used as given.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from blindsr.losses.pixel import Norm, Reduction, l1_loss, pixel_loss

__all__ = [
    "ConsistencyLoss",
    "ConsistencyTerms",
    "DegradationLoss",
    "degradation_consistency_loss",
    "degradation_reconstruction_loss",
    "reconstruction_loss",
]

ConsistencyTerms = Literal["all", "lr", "kn"]
"""Which terms of Eq. 8 are used (DMSR Table 2): all three, the image term only, or the kernel and noise terms."""


class DegradationLoss(NamedTuple):
    """``L_DR`` (Eq. 7) by term.

    Attributes:
        noise: the noise term ``||N_GT − N_est||²``.
        kernel: the kernel term ``||K_GT − K_est||²``.
    """

    noise: Tensor
    kernel: Tensor

    @property
    def total(self) -> Tensor:
        """``L_DR = noise + kernel``."""
        return self.noise + self.kernel


class ConsistencyLoss(NamedTuple):
    """``L_DC`` (Eq. 8) and the terms it was made of.

    Attributes:
        total: ``L_DC``, the sum of the terms used (a zero scalar when none is).
        image: the image term ``||I_sim − I_LR||²``, or None when not used (``terms="kn"``).
        kn: the kernel and noise terms ``||K_sim − K_est||² + ||N_sim − N_est||²``, or None (``terms="lr"``).
    """

    total: Tensor
    image: Tensor | None = None
    kn: Tensor | None = None


def reconstruction_loss(sr: Tensor, hr: Tensor) -> Tensor:
    """``L_RE`` (Eq. 6): the mean absolute error ``(1/CHW) ||I_HR − I_SR||_1``, averaged over the batch.

    Args:
        sr: (B, 3, H, W) the network's output (cast to float32).
        hr: (B, 3, H, W) the ground truth.

    >>> float(reconstruction_loss(torch.full((1, 3, 2, 2), 0.75), torch.full((1, 3, 2, 2), 0.5)))
    0.25
    """
    return l1_loss(sr.float(), hr)


def degradation_reconstruction_loss(
    *,
    kernel_est: Tensor,
    noise_est: Tensor,
    kernel_gt: Tensor,
    noise_gt: Tensor,
    reduction: Reduction = "mean",
    kernel_reduction: Reduction | None = None,
) -> DegradationLoss:
    """``L_DR`` (Eq. 7): the estimated degradation against the ground truth.

    Args:
        kernel_est: (B, k, k) ``K_est`` (cast to float32).
        noise_est: (B, 3, h, w) ``N_est`` (cast to float32).
        kernel_gt: (B, k, k) ``K_GT``.
        noise_gt: (B, 3, h, w) ``N_GT``, the noise realisation added to the LR image.
        reduction: of the squared norms, ``"mean"`` (per entry) or ``"sum"`` (per image; Eq. 7 literally).
        kernel_reduction: of the kernel term; None = `reduction`.

    Returns:
        The two terms; ``.total`` is ``L_DR``.

    >>> k = torch.zeros(1, 3, 3); k[0, 1, 1] = 1.0
    >>> terms = degradation_reconstruction_loss(
    ...     kernel_est=torch.full((1, 3, 3), 1 / 9), noise_est=torch.zeros(1, 3, 2, 2), kernel_gt=k,
    ...     noise_gt=torch.full((1, 3, 2, 2), 0.5), kernel_reduction="sum")
    >>> round(float(terms.noise), 6), round(float(terms.kernel), 6)  # 0.5², and (8/9)² + 8 (1/9)²
    (0.25, 0.888889)
    """
    kernel_reduction = kernel_reduction or reduction
    noise = pixel_loss(noise_est.float(), noise_gt, norm="l2", reduction=reduction)
    kernel = pixel_loss(kernel_est.float(), kernel_gt, norm="l2", reduction=kernel_reduction)
    return DegradationLoss(noise=noise, kernel=kernel)


def degradation_consistency_loss(
    *,
    lr_sim: Tensor,
    lr: Tensor,
    kernel_sim: Tensor,
    kernel_est: Tensor,
    noise_sim: Tensor,
    noise_est: Tensor,
    terms: ConsistencyTerms = "all",
    reduction: Reduction = "mean",
    kernel_reduction: Reduction | None = None,
    image_norm: Norm = "l2",
    detach_targets: bool = True,
) -> ConsistencyLoss:
    """``L_DC`` (Eq. 8): the re-simulated image against the input, the re-estimates against the estimates.

    Args:
        lr_sim: (B, 3, h, w) ``I_sim``, the HR image degraded with ``(K_est, N_est)`` (cast to float32).
        lr: (B, 3, h, w) the LR input ``I_LR``.
        kernel_sim: (B, k, k) ``K_sim``, the extractor's kernel on ``I_sim`` (cast to float32).
        kernel_est: (B, k, k) ``K_est``, the extractor's kernel on ``I_LR``: the target of ``K_sim``.
        noise_sim: (B, 3, h, w) ``N_sim`` (cast to float32).
        noise_est: (B, 3, h, w) ``N_est``: the target of ``N_sim``.
        terms: ``"all"``, ``"lr"`` (the image term only) or ``"kn"`` (the kernel and noise terms only).
        reduction: of the squared norms, as in :func:`degradation_reconstruction_loss`.
        kernel_reduction: of the kernel term; None = `reduction`.
        image_norm: ``"l2"`` (Eq. 8) or ``"l1"`` for the image term.
        detach_targets: treat ``K_est`` and ``N_est`` as fixed targets (pseudo-labels) in the kernel and noise
            terms, so that these terms train the extractor only through its pass on ``I_sim``.

    Returns:
        ``L_DC`` and its terms.

    Raises:
        ValueError: unknown `terms`.

    >>> z = torch.zeros(1, 3, 2, 2); k = torch.full((1, 3, 3), 1 / 9)
    >>> out = degradation_consistency_loss(lr_sim=z + 0.1, lr=z, kernel_sim=k, kernel_est=k, noise_sim=z + 0.2,
    ...                                    noise_est=z)
    >>> round(float(out.image), 6), round(float(out.kn), 6), round(float(out.total), 6)  # 0.1², 0 + 0.2²
    (0.01, 0.04, 0.05)
    """
    if terms not in ("all", "lr", "kn"):
        raise ValueError(f"terms must be 'all', 'lr' or 'kn', got {terms!r}")
    kernel_reduction = kernel_reduction or reduction
    total = torch.zeros((), device=lr.device)
    image: Tensor | None = None
    kn: Tensor | None = None
    if terms in ("all", "lr"):
        image = pixel_loss(lr_sim.float(), lr, norm=image_norm, reduction=reduction)
        total = total + image
    if terms in ("all", "kn"):
        kernel_target = kernel_est.float().detach() if detach_targets else kernel_est.float()
        noise_target = noise_est.float().detach() if detach_targets else noise_est.float()
        kn = pixel_loss(kernel_sim.float(), kernel_target, norm="l2", reduction=kernel_reduction) + pixel_loss(
            noise_sim.float(), noise_target, norm="l2", reduction=reduction
        )
        total = total + kn
    return ConsistencyLoss(total=total, image=image, kn=kn)
