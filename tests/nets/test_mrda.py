"""MRDA networks (docs/specs/mrda.md sections 2, 3, 9): counts, shapes, dynamic conv, RDAM, MLN, zoo."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blindsr import archs
from blindsr.archs import constructor_kwargs
from blindsr.nets.dasr import DAConv
from blindsr.nets.layers.dynamic_depthwise import DepthwiseBranch, DepthwiseKernelGenerator, dynamic_depthwise_conv2d
from blindsr.nets.mrda import (
    RDAN,
    REFERENCE_MEAN_SHIFT_PARAMS,
    BlurKernelEncoder,
    DegradationExtractionNetwork,
    MetaLearningNetwork,
    MRDAStudent,
    MRDATeacher,
    RDABlock,
    RDAConv,
    RDANOptions,
)
from blindsr.ops.resize import bicubic_upscale
from blindsr.zoo import load_model, save_release

TINY: dict[str, Any] = {"n_feats": 8, "n_blocks": 1, "idr_dim": 16, "den_channels": 4}  # flat, as a release stores
TINY_RDAN = RDANOptions(n_feats=8, n_blocks=1, idr_dim=16)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _student(scale: int = 2, **rdan: Any) -> MRDAStudent:
    """A tiny student; `rdan` overrides RDANOptions fields."""
    return MRDAStudent(scale=scale, rdan_options=replace(TINY_RDAN, **rdan), den_channels=4)  # type: ignore[arg-type]


def _teacher(scale: int = 2, *, rdan: dict[str, Any] | None = None, **kwargs: Any) -> MRDATeacher:
    """A tiny teacher (D′ of 6 channels); `rdan` overrides RDANOptions fields, `kwargs` the teacher's own."""
    options = replace(TINY_RDAN, **(rdan or {}))
    return MRDATeacher(scale=scale, rdan_options=options, den_channels=4, mln_channels=6, **kwargs)  # type: ignore[arg-type]


def _mln(scale: int = 2, **kwargs: Any) -> MetaLearningNetwork:
    return MetaLearningNetwork(scale=scale, n_feats=6, n_body=2, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- parameter counts
# (docs/specs/mrda.md §2.1-2.4, 3, 9)

MLN_COUNTS = {2: 1_482_883, 3: 2_220_803, 4: 2_073_219}
RDAN_COUNTS = {2: 4_414_009, 3: 4_598_649, 4: 4_561_721}  # learnable; docs/specs/mrda.md §2.4: +24 (mean shift)
DEN_T, DEN_S = 1_348_992, 1_276_992


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_full_size_parameter_counts(scale: int) -> None:
    with torch.device("meta"):  # counts only: no memory, no init cost, no forward
        mln = MetaLearningNetwork(scale=scale)  # type: ignore[arg-type]
        teacher = MRDATeacher(scale=scale)  # type: ignore[arg-type]
        student = MRDAStudent(scale=scale)  # type: ignore[arg-type]
    assert mln.parameter_counts()["total"] == _count(mln) == MLN_COUNTS[scale]
    rdan = RDAN_COUNTS[scale]
    assert teacher.parameter_counts() == {"den": DEN_T, "rdan": rdan, "total": DEN_T + rdan}
    assert student.parameter_counts() == {"den": DEN_S, "rdan": rdan, "total": DEN_S + rdan}
    assert _count(student) == DEN_S + rdan and _count(teacher) == DEN_T + rdan


def test_student_x4_has_the_pinned_5_838_737_parameters_in_the_reference_accounting() -> None:
    # docs/specs/mrda.md §2.4: RDAN x4 = 4,561,745 of which 24 are the reference code's two frozen 1x1 mean-shift convs;
    # here the mean shift is a constant buffer (docs/specs/mrda.md §2.3), so the learnable count is 24 lower
    with torch.device("meta"):
        student = MRDAStudent(scale=4)
        teacher = MRDATeacher(scale=4)
    assert _count(student) + REFERENCE_MEAN_SHIFT_PARAMS == 5_838_737
    assert _count(teacher) + REFERENCE_MEAN_SHIFT_PARAMS == 5_910_737
    assert _count(student.rdan) + REFERENCE_MEAN_SHIFT_PARAMS == 4_561_745
    reference_mean_shifts = nn.ModuleList([nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)])
    assert _count(reference_mean_shifts) == REFERENCE_MEAN_SHIFT_PARAMS
    assert "rdan.rgb_mean" not in student.state_dict(), "the mean shift is a constant, not state"


def test_building_block_parameter_counts() -> None:
    assert _count(RDAConv()) == 41_025
    assert _count(RDABlock()) == 155_906
    assert _count(DAConv()) == 46_144
    assert _count(DAConv(kernel="static")) == 5_760
    assert _count(DepthwiseKernelGenerator()) == 40_960
    assert _count(DegradationExtractionNetwork(in_channels=3)) == DEN_S
    assert _count(DegradationExtractionNetwork(in_channels=128)) == DEN_T


@pytest.mark.parametrize(
    ("kwargs", "total"),
    [
        ({}, 5_838_713),
        ({"modulation": "da"}, 5_838_713 + 54 * (46_144 - 41_025)),  # S4: about 6.12 M (docs/specs/mrda.md §3)
        ({"modulation": "da", "kernel": "static"}, 5_838_713 + 54 * (5_760 - 41_025)),  # S5
        ({"modulation": "none"}, 5_838_713 - 54 * 65),  # no RDAM: the 1x1 64 -> 1 conv goes
        ({"rdam_channels": 64}, 5_838_713 + 54 * (64 * 64 + 64 - 65)),  # about 6.06 M (docs/specs/mrda.md §2.3)
        ({"rdam_kernel_size": 3}, 5_838_713 + 54 * (64 * 9 + 1 - 65)),  # about 5.87 M (docs/specs/mrda.md §2.3)
        ({"rdam_input": "F1"}, 5_838_713),
    ],
)
def test_ablation_switches_change_the_counts_as_expected(kwargs: dict[str, Any], total: int) -> None:
    with torch.device("meta"):
        counts = MRDAStudent(scale=4, rdan_options=RDANOptions(**kwargs)).parameter_counts()
    assert counts["total"] == total and counts["den"] == DEN_S


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_all_networks_run_with_odd_sizes(scale: int) -> None:
    lr = torch.rand(2, 3, 7, 5)
    mln, teacher, student = _mln(scale).eval(), _teacher(scale).eval(), _student(scale).eval()
    with torch.no_grad():
        m = mln(lr)
        t = teacher(lr, m.features)
        s = student(lr)
    assert m.sr.shape == t.sr.shape == s.sr.shape == (2, 3, 7 * scale, 5 * scale)
    assert m.features.shape == (2, 6, 7, 5)
    assert t.idr.shape == s.idr.shape == (2, 16)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (16, 16)])
def test_den_takes_any_size(size: tuple[int, int]) -> None:
    den = DegradationExtractionNetwork(in_channels=3, channels=4, idr_dim=16)
    assert den(torch.rand(3, 3, *size)).shape == (3, 16)


@pytest.mark.parametrize("kwargs", [{"modulation": "da"}, {"modulation": "da", "kernel": "static"}, {}])
def test_ablation_variants_run(kwargs: dict[str, Any]) -> None:
    out = _student(3, **kwargs)(torch.rand(2, 3, 6, 5))
    assert out.sr.shape == (2, 3, 18, 15)


def test_invalid_configurations_are_rejected() -> None:
    with pytest.raises(ValueError, match="leaves the IDR unused"):
        _student(kernel="static")
    with pytest.raises(ValueError, match="modulation"):
        _student(modulation="spatial")
    with pytest.raises(ValueError, match="rdam_channels"):
        _student(rdam_channels=3)
    with pytest.raises(ValueError, match="rdam_input"):
        _student(rdam_input="F2")
    with pytest.raises(ValueError, match="kernel size"):
        _student(rdam_kernel_size=2)
    with pytest.raises(ValueError, match="scale"):
        _student(scale=8)
    with pytest.raises(ValueError, match="kernel must be"):
        DepthwiseBranch(kernel="spatial")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _student(n_resblocks=2)  # a typo in a kwarg fails loudly
    with pytest.raises(ValueError, match="idr"):
        RDAN(scale=2, options=TINY_RDAN)(torch.rand(2, 3, 4, 4), torch.rand(2, 15))
    with pytest.raises(ValueError, match="features"):
        _teacher()(torch.rand(1, 3, 4, 4), torch.rand(1, 6, 4, 5))
    with pytest.raises(ValueError, match="lr_bic"):
        _mln()(torch.rand(1, 3, 4, 4), lr_bic=torch.rand(1, 3, 8, 9))


# ---------------------------------------------------------------- dynamic depthwise conv (Eq. 8)


def test_dynamic_depthwise_conv_equals_a_per_sample_loop() -> None:
    x = torch.randn(3, 5, 9, 7)
    weight = torch.randn(3, 5, 3, 3)
    fast = dynamic_depthwise_conv2d(x, weight)
    loop = torch.cat([F.conv2d(x[b : b + 1], weight[b].unsqueeze(1), padding=1, groups=5) for b in range(3)])
    torch.testing.assert_close(fast, loop, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="weight must have shape"):
        dynamic_depthwise_conv2d(x, torch.randn(3, 4, 3, 3))


def test_rda_conv_uses_each_samples_own_kernels() -> None:
    conv = RDAConv(n_feats=4, rdam=False)
    x, code = torch.randn(2, 4, 6, 6), torch.randn(2, 4)
    both = conv(x, code)
    for b in range(2):
        torch.testing.assert_close(conv(x[b : b + 1], code[b : b + 1]), both[b : b + 1], atol=1e-6, rtol=0)
    assert not torch.allclose(conv(x, code.flip(0)), both), "swapping the codes must change the output"


# ---------------------------------------------------------------- RDAM (Eq. 9-10; docs/specs/mrda.md §9)


def test_rdam_map_is_one_channel_in_the_unit_interval() -> None:
    conv = RDAConv(n_feats=8)
    m = conv.modulation_map(torch.randn(2, 8, 5, 6), torch.randn(2, 8))
    assert m.shape == (2, 1, 5, 6) and bool(((m > 0) & (m < 1)).all())
    assert RDAConv(n_feats=8, rdam_channels=8, rdam_input="F1").modulation_map(
        torch.randn(2, 8, 5, 6), torch.randn(2, 8)
    ).shape == (2, 8, 5, 6)
    with pytest.raises(ValueError, match="rdam=False"):
        RDAConv(n_feats=8, rdam=False).modulation_map(torch.randn(1, 8, 2, 2), torch.randn(1, 8))


def test_rdam_saturated_open_equals_no_rdam_and_closed_is_identity() -> None:
    with_rdam, without = RDAConv(n_feats=8), RDAConv(n_feats=8, rdam=False)
    without.depthwise.load_state_dict(with_rdam.depthwise.state_dict())
    x, code = torch.randn(2, 8, 5, 6), torch.randn(2, 8)
    assert with_rdam.rdam is not None and with_rdam.rdam.bias is not None
    with torch.no_grad():
        with_rdam.rdam.weight.zero_()
        with_rdam.rdam.bias.fill_(100.0)  # M ≡ 1: F2 = F1 + F
        torch.testing.assert_close(with_rdam(x, code), without(x, code), atol=1e-6, rtol=0)
        with_rdam.rdam.bias.fill_(-1e4)  # M ≡ 0: the RDA conv is the identity
        assert torch.equal(with_rdam(x, code), x)


def test_rdam_from_f1_differs_from_rdam_from_f() -> None:
    from_f, from_f1 = RDAConv(n_feats=8), RDAConv(n_feats=8, rdam_input="F1")
    from_f1.load_state_dict(from_f.state_dict())
    x, code = torch.randn(2, 8, 5, 6), torch.randn(2, 8)
    assert not torch.allclose(from_f(x, code), from_f1(x, code))


def test_da_conv_matches_its_equation() -> None:
    conv = DAConv(n_feats=8, reduction=4)
    x, code = torch.randn(2, 8, 5, 6), torch.randn(2, 8)
    assert conv.depthwise.generator is not None
    kernels = conv.depthwise.generator(code)
    attention = conv.attention(code[:, :, None, None])
    expected = conv.conv(F.leaky_relu(dynamic_depthwise_conv2d(x, kernels), 0.1)) + x * attention
    torch.testing.assert_close(conv(x, code), expected)
    assert attention.shape == (2, 8, 1, 1)


# ---------------------------------------------------------------- MLN (docs/specs/mrda.md §2.1, 9)


def test_mln_functional_call_with_its_own_params_equals_the_plain_forward() -> None:
    mln = _mln(3)
    lr = torch.rand(2, 3, 6, 5)
    params: dict[str, torch.Tensor] = dict(mln.named_parameters())
    plain = mln(lr)
    functional = torch.func.functional_call(mln, params, (lr,))
    assert torch.equal(functional.sr, plain.sr) and torch.equal(functional.features, plain.features)
    assert torch.equal(mln.degradation_features(lr, params=params), plain.features)
    assert torch.equal(mln.degradation_features(lr), plain.features)


def test_mln_adapted_params_change_the_output_without_touching_the_module() -> None:
    mln = _mln(2)
    lr, hr = torch.rand(2, 3, 6, 6), torch.rand(2, 3, 12, 12)
    before = {k: v.detach().clone() for k, v in mln.named_parameters()}
    params: dict[str, torch.Tensor] = dict(mln.named_parameters())
    lr_bic = mln.bicubic_skip(lr)
    loss = (torch.func.functional_call(mln, params, (lr,), {"lr_bic": lr_bic}).sr - hr).abs().mean()
    names = [n for n in params if not mln.is_upscaler_parameter(n)]
    grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True)  # second order works
    adapted = {**params, **{n: params[n] - 0.1 * g for n, g in zip(names, grads, strict=True)}}
    features = mln.degradation_features(lr, params=adapted)
    assert not torch.allclose(features, mln.degradation_features(lr))
    features.sum().backward()  # through the adaptation, back to θ_M
    assert all(p.grad is not None for n, p in mln.named_parameters() if n.startswith("trunk."))
    assert all(torch.equal(p, before[n]) for n, p in mln.named_parameters())
    assert {n for n in params if mln.is_upscaler_parameter(n)} == {n for n in params if n.startswith("upscaler.")}
    assert "out.weight" in names  # the paper's Upscaler excludes the last conv (one of its "8 conv layers")
    with pytest.raises(RuntimeError):  # strict: a dict without the trunk's entries is an error, not a fallback
        mln.degradation_features(lr, params={k.replace("trunk.", "body."): v for k, v in params.items()})


def test_mln_with_zero_weights_is_the_quantised_bicubic_skip() -> None:
    mln = _mln(4)
    with torch.no_grad():
        for p in mln.parameters():
            p.zero_()
    lr = torch.rand(1, 3, 5, 6)
    expected = torch.round(bicubic_upscale(lr, 4, border="replicate").clamp(0, 1) * 255) / 255
    assert torch.equal(mln(lr).sr, expected)
    exact = _mln(4, skip_border="symmetric", skip_quantize=False)
    assert torch.equal(exact.bicubic_skip(lr), bicubic_upscale(lr, 4))
    with pytest.raises(ValueError, match="skip_border"):
        _mln(2, skip_border="reflect")


# ---------------------------------------------------------------- teacher / student


def test_student_rdan_keys_equal_the_teachers_and_load_strictly() -> None:
    teacher, student = _teacher(4), _student(4)
    t_keys = [k for k in teacher.state_dict() if k.startswith("rdan.")]
    s_keys = [k for k in student.state_dict() if k.startswith("rdan.")]
    assert t_keys == s_keys and t_keys
    student.rdan.load_state_dict(teacher.rdan.state_dict(), strict=True)
    lr, idr = torch.rand(1, 3, 5, 5), torch.randn(1, 16)
    with torch.no_grad():
        assert torch.equal(student.rdan(lr, idr), teacher.rdan(lr, idr))


def test_gradients_reach_every_parameter() -> None:
    for net, args in (
        (_student(2), (torch.rand(2, 3, 6, 5),)),
        (_teacher(2), (torch.rand(2, 3, 6, 5), torch.randn(2, 6, 6, 5))),
        (_student(2, modulation="da", kernel="static"), (torch.rand(2, 3, 6, 5),)),
    ):
        out = net(*args)
        (out.sr.mean() + out.idr.square().mean()).backward()
        missing = [n for n, p in net.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
        assert not missing, missing


def test_student_save_release_load_model_round_trip(tmp_path: Path) -> None:
    kwargs = {"scale": 2, **TINY}
    assert archs.ARCHS["mrda_s"] is MRDAStudent
    net = MRDAStudent(**constructor_kwargs("mrda_s", kwargs)).eval()
    path = tmp_path / "mrda-tiny.safetensors"
    save_release(net, path, arch="mrda_s", arch_kwargs=kwargs, scale=2, half=False)
    loaded = load_model(path)
    assert loaded.arch == "mrda_s" and loaded.scale == 2 and isinstance(loaded.model, MRDAStudent)
    lr = torch.rand(2, 3, 7, 6)
    with torch.no_grad():
        expected = net(lr)
        again = loaded.model(lr)
    assert torch.equal(loaded.upscale(lr, 2), expected.sr)
    assert torch.equal(again.idr, expected.idr)
    assert loaded.parameter_counts() == net.parameter_counts()


@pytest.mark.parametrize(("arch", "cls"), [("mrda_t", MRDATeacher), ("mrda_mln", MetaLearningNetwork)])
def test_training_networks_are_registered(arch: str, cls: type[nn.Module]) -> None:
    kwargs: dict[str, Any] = {"scale": 3, "n_feats": 6} if arch == "mrda_mln" else {"scale": 3, **TINY}
    assert isinstance(archs.ARCHS[arch](**constructor_kwargs(arch, kwargs)), cls)


def test_eval_mode_is_deterministic() -> None:
    net = _student(4).eval()
    lr = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        a, b = net(lr), net(lr)
    assert torch.equal(a.sr, b.sr) and torch.equal(a.idr, b.idr)


# ---------------------------------------------------------------- MRDA_T3: the oracle-kernel teacher (Table V)

KERNEL_ENCODER_21 = 376_320  # 441·256 + 256, then 4 × (256·256 + 256)


def test_blur_kernel_encoder_is_five_fc_layers_with_pinned_parameters() -> None:
    encoder = BlurKernelEncoder()
    assert [(m.in_features, m.out_features) for m in encoder.layers] == [(441, 256)] + [(256, 256)] * 4
    assert _count(encoder) == KERNEL_ENCODER_21
    assert _count(BlurKernelEncoder(blur_kernel_size=15, idr_dim=16)) == 225 * 16 + 16 + 4 * (16 * 16 + 16)
    kernels = torch.rand(3, 21, 21)
    idr = encoder(kernels)
    assert idr.shape == (3, 256)
    x = kernels.flatten(1)  # LReLU(0.1) between the layers, none after the last
    for i, layer in enumerate(encoder.layers):
        x = layer(x) if i == 4 else F.leaky_relu(layer(x), 0.1)
    torch.testing.assert_close(idr, x)
    with pytest.raises(ValueError, match=r"\(B, 21, 21\)"):
        encoder(torch.rand(3, 15, 15))
    with pytest.raises(ValueError, match="odd"):
        BlurKernelEncoder(blur_kernel_size=20)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_t3_teacher_replaces_den_t_by_the_blur_kernel_encoder(scale: int) -> None:
    with torch.device("meta"):
        t3 = MRDATeacher(scale=scale, idr_source="kernel")  # type: ignore[arg-type]
    rdan = RDAN_COUNTS[scale]
    assert t3.parameter_counts() == {
        "blur_encoder": KERNEL_ENCODER_21,
        "rdan": rdan,
        "total": KERNEL_ENCODER_21 + rdan,
    }
    assert t3.den is None and not any(k.startswith("den.") for k in t3.state_dict())
    if scale == 4:
        assert _count(t3) == 4_938_041


def test_t3_teacher_forward_and_strict_rdan_keys() -> None:
    t3 = _teacher(2, idr_source="kernel", blur_kernel_size=15)
    assert t3.blur_encoder is not None and t3.blur_encoder.blur_kernel_size == 15
    lr, kernels = torch.rand(2, 3, 6, 5), torch.rand(2, 15, 15, dtype=torch.float64)  # cast to the LR's dtype
    out = t3(lr, blur_kernels=kernels)
    assert out.sr.shape == (2, 3, 12, 10) and out.idr.shape == (2, 16) and out.sr.dtype == torch.float32
    (out.sr.mean() + out.idr.square().mean()).backward()
    assert all(p.grad is not None for p in t3.parameters())
    # RDAN_T3 has the RDAN keys of every teacher and student: a student could start from it (exclude blur_encoder.)
    student = _student(2)
    assert [k for k in t3.state_dict() if k.startswith("rdan.")] == [
        k for k in student.state_dict() if k.startswith("rdan.")
    ]
    student.rdan.load_state_dict(t3.rdan.state_dict(), strict=True)
    with pytest.raises(ValueError, match="B = 2"):
        t3(lr, blur_kernels=kernels[:1])
    with pytest.raises(ValueError, match="blur_kernels="):  # the blur kernels go by name, never as `features`
        t3(lr, kernels)
    with pytest.raises(ValueError, match="idr_source"):
        _teacher(2, idr_source="lr")
    # the default teacher is unchanged: DEN_T on D′, no blur-kernel encoder; it refuses blur kernels
    t2 = _teacher(2)
    assert t2.blur_encoder is None and t2.den is not None and t2.idr_source == "mln"
    with pytest.raises(ValueError, match="not blur kernels"):
        t2(lr, blur_kernels=torch.rand(2, 21, 21))


def test_t3_teacher_release_round_trip(tmp_path: Path) -> None:
    kwargs = {"scale": 2, **TINY, "idr_source": "kernel", "blur_kernel_size": 21}
    net = MRDATeacher(**constructor_kwargs("mrda_t", kwargs)).eval()
    path = tmp_path / "t3.safetensors"
    save_release(net, path, arch="mrda_t", arch_kwargs=kwargs, scale=2, half=False)
    loaded = load_model(path)
    assert isinstance(loaded.model, MRDATeacher) and loaded.model.idr_source == "kernel"
    lr, kernels = torch.rand(1, 3, 6, 6), torch.rand(1, 21, 21)
    with torch.no_grad():
        assert torch.equal(loaded.model(lr, blur_kernels=kernels).sr, net(lr, blur_kernels=kernels).sr)


def test_t3_weights_written_with_the_old_kernel_encoder_keys_load_strictly() -> None:
    """MRDA_T3's encoder was ``kernel_encoder``; its files and run folders keep loading (keys mapped on load)."""
    t3 = _teacher(2, idr_source="kernel", blur_kernel_size=15)
    old = {k.replace("blur_encoder.", "kernel_encoder."): v for k, v in t3.state_dict().items()}
    assert any(k.startswith("kernel_encoder.") for k in old)
    fresh = _teacher(2, idr_source="kernel", blur_kernel_size=15)
    fresh.load_state_dict(old, strict=True)
    assert all(torch.equal(v, t3.state_dict()[k]) for k, v in fresh.state_dict().items())
    # nested, as the engine loads a run's networks ({"teacher": ...})
    outer = nn.ModuleDict({"teacher": _teacher(2, idr_source="kernel", blur_kernel_size=15)})
    outer.load_state_dict({f"teacher.{k}": v for k, v in old.items()}, strict=True)
    assert torch.equal(outer["teacher"].rdan.head.weight, t3.rdan.head.weight)
    with pytest.raises(RuntimeError, match="Unexpected"):  # both spellings: nothing is renamed, the strict load says so
        fresh.load_state_dict({**t3.state_dict(), **old}, strict=True)


def test_rdan_options_is_one_frozen_keyword_only_object() -> None:
    options = RDANOptions(n_feats=8, n_blocks=2, idr_dim=16, modulation="da")
    with pytest.raises(FrozenInstanceError):
        options.n_feats = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        RDANOptions(8)  # type: ignore[misc]
    student = MRDAStudent(scale=2, rdan_options=options, den_channels=4)
    assert student.rdan.options is options and all(b.da_conv1.__class__ is DAConv for b in student.rdan.blocks)
    assert len(student.rdan.blocks) == 2 and student.den.idr_dim == 16
    with pytest.raises(TypeError, match="RDANOptions"):
        MRDAStudent(scale=2, rdan_options={"n_feats": 8})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        MRDAStudent(scale=2, n_feats=8)  # type: ignore[call-arg]  # RDAN's fields are not the student's arguments
