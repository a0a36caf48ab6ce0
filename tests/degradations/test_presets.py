"""Evaluation presets: grids, labels, seeding and LR synthesis."""

from __future__ import annotations

import math

import pytest
import torch

from blindsr.degradations.noise import derive_seed
from blindsr.degradations.presets import EVAL_PRESETS, get_eval_preset
from blindsr.eval.paper_results import paper_results


def test_dmsr_grid_is_the_paper_grid() -> None:
    p = get_eval_preset("dmsr-grid")
    assert p.scales == (2, 3, 4) and p.kernel_size == 15 and p.lr_format == "float"
    labels = [s.label for s in p.settings_for(3)]
    assert labels == ["k0.2-n15", "k1.3-n15", "k2.6-n15", "k0.2-n50", "k1.3-n50", "k2.6-n50", "k0.2-n0"]
    assert p.pipeline.blur_padding == "replicate" and not p.pipeline.clip and not p.pipeline.quantize


def test_gaussian8_widths_and_scale_suffix() -> None:
    p = get_eval_preset("gaussian8")
    assert [s.sigma for s in p.settings_for(4)] == pytest.approx([1.8 + 0.2 * i for i in range(8)])
    assert [s.sigma for s in p.settings_for(2)] == pytest.approx([0.8 + 0.8 * i / 7 for i in range(8)])
    assert [s.sigma for s in p.settings_for(3)] == pytest.approx([1.35 + 0.15 * i for i in range(8)])
    assert p.pipeline.quantize and p.pipeline.blur_padding == "reflect" and p.pipeline.bicubic_border == "symmetric"
    x4 = get_eval_preset("gaussian8-x4")
    assert x4.scales == (4,) and x4.name == "gaussian8"
    mrda = get_eval_preset("gaussian8-x4.mrda")
    assert mrda.scales == (4,) and mrda.pipeline.bicubic_border == "replicate"
    with pytest.raises(ValueError, match="no scale"):
        get_eval_preset("gaussian8.kdsr-x4")


def test_mrda_aniso_grid() -> None:
    p = get_eval_preset("mrda-aniso-noise")
    assert p.name == "mrda-aniso" and p.datasets == ("Set14",)
    cells = p.settings_for(4)
    assert len(cells) == 27 and cells[1].label == "a2-n0" and cells[10].label == "a2-n10"
    assert (cells[1].lambda1, cells[1].lambda2, cells[1].theta_deg) == (3.5, 1.5, 20.0)


def test_unknown_preset_suggests() -> None:
    with pytest.raises(KeyError, match="did you mean"):
        get_eval_preset("gausian8")


def test_every_preset_is_consistent() -> None:
    for name, p in EVAL_PRESETS.items():
        assert p.name == name
        for scale, i, setting in p.cells():
            k = setting.kernel_tensor(p.kernel_size)
            assert k.shape == (p.kernel_size, p.kernel_size) and math.isclose(k.sum().item(), 1.0, abs_tol=1e-9)
            assert p.settings_for(scale)[i] is setting
        labels = [s.label for _, _, s in p.cells((p.scales[0],))]
        assert len(labels) == len(set(labels)) or name == "mrda-aniso"  # mrda-aniso keeps the k2/k6 duplicate kernel


def test_labels_match_paper_results() -> None:
    for preset in ("dmsr-grid", "mrda-aniso"):
        p = get_eval_preset(preset)
        ours = {(s, st.label) for s, _, st in p.cells()}
        theirs = {(r.scale, r.setting) for r in paper_results(preset)}
        assert theirs and theirs <= ours


def test_seeding_rule() -> None:
    p = get_eval_preset("dmsr-grid")
    seed = p.noise_seed(dataset="Set5", stem="baby", scale=4, setting_index=3)
    import hashlib

    digest = hashlib.sha256(b"dmsr-grid|Set5|baby|x4|3").digest()
    assert (
        seed == int.from_bytes(digest[:8], "big") & ((1 << 63) - 1) == derive_seed("dmsr-grid", "Set5", "baby", "x4", 3)
    )


def test_preset_degrade_is_reproducible_and_device_independent_in_noise() -> None:
    p = get_eval_preset("dmsr-grid")
    hr = torch.rand(3, 32, 24)
    a = p.degrade(hr, scale=4, setting_index=4, dataset="Set5", stem="x")
    b = p.degrade(hr, scale=4, setting_index=4, dataset="Set5", stem="x")
    c = p.degrade(hr, scale=4, setting_index=4, dataset="Set5", stem="y")
    assert torch.equal(a.lr, b.lr) and not torch.equal(a.lr, c.lr)
    assert a.lr.shape == (1, 3, 8, 6)
    assert a.noise_map.std().item() == pytest.approx(50 / 255, rel=0.25)
    assert a.lr.min() < 0 or a.lr.max() > 1  # float protocol: not clipped
    g8 = get_eval_preset("gaussian8").degrade(hr, scale=4, setting_index=0, dataset="Set5", stem="x")
    assert torch.allclose(g8.lr * 255, (g8.lr * 255).round(), atol=1e-4)
    nf = p.degrade(hr, scale=4, setting_index=6, dataset="Set5", stem="x")
    assert torch.equal(nf.noise_map, torch.zeros_like(nf.noise_map))
