"""DMSR training method: loss terms, gradient flow, ablation switches, PCA initialisation, a short run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from blindsr.archs import ARCHS
from blindsr.config import from_dict, load_config
from blindsr.config.schema import ExperimentConfig
from blindsr.degradations import get_training_preset, isotropic_gaussian_kernels
from blindsr.methods import build_method
from blindsr.methods.dmsr import DMSRMethod, DMSROptions, default_margin, kernel_pca_matrix

ROOT = Path(__file__).resolve().parents[2]
TINY = {"n_feats": 8, "n_groups": 1, "n_blocks": 1, "extractor_channels": 8, "pca_samples": 500}


def _method(scale: int = 2, **options: Any) -> DMSRMethod:
    return DMSRMethod(scale=scale, degradation=get_training_preset("dmsr"), options=DMSROptions(**{**TINY, **options}))


def _step(method: DMSRMethod, hr: torch.Tensor, seed: int = 0) -> Any:
    return method.training_step(
        hr, step=0, generator=torch.Generator().manual_seed(seed), nets=dict(method.networks.items())
    )


def test_pca_matrix_is_orthonormal_and_reconstructs_the_family() -> None:
    p = kernel_pca_matrix(n_samples=3000)
    assert p.shape == (15, 225)
    assert torch.allclose(p @ p.T, torch.eye(15), atol=1e-5)
    k = isotropic_gaussian_kernels(torch.tensor([0.3, 1.1, 2.9]), 15).reshape(3, -1)
    rec = (k @ p.T) @ p
    assert ((rec - k).norm(dim=1) / k.norm(dim=1)).max() < 1e-5
    m = _method()
    mbm = m.networks["dmsr"].mbms[0]
    assert torch.equal(mbm.code.weight, kernel_pca_matrix(n_samples=500))
    assert torch.equal(mbm.code.bias, torch.zeros(15))


def test_dc_image_term_is_zero_with_the_true_degradation() -> None:
    """Eq. 8's image term vanishes when (K_est, N_est) = (K_GT, N_GT) in the float (no-clip) protocol."""
    method = _method(scale=2)
    hr = torch.rand(2, 3, 2 * 12 + 20, 2 * 12 + 20, dtype=torch.float64)
    captured: dict[str, Any] = {}

    class Spy(nn.Module):
        def forward(self, lr: torch.Tensor, *, resimulate: Any = None) -> Any:
            captured["lr"], captured["resimulate"] = lr, resimulate
            raise StopIteration

    from blindsr.degradations import degrade, sample_degradation

    g = torch.Generator().manual_seed(3)
    with pytest.raises(StopIteration):
        method.training_step(hr, step=0, generator=g, nets={"dmsr": Spy()})
    g = torch.Generator().manual_seed(3)
    deg = sample_degradation(method.degradation, 2, g)
    truth = degrade(hr, deg, scale=2, generator=g)
    lr_m = method.margin // 2
    noise_gt = truth.noise_map[..., lr_m:-lr_m, lr_m:-lr_m]
    sim = captured["resimulate"](deg.kernels.double(), noise_gt)
    assert torch.allclose(sim, captured["lr"], atol=1e-12)


def test_loss_terms_and_gradient_flow() -> None:
    method = _method(scale=2)
    hr = torch.rand(2, 3, 48, 48)
    out = _step(method, hr)
    assert set(out.logs) == {"re", "dr_noise", "dr_kernel", "dc_image", "dc_kn"}
    out.loss.backward()
    net = method.networks["dmsr"]
    assert all(p.grad is not None for p in net.extractor.parameters())
    assert net.tail.weight.grad is not None and net.tail.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("options", "terms"),
    [
        ({"dc_terms": "lr"}, {"re", "dr_noise", "dr_kernel", "dc_image"}),
        ({"dc_terms": "kn"}, {"re", "dr_noise", "dr_kernel", "dc_kn"}),
        ({"dc_terms": "none", "lambda_dr": 0.0}, {"re", "dr_noise", "dr_kernel"}),
        ({"noise_input": "sigma"}, {"re", "dr_noise", "dr_kernel", "dc_image", "dc_kn"}),
        ({"n_mbm": 0}, {"re", "dr_noise", "dr_kernel", "dc_image", "dc_kn"}),
        ({"n_mbm": 3, "reduction": "sum", "dc_image_norm": "l1"}, {"re", "dr_noise", "dr_kernel", "dc_image", "dc_kn"}),
    ],
)
def test_ablation_switches(options: dict[str, Any], terms: set[str]) -> None:
    out = _step(_method(**options), torch.rand(2, 3, 48, 48))
    assert set(out.logs) == terms and torch.isfinite(out.loss)


def test_without_dr_and_dc_the_extractor_learns_only_through_the_sr_loss() -> None:
    method = _method(dc_terms="none", lambda_dr=0.0)
    out = _step(method, torch.rand(2, 3, 48, 48))
    direct = out.loss.detach() - out.logs["re"]
    assert abs(float(direct)) < 1e-6


def test_noise_free_fine_tuning_has_no_noise() -> None:
    from blindsr.degradations import degrade, sample_degradation

    method = _method(noise_free=True)
    assert method.degradation.noise == (0.0, 0.0)
    assert torch.equal(
        sample_degradation(method.degradation, 64, torch.Generator().manual_seed(0)).noise_sigma, torch.zeros(64)
    )
    hr = torch.rand(2, 3, 48, 48)
    out = _step(method, hr, seed=5)
    # N_GT = 0, so the noise term is exactly the mean squared noise estimate on the step's LR
    g = torch.Generator().manual_seed(5)
    deg = sample_degradation(method.degradation, 2, g)
    lr = degrade(hr, deg, scale=2, generator=g).lr[..., 6:-6, 6:-6]
    with torch.no_grad():
        _, noise_est = method.networks["dmsr"].extractor(lr)
    assert float(out.logs["dr_noise"]) == pytest.approx(float(noise_est.pow(2).mean()), rel=1e-5)


def test_extractor_only_stage_trains_the_extractor_alone() -> None:
    method = _method(extractor_only=True, kernel_reduction="sum")
    hr = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    out = _step(method, hr, seed=4)
    assert set(out.logs) == {"dr_noise", "dr_kernel"}
    assert out.loss.item() == pytest.approx(10 * (float(out.logs["dr_noise"]) + float(out.logs["dr_kernel"])), rel=1e-5)
    out.loss.backward()
    net = method.networks["dmsr"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.extractor.parameters())
    others = [p for n, p in net.named_parameters() if not n.startswith("extractor.")]
    assert others and all(p.grad is None for p in others)


def test_extractor_only_l_dr_equals_the_joint_steps_l_dr() -> None:
    hr = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    alone = _method(extractor_only=True)
    torch.manual_seed(0)
    joint = _method()
    a, j = _step(alone, hr, seed=4).logs, _step(joint, hr, seed=4).logs
    assert float(a["dr_kernel"]) == pytest.approx(float(j["dr_kernel"]), rel=1e-5)
    assert float(a["dr_noise"]) == pytest.approx(float(j["dr_noise"]), rel=1e-5)


def test_kernel_reduction_sums_the_kernel_terms_only() -> None:
    hr = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    logs = {}
    for name, options in {"mean": {}, "sum": {"kernel_reduction": "sum"}}.items():
        torch.manual_seed(0)
        method = _method(**options)
        logs[name] = {k: float(v) for k, v in _step(method, hr, seed=3).logs.items()}
    # the 15x15 difference summed instead of averaged: 225x, in L_DR and in L_DC's kernel part; noise terms unchanged
    assert logs["sum"]["dr_kernel"] == pytest.approx(225 * logs["mean"]["dr_kernel"], rel=1e-4)
    assert logs["sum"]["dr_noise"] == pytest.approx(logs["mean"]["dr_noise"], rel=1e-6)
    assert logs["sum"]["dc_kn"] > logs["mean"]["dc_kn"]


def test_release_kwargs_rebuild_the_network() -> None:
    method = _method(scale=3)
    arch, kwargs = method.release()["dmsr"]
    net = ARCHS[arch](**kwargs)
    net.load_state_dict(method.networks["dmsr"].state_dict(), strict=True)
    assert [default_margin(s) for s in (2, 3, 4)] == [12, 15, 16]


def test_configs_load() -> None:
    for name in ("x2", "x3", "x4", "x4_nf", "tiny"):
        cfg = load_config(ROOT / "configs" / "dmsr" / f"{name}.yaml")
        assert cfg.method.name == "dmsr"
        if name != "tiny":
            scale = cfg.method.scale
            assert cfg.data.patch_size == 48 * scale + 2 * default_margin(scale)
            assert cfg.data.batch_size == 32 and cfg.train.optimizer.lr == 1e-4


def test_tiny_config_trains_and_its_loss_falls(tmp_path: Path) -> None:
    from blindsr.cli.train import train_method

    cfg = load_config(
        ROOT / "configs" / "dmsr" / "tiny.yaml",
        overrides=["train.total_steps=24", "train.optimizer.lr=5e-4", "log.every=1", "checkpoint.every=100"],
    )
    train_method(cfg, build_method(cfg), run_dir=tmp_path / "run", config_dir=ROOT / "configs" / "dmsr")
    import json

    losses = [
        r["loss"]
        for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines())
        if r["kind"] == "train"
    ]
    assert len(losses) == 24
    assert sum(losses[-6:]) / 6 < sum(losses[:6]) / 6


def test_unknown_option_is_a_config_error() -> None:
    from blindsr.config import ConfigError

    raw = {
        "experiment": "x",
        "method": {"name": "dmsr", "scale": 2, "options": {"n_feat": 8}},
        "data": {"train": ["."], "patch_size": 48},
    }
    with pytest.raises(ConfigError, match="did you mean 'n_feats'"):
        build_method(from_dict(ExperimentConfig, raw))
