"""Kernels against the reference values of docs/specs/degradations_and_protocols.md §10 and MATLAB fspecial."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from blindsr.degradations.kernels import anisotropic_gaussian_kernels, delta_kernels, isotropic_gaussian_kernels


def _fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    r = (size - 1) / 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


@pytest.mark.parametrize(("sigma", "centre"), [(0.2, 0.999985), (1.3, 0.094175), (2.6, 0.023719), (3.0, 0.018117)])
def test_iso15_centre_values(sigma: float, centre: float) -> None:
    k = isotropic_gaussian_kernels(torch.tensor([sigma], dtype=torch.float64), 15)[0]
    assert k[7, 7].item() == pytest.approx(centre, abs=1e-6)
    assert np.allclose(k.numpy(), _fspecial_gaussian(15, sigma), atol=1e-15)


@pytest.mark.parametrize(
    ("sigma", "centre"),
    [
        (0.8, 0.248676),
        (1.2, 0.110524),
        (1.6, 0.062170),
        (1.8, 0.049122),
        (2.6, 0.023546),
        (3.2, 0.015573),
        (3.6, 0.012365),
        (4.0, 0.010118),
    ],
)
def test_iso21_centre_values(sigma: float, centre: float) -> None:
    k = isotropic_gaussian_kernels(torch.tensor([sigma], dtype=torch.float64), 21)[0]
    assert k[10, 10].item() == pytest.approx(centre, abs=1e-6)


def test_aniso_reference_values_and_orientation() -> None:
    k = anisotropic_gaussian_kernels(
        torch.tensor([3.5], dtype=torch.float64),
        torch.tensor([1.5], dtype=torch.float64),
        torch.tensor([math.radians(20)], dtype=torch.float64),
        21,
    )[0]
    expected = {(10, 10): 0.030362, (10, 11): 0.028536, (11, 10): 0.024834, (11, 11): 0.026226, (9, 11): 0.020771}
    for (r, c), v in expected.items():
        assert k[r, c].item() == pytest.approx(v, abs=1e-6)
    assert k[11, 11] > k[9, 11]  # theta rotates +x towards +y (down on screen)


def test_iso_equals_aniso_with_equal_lambdas_for_any_theta() -> None:
    sig = torch.tensor([0.7, 1.9, 3.3], dtype=torch.float64)
    iso = isotropic_gaussian_kernels(sig, 21)
    for theta in (0.0, 0.4, 2.9):
        aniso = anisotropic_gaussian_kernels(sig, sig, torch.full_like(sig, theta), 21)
        assert torch.allclose(iso, aniso, atol=1e-15)


def test_theta_and_theta_plus_pi_agree_and_swap_axes() -> None:
    l1, l2 = torch.tensor([3.0]), torch.tensor([1.0])
    a = anisotropic_gaussian_kernels(l1, l2, torch.tensor([0.3]), 15)
    b = anisotropic_gaussian_kernels(l1, l2, torch.tensor([0.3 + math.pi]), 15)
    assert torch.allclose(a, b, atol=1e-7)
    c = anisotropic_gaussian_kernels(l2, l1, torch.tensor([0.3 + math.pi / 2]), 15)
    assert torch.allclose(a, c, atol=1e-6)
    # theta = 0 with lambda1 > lambda2: wider along columns (x) than rows (y)
    k = anisotropic_gaussian_kernels(l1, l2, torch.tensor([0.0]), 15)[0]
    assert k[7, 10] > k[10, 7]


def test_sums_to_one_zero_sigma_is_delta_and_gradients() -> None:
    sig = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    k = isotropic_gaussian_kernels(sig, 15)
    assert torch.allclose(k.sum((-2, -1)), torch.ones(3, dtype=torch.float64))
    assert torch.equal(k[0], delta_kernels(1, 15, dtype=torch.float64)[0])
    (k[:, 7, 8] * torch.arange(3)).sum().backward()
    assert sig.grad is not None and torch.isfinite(sig.grad).all() and sig.grad[2] != 0


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="odd"):
        isotropic_gaussian_kernels(torch.tensor([1.0]), 14)
    with pytest.raises(ValueError, match=">= 0"):
        isotropic_gaussian_kernels(torch.tensor([-1.0]), 15)
    with pytest.raises(ValueError, match="> 0"):
        anisotropic_gaussian_kernels(torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([0.0]), 15)
