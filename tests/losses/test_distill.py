from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from blindsr.losses import idr_distillation_loss


def test_zero_when_student_equals_teacher_and_positive_otherwise() -> None:
    z = torch.randn(4, 256, generator=torch.Generator().manual_seed(0))
    for kind in ("paper", "reference"):
        kl, ab = idr_distillation_loss(z, z.clone(), kind=kind, temperature=0.15)  # type: ignore[arg-type]
        assert float(kl) == 0.0 and float(ab) == 0.0
        kl, ab = idr_distillation_loss(z + 0.1 * torch.randn_like(z), z, kind=kind)  # type: ignore[arg-type]
        assert float(kl) > 0 and float(ab) > 0


def test_forms_match_their_definitions() -> None:
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(3, 256, generator=g), torch.randn(3, 256, generator=g)
    # reference: torch's kl_div with batchmean, at its temperature
    kl_ref, _ = idr_distillation_loss(s, t, kind="reference", temperature=0.15)
    expected = F.kl_div(F.log_softmax(s / 0.15, 1), F.softmax(t / 0.15, 1), reduction="batchmean")
    torch.testing.assert_close(kl_ref, expected)
    # paper: (1/4C) sum p_T log(p_T / p_S), averaged over the batch
    kl_paper, ab = idr_distillation_loss(s, t)
    p_t, p_s = F.softmax(t, 1), F.softmax(s, 1)
    torch.testing.assert_close(kl_paper, (p_t * (p_t / p_s).log()).sum(1).mean() / 256)
    torch.testing.assert_close(ab, (s - t).abs().mean())


def test_the_teacher_gets_no_gradient() -> None:
    s = torch.randn(2, 8, requires_grad=True)
    t = torch.randn(2, 8, requires_grad=True)
    kl, ab = idr_distillation_loss(s, t)
    (kl + ab).backward()
    assert s.grad is not None and t.grad is None


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="both be"):
        idr_distillation_loss(torch.zeros(2, 8), torch.zeros(2, 9))
    with pytest.raises(ValueError, match="temperature"):
        idr_distillation_loss(torch.zeros(2, 8), torch.zeros(2, 8), temperature=0)
