"""DMSR's losses (blindsr.losses.dmsr, paper Eq. 6-8) on tiny tensors whose values can be checked by hand."""

from __future__ import annotations

import pytest
import torch

from blindsr.losses import degradation_consistency_loss, degradation_reconstruction_loss, reconstruction_loss


def _one_hot_kernel(batch: int = 1, k: int = 3) -> torch.Tensor:
    kernel = torch.zeros(batch, k, k)
    kernel[:, k // 2, k // 2] = 1.0
    return kernel


def test_l_re_is_the_mean_absolute_error() -> None:
    hr = torch.zeros(2, 3, 2, 2)
    sr = hr.clone()
    sr[0, 0, 0, 0], sr[1, 2, 1, 1] = 0.6, -0.2  # |0.6| + |-0.2| over 24 entries
    assert float(reconstruction_loss(sr, hr)) == pytest.approx(0.8 / 24)


def test_l_re_casts_a_low_precision_output_to_float32() -> None:
    sr, hr = torch.full((1, 3, 2, 2), 0.75, dtype=torch.bfloat16), torch.full((1, 3, 2, 2), 0.5)
    loss = reconstruction_loss(sr, hr)
    assert loss.dtype == torch.float32 and float(loss) == 0.25


def test_l_dr_terms_with_both_kernel_reductions() -> None:
    # K_est uniform 1/9, K_GT the 3x3 identity: squared error (8/9)^2 at the centre, (1/9)^2 at the 8 others
    kernel_sq_sum = (8 / 9) ** 2 + 8 / 81
    noise_est = torch.zeros(2, 3, 2, 2)
    noise_gt = torch.zeros(2, 3, 2, 2)
    noise_gt[0] = 0.5  # image 0: 12 entries of 0.25; image 1: exact
    args = {
        "kernel_est": torch.full((2, 3, 3), 1 / 9),
        "noise_est": noise_est,
        "kernel_gt": _one_hot_kernel(2),
        "noise_gt": noise_gt,
    }
    mean = degradation_reconstruction_loss(**args)
    assert float(mean.noise) == pytest.approx(12 * 0.25 / 24)
    assert float(mean.kernel) == pytest.approx(kernel_sq_sum / 9)
    assert float(mean.total) == pytest.approx(0.125 + kernel_sq_sum / 9)
    literal = degradation_reconstruction_loss(**args, reduction="sum")  # ||.||^2 per image, batch mean
    assert float(literal.noise) == pytest.approx(12 * 0.25 / 2)
    assert float(literal.kernel) == pytest.approx(kernel_sq_sum)
    mixed = degradation_reconstruction_loss(**args, kernel_reduction="sum")  # only the kernel term summed
    assert float(mixed.noise) == pytest.approx(float(mean.noise)) and float(mixed.kernel) == pytest.approx(
        kernel_sq_sum
    )


def test_l_dr_is_zero_at_the_ground_truth() -> None:
    k, n = _one_hot_kernel(), torch.randn(1, 3, 4, 4)
    terms = degradation_reconstruction_loss(kernel_est=k, noise_est=n, kernel_gt=k.clone(), noise_gt=n.clone())
    assert float(terms.noise) == 0.0 and float(terms.kernel) == 0.0


def _dc_inputs() -> dict[str, torch.Tensor]:
    z = torch.zeros(1, 3, 2, 2)
    k = torch.full((1, 3, 3), 1 / 9)
    kernel_sim = k.clone()
    kernel_sim[0, 0, 0] += 0.3  # one kernel entry off by 0.3
    return {
        "lr_sim": z - 0.1,  # image term: 0.1^2 (l2) or 0.1 (l1) per entry
        "lr": z,
        "kernel_sim": kernel_sim,
        "kernel_est": k,
        "noise_sim": z + 0.2,  # noise term: 0.2^2 per entry
        "noise_est": z,
    }


def test_l_dc_terms_and_selection() -> None:
    full = degradation_consistency_loss(**_dc_inputs())
    assert full.image is not None and full.kn is not None
    assert float(full.image) == pytest.approx(0.01)
    assert float(full.kn) == pytest.approx(0.09 / 9 + 0.04)
    assert float(full.total) == pytest.approx(0.01 + 0.01 + 0.04)
    lr_only = degradation_consistency_loss(**_dc_inputs(), terms="lr")
    assert lr_only.kn is None and float(lr_only.total) == pytest.approx(0.01)
    kn_only = degradation_consistency_loss(**_dc_inputs(), terms="kn")
    assert kn_only.image is None and float(kn_only.total) == pytest.approx(0.05)
    l1 = degradation_consistency_loss(**_dc_inputs(), image_norm="l1")
    assert float(l1.image) == pytest.approx(0.1)  # type: ignore[arg-type]
    summed = degradation_consistency_loss(**_dc_inputs(), reduction="sum")
    assert float(summed.image) == pytest.approx(12 * 0.01)  # type: ignore[arg-type]
    assert float(summed.kn) == pytest.approx(0.09 + 12 * 0.04)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="terms must be"):
        degradation_consistency_loss(**_dc_inputs(), terms="none")  # type: ignore[arg-type]


def test_l_dc_detaches_the_re_estimation_targets_by_default() -> None:
    inputs = _dc_inputs()
    kernel_est = inputs["kernel_est"].requires_grad_(True)
    noise_est = inputs["noise_est"].requires_grad_(True)
    noise_sim = inputs["noise_sim"].requires_grad_(True)
    degradation_consistency_loss(**inputs, terms="kn").total.backward()
    assert kernel_est.grad is None and noise_est.grad is None
    assert noise_sim.grad is not None  # the re-estimate is trained: +2 * 0.2 / 12 per entry
    torch.testing.assert_close(noise_sim.grad, torch.full_like(noise_sim, 0.4 / 12))
    degradation_consistency_loss(**inputs, terms="kn", detach_targets=False).total.backward()
    assert noise_est.grad is not None
    # d/dN_est of mean((N_sim - N_est)^2) = -2 (N_sim - N_est) / 12 = -2 * 0.2 / 12 per entry
    torch.testing.assert_close(noise_est.grad, torch.full_like(noise_est, -0.4 / 12))
