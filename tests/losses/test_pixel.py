"""Pixel losses (blindsr.losses.pixel): hand-computed values of both norms and both reductions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from blindsr.losses import l1_loss, pixel_loss, squared_l2_loss

# two samples of shape (1, 2, 2): differences [1, -1, 1, -1] and [0, 0, 0, 2] from a zero target
PRED = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]]], [[[0.0, 0.0], [0.0, 2.0]]]])
TARGET = torch.zeros(2, 1, 2, 2)


@pytest.mark.parametrize(
    ("norm", "reduction", "expected"),
    [
        ("l1", "mean", 6 / 8),  # (4 + 2) / 8 entries
        ("l1", "sum", 3.0),  # per sample 4 and 2, batch mean 3
        ("l2", "mean", 1.0),  # (4 + 4) / 8 entries
        ("l2", "sum", 4.0),  # per sample 4 and 4
    ],
)
def test_values_on_a_hand_checked_batch(norm: str, reduction: str, expected: float) -> None:
    got = pixel_loss(PRED, TARGET, norm=norm, reduction=reduction)  # type: ignore[arg-type]
    assert got.ndim == 0 and float(got) == pytest.approx(expected, abs=1e-7)


def test_sum_is_the_mean_times_the_entries_per_sample() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 3, 5, 4, generator=g), torch.randn(3, 3, 5, 4, generator=g)
    for norm in ("l1", "l2"):
        mean = pixel_loss(pred, target, norm=norm, reduction="mean")  # type: ignore[arg-type]
        total = pixel_loss(pred, target, norm=norm, reduction="sum")  # type: ignore[arg-type]
        assert float(total) == pytest.approx(60 * float(mean), rel=1e-6)


def test_mean_reduction_agrees_with_torch() -> None:
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 7, 6, generator=g), torch.rand(2, 3, 7, 6, generator=g)
    torch.testing.assert_close(l1_loss(pred, target), F.l1_loss(pred, target))
    torch.testing.assert_close(squared_l2_loss(pred, target), F.mse_loss(pred, target))


def test_l1_gradient_is_the_sign_over_the_entries() -> None:
    pred = PRED.clone().requires_grad_(True)
    l1_loss(pred, TARGET).backward()
    assert pred.grad is not None
    torch.testing.assert_close(pred.grad, torch.sign(PRED) / 8)


def test_unknown_norm_or_reduction() -> None:
    with pytest.raises(ValueError, match="norm must be"):
        pixel_loss(PRED, TARGET, norm="l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction must be"):
        pixel_loss(PRED, TARGET, reduction="none")  # type: ignore[arg-type]
