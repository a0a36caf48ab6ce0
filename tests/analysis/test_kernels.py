"""Kernel widths and DMSR's extractor against the truth (blindsr.analysis.kernels), on tiny nets and fake images."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from blindsr.analysis.kernels import (
    KernelRecord,
    NoExtractorError,
    analyze_kernels,
    dmsr_network,
    kernel_width,
    summarize_kernel_records,
)
from blindsr.data.benchmark import BenchmarkSet
from blindsr.data.images import write_image
from blindsr.degradations import EvalSetting, get_eval_preset, isotropic_gaussian_kernels
from blindsr.degradations.presets import EvalPreset
from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.mrda import MRDAStudent, RDANOptions

TINY: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_groups": 1, "n_blocks": 1, "extractor_channels": 8}


def _gaussian(sigma: float, size: int = 15) -> Tensor:
    return isotropic_gaussian_kernels(torch.tensor([sigma], dtype=torch.float64), size)[0]


@pytest.fixture
def bench(tmp_path: Path) -> BenchmarkSet:
    """A fake Set5 of three random 48x48 RGB PNGs (one 50x47, to exercise the modcrop)."""
    g = torch.Generator().manual_seed(0)
    for i, (h, w) in enumerate([(48, 48), (48, 48), (50, 47)]):
        write_image(tmp_path / "Set5" / "HR" / f"im{i}.png", torch.rand(3, h, w, generator=g))
    return BenchmarkSet(root=tmp_path, name="Set5", scale=2)


def _net() -> DMSRNet:
    torch.manual_seed(0)
    return DMSRNet(**TINY).eval()


# ------------------------------------------------------------------------------------------------------------------
# kernel_width


@pytest.mark.parametrize("sigma", [0.8, 1.3, 2.0])
def test_width_of_a_gaussian_is_its_sigma(sigma: float) -> None:
    assert float(kernel_width(_gaussian(sigma))) == pytest.approx(sigma, abs=0.02)
    assert float(kernel_width(_gaussian(sigma).float())) == pytest.approx(sigma, abs=0.02)


def test_width_of_a_delta_is_zero() -> None:
    assert float(kernel_width(_gaussian(0.0))) == 0.0
    delta = torch.zeros(7, 7)
    delta[3, 3] = 1
    assert float(kernel_width(delta)) == 0.0


def test_width_is_the_second_moment_about_the_centre() -> None:
    # all the mass 3 px right of the centre: i^2 + j^2 = 9, so the width is sqrt(9 / 2), about the window's centre
    # (not the centroid, about which this kernel has no spread)
    shifted = torch.zeros(7, 7, dtype=torch.float64)
    shifted[3, 6] = 1
    assert float(kernel_width(shifted)) == pytest.approx(math.sqrt(4.5), abs=1e-12)
    # a ring: 1/2 at the centre, 1/8 at (+-2, 0) and (0, +-2): sum k * r^2 = 4 * 1/8 * 4 = 2, width sqrt(2 / 2) = 1
    ring = torch.zeros(5, 5, dtype=torch.float64)
    ring[2, 2] = 0.5
    for i, j in [(0, 2), (4, 2), (2, 0), (2, 4)]:
        ring[i, j] = 0.125
    assert float(kernel_width(ring)) == pytest.approx(1.0, abs=1e-12)
    # the four diagonal neighbours, 1/4 each: r^2 = 2, width 1; a 3x5 (odd, non-square) window
    diag = torch.zeros(3, 5, dtype=torch.float64)
    for i, j in [(0, 1), (0, 3), (2, 1), (2, 3)]:
        diag[i, j] = 0.25
    assert float(kernel_width(diag)) == pytest.approx(1.0, abs=1e-12)


def test_width_keeps_batch_dimensions_and_rejects_even_sizes() -> None:
    kernels = isotropic_gaussian_kernels(torch.tensor([0.8, 1.3, 2.0, 0.0, 1.0, 1.5]), 15).view(2, 3, 15, 15)
    widths = kernel_width(kernels)
    assert widths.shape == (2, 3) and widths.dtype == torch.float32
    assert widths[0].tolist() == pytest.approx([0.8, 1.3, 2.0], abs=0.02)
    with pytest.raises(ValueError, match="odd"):
        kernel_width(torch.ones(4, 4) / 16)
    with pytest.raises(ValueError, match="k, k"):
        kernel_width(torch.ones(5))


# ------------------------------------------------------------------------------------------------------------------
# the pipeline


class _Oracle(nn.Module):
    """An extractor that 'estimates' the degradation of the LR image it was given: the true kernel and a noise map
    of exactly the true level (a +-sigma_n/255 checkerboard), read from the setting the spied-on preset used."""

    def __init__(self, seen: list[tuple[EvalPreset, EvalSetting, Tensor]]) -> None:
        super().__init__()
        self.seen = seen
        self.inputs: list[Tensor] = []

    def forward(self, lr: Tensor) -> tuple[Tensor, Tensor]:
        self.inputs.append(lr)
        setting = self.seen[-1][1]
        kernel = _gaussian(setting.sigma).float().unsqueeze(0)
        h, w = lr.shape[-2:]
        sign = (torch.arange(h).view(-1, 1) + torch.arange(w).view(1, -1)) % 2 * 2.0 - 1.0
        noise = (setting.noise / 255.0) * sign.expand(1, 3, h, w)
        return kernel, noise


class _Constant(nn.Module):
    """An extractor that returns the same kernel (sigma 1.5) and no noise whatever the input: the collapse."""

    def forward(self, lr: Tensor) -> tuple[Tensor, Tensor]:
        return _gaussian(1.5).float().unsqueeze(0), torch.zeros_like(lr)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[EvalPreset, EvalSetting, Tensor]]:
    seen: list[tuple[EvalPreset, EvalSetting, Tensor]] = []
    original = EvalPreset.degrade

    def degrade(self: EvalPreset, hr: Tensor, *, scale: int, setting_index: int, dataset: str, stem: str) -> Any:
        seen.append((self, self.settings_for(scale)[setting_index], hr))
        return original(self, hr, scale=scale, setting_index=setting_index, dataset=dataset, stem=stem)

    monkeypatch.setattr(EvalPreset, "degrade", degrade)
    return seen


def test_the_true_kernel_gives_correlation_one_and_no_error(
    bench: BenchmarkSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy(monkeypatch)
    net = _net()
    oracle = _Oracle(seen)
    monkeypatch.setattr(net, "extractor", oracle)
    widths, levels = [0.8, 2.6, 0.2, 1.3], [50.0, 0.0]
    result = analyze_kernels(net, bench, scale=2, widths=widths, noise_levels=levels, max_images=2)

    assert len(result.records) == 2 * 4 * 2 == len(seen)
    assert [(r.image, r.sigma_n, r.sigma_k) for r in result.records[:5]] == [
        ("im0", 50.0, 0.8),
        ("im0", 50.0, 2.6),
        ("im0", 50.0, 0.2),
        ("im0", 50.0, 1.3),
        ("im0", 0.0, 0.8),
    ]
    for record, (preset, setting, _) in zip(result.records, seen, strict=True):
        assert preset.name == "dmsr-grid" and preset.kernel_size == 15 and preset.lr_format == "float"
        assert (setting.sigma, setting.noise) == (record.sigma_k, record.sigma_n)
        assert record.true_width == pytest.approx(float(kernel_width(_gaussian(record.sigma_k))), abs=1e-12)
        assert record.est_width == pytest.approx(record.true_width, abs=1e-6)
        assert record.kernel_l2 == pytest.approx(0.0, abs=1e-6)
        assert record.est_noise == pytest.approx(record.sigma_n, abs=1e-3)
    assert result.correlation == pytest.approx(1.0, abs=1e-9)
    assert result.mean_abs_width_error == pytest.approx(0.0, abs=1e-6)
    by_cell = {(s.sigma_k, s.sigma_n): s for s in result.settings}
    assert list(by_cell) == [(w, n) for n in levels for w in widths]
    assert by_cell[(2.6, 0.0)].n_images == 2 and by_cell[(2.6, 0.0)].est_width_std == pytest.approx(0.0, abs=1e-9)
    assert by_cell[(1.3, 50.0)].est_width_mean == pytest.approx(1.3, abs=0.01)
    assert by_cell[(1.3, 50.0)].est_noise_mean == pytest.approx(50.0, abs=1e-3)
    assert by_cell[(0.2, 0.0)].true_width < 0.01  # sampled on the pixel grid, a 0.2-wide Gaussian is nearly a delta


def test_the_lr_images_are_those_of_the_dmsr_protocol(bench: BenchmarkSet, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy(monkeypatch)
    net = _net()
    oracle = _Oracle(seen)
    monkeypatch.setattr(net, "extractor", oracle)
    # (0.2, 15) is the first setting of dmsr-grid: same kernel, pipeline and noise seed as the evaluation itself
    analyze_kernels(net, bench, scale=2, widths=[0.2], noise_levels=[15], max_images=3)
    assert len(oracle.inputs) == 3
    item = bench[2]
    assert tuple(item.hr.shape) == (3, 50, 46)
    ref = get_eval_preset("dmsr-grid").degrade(item.hr, scale=2, setting_index=0, dataset="Set5", stem="im2").lr
    assert oracle.inputs[2].dtype == torch.float32 and torch.equal(oracle.inputs[2], ref)


def test_a_collapsed_extractor_gives_one_width(bench: BenchmarkSet, monkeypatch: pytest.MonkeyPatch) -> None:
    net = _net()
    monkeypatch.setattr(net, "extractor", _Constant())
    widths = [0.8, 1.3, 2.0]
    result = analyze_kernels(net, bench, scale=2, widths=widths, noise_levels=[0, 15])
    est = {r.est_width for r in result.records}
    assert len(est) == 1 and est.pop() == pytest.approx(1.5, abs=0.02)
    assert all(s.est_width_std == pytest.approx(0.0, abs=1e-12) and s.est_noise_mean == 0.0 for s in result.settings)
    assert math.isnan(result.correlation)
    assert result.summary()["correlation"] is None
    expected = sum(abs(1.5 - w) for w in widths) / 3
    assert result.mean_abs_width_error == pytest.approx(expected, abs=0.02)
    assert result.column("est_width").shape == (3 * 3 * 2,)


def test_an_untrained_extractor_gives_finite_estimates(bench: BenchmarkSet) -> None:
    result = analyze_kernels(_net(), bench, scale=2, widths=[0.8, 2.0], noise_levels=[0, 50], max_images=2, crop=32)
    assert len(result.records) == 8 and len(result.settings) == 4
    for r in result.records:
        assert math.isfinite(r.est_width) and 0 <= r.est_width < 15
        assert math.isfinite(r.kernel_l2) and math.isfinite(r.est_noise) and r.est_noise >= 0
    assert -1 <= result.correlation <= 1 or math.isnan(result.correlation)
    again = analyze_kernels(_net(), bench, scale=2, widths=[0.8, 2.0], noise_levels=[0, 50], max_images=2, crop=32)
    assert [r.est_noise for r in again.records] == [r.est_noise for r in result.records]  # seeded noise


def test_bad_inputs(bench: BenchmarkSet, tmp_path: Path) -> None:
    net = _net()
    with pytest.raises(ValueError, match="duplicate kernel widths"):
        analyze_kernels(net, bench, scale=2, widths=[1, 1], noise_levels=[0])
    with pytest.raises(ValueError, match="noise levels must be"):
        analyze_kernels(net, bench, scale=2, widths=[1], noise_levels=[-5])
    with pytest.raises(ValueError, match="no kernel widths"):
        analyze_kernels(net, bench, scale=2, widths=[], noise_levels=[0])
    with pytest.raises(ValueError, match="x3"):
        analyze_kernels(net, bench, scale=3, widths=[1], noise_levels=[0])
    with pytest.raises(ValueError, match="no records"):
        summarize_kernel_records([])


def test_summary_of_hand_made_records() -> None:
    def rec(image: str, sigma_k: float, est: float) -> KernelRecord:
        return KernelRecord(image, sigma_k, 0.0, sigma_k, est, 0.1, 2.0)

    records = [rec("a", 1.0, 1.0), rec("b", 1.0, 2.0), rec("a", 2.0, 3.0), rec("b", 2.0, 4.0)]
    result = summarize_kernel_records(records)
    assert [(s.sigma_k, s.est_width_mean, s.est_width_std) for s in result.settings] == [
        (1.0, 1.5, 0.5),
        (2.0, 3.5, 0.5),
    ]
    # r of (1, 1, 2, 2) and (1, 2, 3, 4): cov 0.5, std 0.5 and sqrt(1.25)
    assert result.correlation == pytest.approx(0.5 / (0.5 * math.sqrt(1.25)))
    assert result.mean_abs_width_error == pytest.approx((0 + 1 + 1 + 2) / 4)
    nan = summarize_kernel_records([*records, rec("c", 3.0, math.nan)])
    assert nan.correlation == pytest.approx(result.correlation)  # NaN-safe: the NaN pair is left out


def test_only_dmsr_has_an_extractor() -> None:
    net = _net()
    assert dmsr_network(net) is net
    student = MRDAStudent(scale=2, rdan_options=RDANOptions(n_feats=8, n_blocks=2, idr_dim=16), den_channels=4)
    with pytest.raises(NoExtractorError, match="student.safetensors is an MRDA student"):
        dmsr_network(student, name="student.safetensors")
    with pytest.raises(NoExtractorError, match=r"\(Linear\) has no degradation extractor"):
        dmsr_network(nn.Linear(2, 2))
