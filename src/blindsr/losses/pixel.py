"""Pixel-wise losses: L1 and squared L2 of a difference, averaged per entry or summed per sample.

Two reductions, because papers write their losses both ways:

``"mean"``
    The mean over every entry of the batch: ``(1 / (B·N)) Σ_b Σ_i e(d_bi)``. This is what ``1/(CHW) ||·||_1``
    (DMSR Eq. 6) means, and what PyTorch's ``F.l1_loss`` / ``F.mse_loss`` compute.
``"sum"``
    The norm of each sample, averaged over the batch: ``(1 / B) Σ_b Σ_i e(d_bi)``, i.e. ``||d_b||_1`` or
    ``||d_b||²_2`` per sample, as a loss written ``||x − y||²_2`` without a normalisation (DMSR Eq. 7-8) reads
    literally.

with ``e(d) = |d|`` (``"l1"``) or ``d²`` (``"l2"``). Dimension 0 is the batch; any other shape is flattened.
Inputs are used in their own dtypes (the usual type promotion): cast low-precision network outputs to float32
before calling, as the training methods do.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

__all__ = ["Norm", "Reduction", "l1_loss", "pixel_loss", "squared_l2_loss"]

Norm = Literal["l1", "l2"]
"""``"l1"``: absolute differences; ``"l2"``: squared differences."""
Reduction = Literal["mean", "sum"]
"""``"mean"``: mean over all entries; ``"sum"``: per-sample sum, mean over the batch (see the module text)."""


def pixel_loss(pred: Tensor, target: Tensor, *, norm: Norm = "l1", reduction: Reduction = "mean") -> Tensor:
    """The ``norm`` of ``pred − target``, reduced by ``reduction`` (see the module text).

    Args:
        pred: (B, ...) prediction.
        target: a tensor broadcastable to `pred` (normally the same shape).
        norm: ``"l1"`` (``|d|``) or ``"l2"`` (``d²``).
        reduction: ``"mean"`` (over all entries) or ``"sum"`` (per sample, then the batch mean).

    Returns:
        A scalar tensor.

    Raises:
        ValueError: an unknown norm or reduction.

    >>> import torch
    >>> d = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    >>> [float(pixel_loss(d, torch.zeros(2, 2), norm=n, reduction=r)) for n in ("l1", "l2") for r in ("mean", "sum")]
    [1.5, 3.0, 3.5, 7.0]
    """
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    diff = pred - target
    values = diff.abs() if norm == "l1" else diff.pow(2)
    if reduction == "mean":
        return values.mean()
    return values.flatten(1).sum(dim=1).mean()


def l1_loss(pred: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """``pixel_loss(pred, target, norm="l1", reduction=reduction)``: mean absolute error by default.

    >>> import torch
    >>> float(l1_loss(torch.tensor([[0.0, 1.0, 4.0]]), torch.tensor([[1.0, 1.0, 1.0]])))
    1.3333333730697632
    """
    return pixel_loss(pred, target, norm="l1", reduction=reduction)


def squared_l2_loss(pred: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """``pixel_loss(pred, target, norm="l2", reduction=reduction)``: mean squared error by default.

    >>> import torch
    >>> float(squared_l2_loss(torch.tensor([[0.0, 1.0, 4.0]]), torch.tensor([[1.0, 1.0, 1.0]]), reduction="sum"))
    10.0
    """
    return pixel_loss(pred, target, norm="l2", reduction=reduction)
