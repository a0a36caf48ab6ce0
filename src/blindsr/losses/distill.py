"""Knowledge distillation of an implicit degradation representation (MRDA, Sec. III-D, Eq. 4-6).

The student's DEN_S learns the teacher's IDR ``D_T`` (B, 4C) from the LR image alone. Two forms:

``"paper"`` (default, Eq. 4-5)
    ``L_kl = (1/4C) sum_i p_T(i) log(p_T(i) / p_S(i))`` with ``p = softmax(D / tau)`` over the 4C entries
    (tau = 1: the paper mentions no temperature), and ``L_abs = (1/4C) sum_i |D_T(i) - D_S(i)|``; both averaged over
    the batch.
``"reference"`` (Zj-BinXia/MRDA's code)
    ``kl_div(log_softmax(D_S / tau), softmax(D_T / tau), reduction="batchmean")``: a *sum* over the entries divided
    by the batch, tau = 0.15 in that code, no tau^2 factor; ``L_abs`` the mean absolute difference as above.

The teacher target is detached here, so the loss never trains the teacher.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["KDLossKind", "idr_distillation_loss"]

KDLossKind = Literal["paper", "reference"]


def idr_distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, *, kind: KDLossKind = "paper", temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_kl, L_abs)`` between a student and a teacher IDR.

    Args:
        student: (B, D) student IDR ``D_S`` (logits of the softmax in L_kl).
        teacher: (B, D) teacher IDR ``D_T``; detached inside.
        kind: ``"paper"`` (mean over entries) or ``"reference"`` (sum over entries / batch); see the module text.
        temperature: tau of both softmaxes (> 0).

    Returns:
        ``(L_kl, L_abs)``, two non-negative scalars; both are exactly 0 when ``student == teacher``.

    Raises:
        ValueError: mismatched shapes, not (B, D), a non-positive temperature or an unknown kind.

    >>> z = torch.randn(2, 256)
    >>> [float(v) for v in idr_distillation_loss(z, z)]
    [0.0, 0.0]
    """
    if student.ndim != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"student and teacher IDRs must both be (B, D), got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if kind not in ("paper", "reference"):
        raise ValueError(f"kind must be 'paper' or 'reference', got {kind!r}")
    target = teacher.detach().float()
    s = student.float()
    log_p_s = F.log_softmax(s / temperature, dim=1)
    log_p_t = F.log_softmax(target / temperature, dim=1)
    # p_T (log p_T - log p_S), summed per sample; clamp tiny negative rounding (KL >= 0)
    kl_per_sample = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).clamp_min(0.0)
    l_kl = kl_per_sample.mean() / s.shape[1] if kind == "paper" else kl_per_sample.mean()
    l_abs = (s - target).abs().mean()
    return l_kl, l_abs
