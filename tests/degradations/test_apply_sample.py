"""Sampling is explicit and reproducible; applying is pure, exact, differentiable and consistent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _reference import matlab_imresize as ref
from blindsr.degradations import (
    DegradationParams,
    DegradationSpec,
    Pipeline,
    degrade,
    delta_kernels,
    get_training_preset,
    isotropic_gaussian_kernels,
    sample_degradation,
    synthesize_lr,
)
from blindsr.ops.filter import filter2d_per_sample
from blindsr.ops.resize import bicubic_downscale


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_training_preset_ranges() -> None:
    for name, lo_hi, per in [
        ("dmsr", (0.2, 3.0), "image"),
        ("mrda-iso-x4", (0.2, 4.0), "batch"),
        ("mrda-iso-x2", (0.2, 2.0), "batch"),
        ("mrda-iso-x3", (0.2, 3.0), "batch"),
    ]:
        spec = get_training_preset(name)
        deg = sample_degradation(spec.with_(per="image"), 4000, _gen())
        assert deg.kernel_sigma is not None
        assert lo_hi[0] <= deg.kernel_sigma.min() and deg.kernel_sigma.max() <= lo_hi[1]
        assert deg.kernel_sigma.min() < lo_hi[0] + 0.05 and deg.kernel_sigma.max() > lo_hi[1] - 0.05
        assert spec.per == per
    dmsr = sample_degradation(get_training_preset("dmsr"), 4000, _gen())
    assert dmsr.noise_sigma.max() <= 75 and dmsr.noise_sigma.max() > 73 and dmsr.kernel_size == 15
    aniso = sample_degradation(get_training_preset("mrda-aniso-noise", per="image"), 4000, _gen())
    assert aniso.theta is not None and aniso.lambda1 is not None and aniso.lambda2 is not None
    assert aniso.theta.min() >= 0 and aniso.theta.max() < math.pi and aniso.theta.max() > 3.0  # not the 0-1 deg bug
    assert aniso.lambda1.min() >= 0.2 and aniso.lambda2.max() <= 4.0 and aniso.noise_sigma.max() <= 25
    assert aniso.kernel_size == 21


def test_noise_free_prob_zeroes_a_share_of_noise_levels_and_keeps_the_paper_stream() -> None:
    spec = get_training_preset("dmsr")
    plain = sample_degradation(spec, 4000, torch.Generator().manual_seed(3))
    mixed = sample_degradation(spec.with_(noise_free_prob=0.25), 4000, torch.Generator().manual_seed(3))
    # the kernels and the noise levels that survive are the paper preset's own draws
    torch.testing.assert_close(mixed.kernels, plain.kernels)
    kept = mixed.noise_sigma > 0
    torch.testing.assert_close(mixed.noise_sigma[kept], plain.noise_sigma[kept])
    assert abs((~kept).float().mean().item() - 0.25) < 0.03
    batch = sample_degradation(spec.with_(noise_free_prob=1.0, per="batch"), 3, torch.Generator().manual_seed(0))
    assert batch.noise_sigma.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="noise_free_prob"):
        spec.with_(noise_free_prob=1.5)


def test_per_batch_vs_per_image() -> None:
    batch = sample_degradation(get_training_preset("mrda-aniso-noise"), 8, _gen())
    assert batch.lambda1 is not None and bool((batch.lambda1 == batch.lambda1[0]).all())
    assert torch.equal(batch.kernels, batch.kernels[:1].expand(8, -1, -1))
    image = sample_degradation(get_training_preset("dmsr"), 8, _gen())
    assert image.kernel_sigma is not None and len(set(image.kernel_sigma.tolist())) == 8


def test_sampling_is_reproducible_and_needs_a_generator() -> None:
    a = sample_degradation(get_training_preset("dmsr"), 5, _gen(3))
    b = sample_degradation(get_training_preset("dmsr"), 5, _gen(3))
    assert torch.equal(a.kernels, b.kernels) and torch.equal(a.noise_sigma, b.noise_sigma)
    with pytest.raises(TypeError, match="Generator"):
        sample_degradation(get_training_preset("dmsr"), 5, None)  # type: ignore[arg-type]


def test_delta_kernel_without_noise_is_plain_bicubic() -> None:
    hr = torch.rand(3, 3, 24, 24, dtype=torch.float64)
    deg = DegradationParams(kernels=delta_kernels(3, 15, dtype=torch.float64), noise_sigma=torch.zeros(3))
    out = degrade(hr, deg, scale=4)
    assert torch.equal(out.lr, bicubic_downscale(hr, 4))
    assert torch.equal(out.noise_map, torch.zeros_like(out.lr))


def test_blur_downscale_matches_independent_reference() -> None:
    """Replicate-padded correlation (imfilter) + MATLAB imresize, computed with NumPy loops."""
    rng = np.random.default_rng(0)
    img = rng.random((16, 20, 3))
    sigma = 1.3
    k = isotropic_gaussian_kernels(torch.tensor([sigma], dtype=torch.float64), 7)[0].numpy()
    padded = np.pad(img, ((3, 3), (3, 3), (0, 0)), mode="edge")
    blurred = np.zeros_like(img)
    for dy in range(7):
        for dx in range(7):
            blurred += k[dy, dx] * padded[dy : dy + 16, dx : dx + 20]
    expected = ref.imresize(blurred, scale=0.5)
    hr = torch.from_numpy(img.transpose(2, 0, 1))[None]
    got = synthesize_lr(hr, torch.from_numpy(k)[None], scale=2).lr[0].permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() < 1e-12


def test_noise_map_is_exactly_the_scaled_sample_in_float_mode() -> None:
    hr = torch.rand(2, 3, 16, 16)
    deg = sample_degradation(get_training_preset("dmsr"), 2, _gen())
    eps = torch.randn(2, 3, 4, 4, generator=_gen(5))
    out = degrade(hr, deg, scale=4, noise=eps)
    expected = eps * (deg.noise_sigma / 255).view(-1, 1, 1, 1)
    assert torch.allclose(out.noise_map, expected, atol=1e-6)
    assert torch.allclose(out.lr, out.lr_clean + out.noise_map)
    # the generator path gives the same result as passing the same samples
    out2 = degrade(hr, deg, scale=4, generator=_gen(5))
    assert torch.equal(out2.lr, out.lr)


def test_clip_and_quantize_define_the_noise_map_consistently() -> None:
    hr = torch.rand(2, 3, 16, 16)
    deg = sample_degradation(get_training_preset("mrda-aniso-noise").with_(noise=(20.0, 25.0)), 2, _gen())
    out = degrade(hr, deg, scale=4, generator=_gen(1))
    assert out.lr.min() >= 0 and out.lr.max() <= 1
    assert torch.allclose(out.lr * 255, (out.lr * 255).round(), atol=1e-4)  # on the 8-bit grid
    assert torch.allclose(out.lr, out.lr_clean + out.noise_map, atol=1e-6)
    srmd = Pipeline(quantize_clean=True)
    deg2 = DegradationParams(kernels=deg.kernels, noise_sigma=deg.noise_sigma, pipeline=srmd)
    out2 = degrade(hr, deg2, scale=4, generator=_gen(1))
    assert torch.allclose(out2.lr_clean * 255, (out2.lr_clean * 255).round(), atol=1e-4)
    assert not torch.allclose(out2.lr * 255, (out2.lr * 255).round(), atol=1e-3)


def test_noise_requires_explicit_randomness() -> None:
    deg = sample_degradation(get_training_preset("dmsr").with_(noise=(5.0, 10.0)), 1, _gen())
    with pytest.raises(ValueError, match="generator"):
        degrade(torch.rand(1, 3, 8, 8), deg, scale=2)


def test_differentiable_in_hr_kernel_and_noise_map() -> None:
    hr = torch.rand(2, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    k = isotropic_gaussian_kernels(torch.tensor([0.8, 1.5], dtype=torch.float64), 5).requires_grad_(True)
    n = (0.05 * torch.randn(2, 3, 4, 4, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: synthesize_lr(a, b, scale=3, noise_map=c).lr, (hr, k, n))
    # the straight-through 8-bit rounding still lets gradients through
    q = Pipeline(quantize=True, clip=True)
    hr2 = torch.rand(1, 3, 8, 8, requires_grad=True)
    synthesize_lr(hr2, delta_kernels(1, 3), scale=2, pipeline=q).lr.sum().backward()
    assert hr2.grad is not None and hr2.grad.abs().sum() > 0


@pytest.mark.parametrize("padding", ["replicate", "reflect", "circular", "zeros"])
def test_filter_paddings_match_numpy(padding: str) -> None:
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    k = torch.rand(2, 5, 5, dtype=torch.float64)
    mode = {"replicate": "edge", "reflect": "reflect", "circular": "wrap", "zeros": "constant"}[padding]
    got = filter2d_per_sample(x, k, padding=padding)  # type: ignore[arg-type]
    for b in range(2):
        p = np.pad(x[b].numpy(), ((0, 0), (2, 2), (2, 2)), mode=mode)
        exp = sum(k[b, i, j].item() * p[:, i : i + 9, j : j + 11] for i in range(5) for j in range(5))
        assert np.abs(got[b].numpy() - exp).max() < 1e-12


def test_filter_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="odd"):
        filter2d_per_sample(torch.rand(1, 3, 8, 8), torch.rand(1, 4, 4))
    with pytest.raises(ValueError, match="reflect"):
        filter2d_per_sample(torch.rand(1, 3, 8, 8), torch.rand(1, 21, 21), padding="reflect")
    with pytest.raises(ValueError, match="kernels"):
        filter2d_per_sample(torch.rand(2, 3, 8, 8), torch.rand(3, 5, 5))


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="odd"):
        DegradationSpec(kernel_size=16)
    with pytest.raises(ValueError, match="sigma"):
        DegradationSpec(sigma=(3.0, 1.0))
    with pytest.raises(ValueError, match="blur_padding"):
        Pipeline(blur_padding="mirror")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="did you mean"):
        get_training_preset("dmsr-x4")


def test_float32_and_float64_agree() -> None:
    hr = torch.rand(2, 3, 24, 24, dtype=torch.float64)
    deg = sample_degradation(get_training_preset("dmsr"), 2, _gen())
    a = degrade(hr, deg, scale=3, generator=_gen(2)).lr
    b = degrade(hr.float(), deg, scale=3, generator=_gen(2)).lr
    assert (a.float() - b).abs().max() < 1e-5


def test_separable_path_equals_full_conv() -> None:
    from blindsr.degradations.kernels import anisotropic_gaussian_kernels

    x = torch.rand(4, 3, 40, 36, dtype=torch.float64)
    iso = isotropic_gaussian_kernels(torch.tensor([0.0, 0.7, 2.0, 4.0], dtype=torch.float64), 21)
    for padding in ("replicate", "reflect"):
        auto = filter2d_per_sample(x, iso, padding=padding)
        full = filter2d_per_sample(x, iso, padding=padding, separable=False)
        assert torch.allclose(auto, full, atol=1e-13)
    x32, iso32 = x.float(), iso.float()
    assert (filter2d_per_sample(x32, iso32) - filter2d_per_sample(x32, iso32, separable=False)).abs().max() < 5e-6
    # rotated anisotropic kernels are not rank 1: the automatic choice falls back to the 2-D path (exactly equal)
    aniso = anisotropic_gaussian_kernels(torch.full((4,), 3.0), torch.full((4,), 1.0), torch.full((4,), 0.5), 15)
    assert torch.equal(filter2d_per_sample(x32, aniso), filter2d_per_sample(x32, aniso, separable=False))
    # kernels that need gradients use the 2-D path too (gradients reach every tap)
    k = iso32.clone().requires_grad_(True)
    filter2d_per_sample(x32, k).sum().backward()
    assert k.grad is not None and k.grad.abs().min() > 0
