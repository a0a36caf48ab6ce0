"""Degradation sets and LR synthesis, IDR collection and RDAM maps of blindsr.analysis, on tiny random networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from blindsr.analysis.idr import NoIDRError, analyze_idr, center_crop, collect_idr, idr_network
from blindsr.analysis.rdam import NoRDAMError, collect_rdam_maps, rdam_network
from blindsr.analysis.synth import degradation_set, parse_degradation, set_labels, synthesize_lr
from blindsr.degradations import get_eval_preset
from blindsr.files import OutputError
from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.mrda import MetaLearningNetwork, MRDAStudent, MRDATeacher, RDAConv, RDANOptions

TINY: dict[str, Any] = {"n_feats": 8, "n_blocks": 2, "idr_dim": 16}  # RDANOptions fields; DEN width 4


def _student(**kwargs: Any) -> MRDAStudent:
    torch.manual_seed(0)
    return MRDAStudent(scale=2, rdan_options=RDANOptions(**{**TINY, **kwargs}), den_channels=4).eval()


def test_degradation_sets() -> None:
    iso = degradation_set(kind="iso", scale=4)
    assert [s.sigma for s in iso] == [s.sigma for s in get_eval_preset("gaussian8").settings_for(4)]
    assert set_labels(iso)[:2] == ["σ 1.8", "σ 2"]
    aniso = degradation_set(kind="aniso", scale=2)
    assert len(aniso) == 8 and all(s.kernel == "aniso" and s.noise == 0 for s in aniso)  # Table III's #6 = #2
    noise = degradation_set(kind="noise", scale=4, noise_levels=(0, 10), kernel_sigma=1.2)
    assert [s.noise for s in noise] == [0, 10] and set_labels(noise) == ["σn 0", "σn 10"]
    with pytest.raises(ValueError, match="at least two"):
        degradation_set(kind="iso", scale=4, widths=[1.0])
    with pytest.raises(ValueError, match="duplicate"):
        degradation_set(kind="iso", scale=4, widths=[1.0, 1.0])
    assert parse_degradation("iso:2.6", noise=5).as_dict() == {
        "label": "k2.6-n5",
        "kernel": "iso",
        "kernel_sigma": 2.6,
        "noise": 5.0,
    }
    assert parse_degradation("bicubic").sigma == 0
    with pytest.raises(ValueError, match="bad degradation"):
        parse_degradation("gauss:2")


def test_synthesis_matches_the_gaussian8_preset_and_is_seeded() -> None:
    hr = torch.rand(3, 32, 40)
    settings = degradation_set(kind="iso", scale=2)
    lr = synthesize_lr(hr, settings, scale=2, seed=0)
    preset = get_eval_preset("gaussian8")
    for i in (0, 7):
        ref = preset.degrade(hr, scale=2, setting_index=i, dataset="d", stem="s").lr
        assert torch.equal(lr[i : i + 1], ref)
    noisy = degradation_set(kind="noise", scale=2)
    a = synthesize_lr(hr, noisy, scale=2, seed=1, key=("Set5", "x"))
    assert torch.equal(a, synthesize_lr(hr, noisy, scale=2, seed=1, key=("Set5", "x")))
    assert not torch.equal(a, synthesize_lr(hr, noisy, scale=2, seed=2, key=("Set5", "x")))
    assert torch.equal(a, torch.round(a * 255) / 255)  # 8-bit LR
    with pytest.raises(ValueError, match="too small"):
        synthesize_lr(torch.rand(3, 14, 40), settings, scale=2, seed=0)
    assert center_crop(torch.rand(3, 33, 50), size=17, scale=4).shape == (3, 16, 16)


def test_idr_equals_the_students_idr() -> None:
    student = _student()
    images = [(f"im{i}", torch.rand(3, 24, 24)) for i in range(3)]
    settings = degradation_set(kind="noise", scale=2, noise_levels=(0, 20))
    samples = collect_idr(student, iter(images), settings, scale=2, seed=0, dataset="T", total=3)
    assert samples.idr.shape == (6, 16) and samples.idr.dtype == np.float32
    assert samples.labels.tolist() == [0, 1, 0, 1, 0, 1] and samples.images[:3] == ["im0", "im0", "im1"]
    lr = synthesize_lr(images[1][1], settings, scale=2, seed=0, key=("T", "im1"))
    with torch.no_grad():
        direct = student(lr).idr
    assert np.allclose(samples.idr[2:4], direct.numpy(), atol=1e-6)

    analysis = analyze_idr(samples, seed=4, n_iter=50, k=3)
    assert analysis.tsne.embedding.shape == (6, 2) and analysis.separability.k == 3


def test_save_npz(tmp_path: Path) -> None:
    images = [("a", torch.rand(3, 24, 24)), ("b", torch.rand(3, 24, 24))]
    samples = collect_idr(_student(), images, degradation_set(kind="aniso", scale=2), scale=2, seed=0)
    analysis = analyze_idr(samples, seed=0, n_iter=30)
    assert analysis.save(tmp_path / "x.npz", seed=0, model="m") == tmp_path / "x.npz"
    data = np.load(tmp_path / "x.npz")
    assert data["idr"].shape == (16, 16) and data["embedding"].shape == (16, 2) and data["labels"].shape == (16,)
    assert int(data["tsne_seed"]) == 0 and str(data["model"]) == "m" and len(data["label_names"]) == 8
    with pytest.raises(OutputError, match="exists; pass overwrite=True"):
        analysis.save(tmp_path / "x.npz")
    analysis.save(tmp_path / "x.npz", overwrite=True)
    assert "model" not in np.load(tmp_path / "x.npz")


def test_models_without_idr_say_so() -> None:
    assert idr_network(_student()) is not None
    cases = [
        (MRDATeacher(scale=2, mln_channels=8, rdan_options=RDANOptions(**TINY), den_channels=4), "mrda_t", "teacher"),
        (MetaLearningNetwork(scale=2, n_feats=8, n_body=1), "mrda_mln", "MLN"),
        (DMSRNet(scale=2, n_feats=8, n_groups=1, n_blocks=1, extractor_channels=8), "dmsr", "no implicit"),
    ]
    for model, arch, words in cases:
        with pytest.raises(NoIDRError, match=words) as info:
            idr_network(model, arch=arch, name="m.safetensors")
        assert "\n" not in str(info.value) and str(info.value).startswith("m.safetensors ")
        with pytest.raises(NoIDRError, match=words):
            idr_network(model)  # the architecture is looked up from the class


def _direct_rdam_maps(student: MRDAStudent, lr: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Walk RDAN by hand (its forward, spelt out) and ask every RDA conv for its modulation map."""
    rdan = student.rdan
    idr = student.den(lr)
    code = F.leaky_relu(rdan.compress(idr), 0.1)
    f0 = rdan.head(lr - rdan.rgb_mean)
    x, maps = f0, []
    for block in rdan.blocks:
        maps.append(block.da_conv1.modulation_map(x, code).mean(dim=1))
        out = F.leaky_relu(block.da_conv1(x, code), 0.1)
        out = F.leaky_relu(block.conv1(out), 0.1)
        maps.append(block.da_conv2.modulation_map(out, code).mean(dim=1))
        out = F.leaky_relu(block.da_conv2(out, code), 0.1)
        x = block.conv2(out) + x
    x = rdan.body_conv(x) + f0
    sr = rdan.tail(rdan.upsampler(x)) + rdan.rgb_mean
    return maps, sr


@pytest.mark.parametrize("options", [{}, {"rdam_channels": 8, "rdam_input": "F1"}])
def test_rdam_hooks_equal_a_direct_computation(options: dict[str, Any]) -> None:
    student = _student(**options)
    lr = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        plain = student(lr).sr
        direct, sr_direct = _direct_rdam_maps(student, lr)
    maps = collect_rdam_maps(student, lr)
    assert maps.names == ["blocks.0.da_conv1", "blocks.0.da_conv2", "blocks.1.da_conv1", "blocks.1.da_conv2"]
    assert maps.per_conv.shape == (4, 2, 12, 10)
    assert torch.allclose(maps.per_conv, torch.stack(direct), atol=1e-6)
    assert ((maps.per_conv > 0) & (maps.per_conv < 1)).all()
    assert torch.equal(maps.sr, plain) and torch.allclose(sr_direct, plain, atol=1e-5)  # forward unchanged
    assert torch.allclose(maps.mean, torch.stack(direct).mean(dim=0), atol=1e-6)
    assert torch.allclose(maps.per_block[1], (direct[2] + direct[3]) / 2, atol=1e-6)
    convs = [m for m in student.modules() if isinstance(m, RDAConv)]
    assert all(c.rdam is not None and not c.rdam._forward_hooks for c in convs)  # hooks removed
    with torch.no_grad():
        assert torch.equal(student(lr).sr, plain)


def test_models_without_rdam_say_so() -> None:
    for model, words in [
        (_student(modulation="none"), "no RDAM"),
        (_student(modulation="da"), "no RDAM"),
        (MRDATeacher(scale=2, mln_channels=8, rdan_options=RDANOptions(**TINY), den_channels=4), "teacher"),
        (MetaLearningNetwork(scale=2, n_feats=8, n_body=1), "not an MRDA student"),
    ]:
        with pytest.raises(NoRDAMError, match=words):
            rdam_network(model, arch="x", name="m")
        with pytest.raises(NoRDAMError):
            collect_rdam_maps(model, torch.rand(1, 3, 8, 8))
