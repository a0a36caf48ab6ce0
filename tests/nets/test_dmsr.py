"""DMSR network (docs/specs/dmsr.md sections 3, 8, 11): counts, shapes, MBM identity init, dynamic filter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import blindsr.nets.dmsr as dmsr_module
from blindsr.nets.dmsr import DegradationExtractor, DMSRNet, MetaDeblur, noise_level_map
from blindsr.nets.layers.dynamic_conv import Padding, dynamic_filter, dynamic_filter_unfold, pad_for_filter
from blindsr.nets.layers.rcan import RCAB, ChannelAttention, ResidualGroup, Upsampler


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _tiny(scale: int = 2, **kwargs: object) -> DMSRNet:
    return DMSRNet(scale=scale, n_feats=8, n_groups=1, n_blocks=1, extractor_channels=8, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- parameter counts
# (docs/specs/dmsr.md §3.1, 3.3, 3.6, 11)


@pytest.mark.parametrize(("scale", "sr_params"), [(2, 7_892_136), (3, 8_076_776), (4, 8_039_848)])
def test_full_size_parameter_counts(scale: int, sr_params: int) -> None:
    with torch.device("meta"):  # counts only: no memory, no init cost
        counts = DMSRNet(scale=scale).parameter_counts()  # type: ignore[arg-type]
    assert counts == {"extractor": 484_516, "sr": sr_params, "total": 484_516 + sr_params}


def test_building_block_parameter_counts() -> None:
    assert _count(ChannelAttention(channels=64)) == 580
    assert _count(RCAB(channels=64)) == 74_436
    assert _count(ResidualGroup(channels=64)) == 1_525_648
    assert _count(DegradationExtractor()) == 484_516
    assert _count(MetaDeblur()) == 3_390 + 36_675 + 84
    assert [_count(Upsampler(scale=s, channels=64)) for s in (2, 3, 4)] == [147_712, 332_352, 295_424]


def test_mnm_3x3_reading_gives_the_count_the_spec_rejects() -> None:
    with torch.device("meta"):
        counts = DMSRNet(scale=2, mnm_kernel_size=3).parameter_counts()
    assert counts["sr"] == 7_895_208


# ---------------------------------------------------------------- shapes and the extractor's outputs


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shapes_for_odd_sizes(scale: int) -> None:
    net = _tiny(scale).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 7, 9))
    assert out.sr.shape == out.y0.shape == (2, 3, 7 * scale, 9 * scale)
    assert out.kernel.shape == (2, 15, 15)
    assert out.noise.shape == (2, 3, 7, 9)


def test_extractor_kernel_is_a_normalised_non_negative_kernel() -> None:
    kernel, noise = DegradationExtractor(channels=8)(torch.rand(3, 3, 11, 5))
    assert kernel.shape == (3, 15, 15) and noise.shape == (3, 3, 11, 5)
    assert (kernel >= 0).all()
    torch.testing.assert_close(kernel.sum(dim=(1, 2)), torch.ones(3), atol=1e-6, rtol=0)
    assert (noise < 0).any(), "the noise map is signed (no output activation)"


# ---------------------------------------------------------------- MBM


def test_identity_mbm_makes_sr_equal_y0_at_init() -> None:
    for n_mbm in (1, 2):
        out = _tiny(3, n_mbm=n_mbm)(torch.rand(2, 3, 6, 5))
        torch.testing.assert_close(out.sr, out.y0, atol=1e-6, rtol=0)


def test_identity_mbm_with_softmax_filters_is_close_to_identity() -> None:
    out = _tiny(2, mbm_normalize_kernels=True)(torch.rand(1, 3, 6, 6))
    torch.testing.assert_close(out.sr, out.y0, atol=1e-4, rtol=0)


def test_default_init_mbm_is_not_identity() -> None:
    out = _tiny(2, mbm_identity_init=False)(torch.rand(1, 3, 6, 6))
    assert not torch.allclose(out.sr, out.y0, atol=1e-3)


def test_pca_init_sets_the_code_layer() -> None:
    matrix = torch.linalg.qr(torch.randn(225, 15)).Q.T.contiguous()  # orthonormal rows, like a PCA basis
    mbm = MetaDeblur()
    mbm.init_code_from_pca(matrix)
    assert torch.equal(mbm.code.weight, matrix)
    assert torch.equal(mbm.code.bias, torch.zeros(15))
    net = _tiny(2, n_mbm=2)
    net.init_code_from_pca(matrix)
    assert all(torch.equal(m.code.weight, matrix) for m in net.mbms)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="PCA matrix"):
        mbm.init_code_from_pca(matrix.T)


# ---------------------------------------------------------------- dynamic filter


@pytest.mark.parametrize("padding", ["reflect", "replicate", "zeros"])
@pytest.mark.parametrize("chunk_rows", [None, 3])
def test_dynamic_filter_matches_unfold_reference(padding: str, chunk_rows: int | None) -> None:
    x = torch.rand(2, 3, 10, 13, requires_grad=True)
    kernels = torch.randn(2, 49, 10, 13, requires_grad=True)
    fast = dynamic_filter(x, kernels, padding=padding, chunk_rows=chunk_rows)  # type: ignore[arg-type]
    ref = dynamic_filter_unfold(x, kernels, padding=padding)  # type: ignore[arg-type]
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)
    g = torch.randn_like(ref)
    grads_fast = torch.autograd.grad(fast, (x, kernels), g)
    grads_ref = torch.autograd.grad(ref, (x, kernels), g)
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("padding", ["reflect", "replicate", "zeros"])
@pytest.mark.parametrize(("height", "width"), [(9, 12), (3, 5), (1, 2)])
def test_traceable_dynamic_filter_matches_the_autograd_one(padding: Padding, height: int, width: int) -> None:
    # includes images smaller than the filter radius, where reflect padding mirrors more than once
    x = torch.randn(2, 3, height, width, dtype=torch.float64, requires_grad=True)
    kernels = torch.randn(2, 49, height, width, dtype=torch.float64, requires_grad=True)
    expected = dynamic_filter(x, kernels, padding=padding)
    got = dynamic_filter(x, kernels, padding=padding, impl="traceable", kernel_size=7)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(got)
    for a, b in zip(
        torch.autograd.grad(got, (x, kernels), g), torch.autograd.grad(expected, (x, kernels), g), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_dynamic_filter_impl_arguments_are_checked() -> None:
    x, kernels = torch.rand(1, 3, 4, 4), torch.rand(1, 9, 4, 4)
    with pytest.raises(ValueError, match="needs kernel_size"):
        dynamic_filter(x, kernels, impl="traceable")
    with pytest.raises(ValueError, match="impl must be"):
        dynamic_filter(x, kernels, impl="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kernel_size is 5"):
        dynamic_filter(x, kernels, kernel_size=5)


def test_meta_deblur_filter_impl_selects_the_traceable_filter() -> None:
    torch.manual_seed(0)
    mbm = MetaDeblur(kernel_size=5, filter_size=5, identity_init=False)
    image, kernel = torch.rand(2, 3, 6, 7), torch.rand(2, 5, 5)
    assert mbm.filter_impl == "autograd" and mbm.filter_size == 5
    expected = mbm(image, kernel)
    mbm.filter_impl = "traceable"
    torch.testing.assert_close(mbm(image, kernel), expected, rtol=0, atol=1e-6)
    assert "filter_impl" not in str(list(mbm.state_dict()))


def test_dynamic_filter_tap_order_is_row_major_correlation() -> None:
    x = torch.arange(25.0).view(1, 1, 5, 5)
    kernels = torch.zeros(1, 9, 5, 5)
    kernels[:, 5] = 1.0  # tap (i, j) = (0, +1): the right-hand neighbour
    out = dynamic_filter(x, kernels, padding="zeros")
    assert torch.equal(out[0, 0, :, :4], x[0, 0, :, 1:])
    assert torch.equal(out[0, 0, :, 4], torch.zeros(5))


def test_dynamic_filter_gradcheck_double() -> None:
    x = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    kernels = torch.randn(1, 9, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: dynamic_filter(a, b), (x, kernels))
    assert torch.autograd.gradgradcheck(lambda a, b: dynamic_filter(a, b), (x, kernels))


def test_reflect_padding_matches_torch_and_handles_tiny_images() -> None:
    x = torch.rand(1, 3, 9, 8)
    assert torch.equal(pad_for_filter(x, 7), F.pad(x, (7, 7, 7, 7), mode="reflect"))
    tiny = torch.rand(1, 3, 2, 3)
    out = dynamic_filter(tiny, torch.rand(1, 225, 2, 3))  # F.pad(reflect) would refuse a pad of 7 here
    assert out.shape == tiny.shape


def test_dynamic_filter_rejects_bad_kernels() -> None:
    with pytest.raises(ValueError, match="k\\*k channels"):
        dynamic_filter(torch.rand(1, 3, 4, 4), torch.rand(1, 8, 4, 4))
    with pytest.raises(ValueError, match="must match"):
        dynamic_filter(torch.rand(1, 3, 4, 4), torch.rand(1, 9, 4, 5))


# ---------------------------------------------------------------- training / inference behaviour


def test_gradients_reach_every_parameter() -> None:
    net = _tiny(2, mbm_identity_init=False, n_mbm=2)
    out = net(torch.rand(2, 3, 6, 7))
    (out.sr.abs().mean() + out.noise.square().mean()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_identity_init_still_gives_every_parameter_a_gradient_tensor() -> None:
    net = _tiny(2)
    net(torch.rand(1, 3, 6, 6)).sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_eval_mode_is_deterministic() -> None:
    net = _tiny(4).eval()
    lr = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        a, b = net(lr), net(lr)
    for x, y in zip(a, b, strict=True):
        assert (x is None and y is None) or torch.equal(x, y)


def test_state_dict_round_trips_through_safetensors(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    net = _tiny(3, mbm_identity_init=False).eval()
    path = tmp_path / "dmsr.safetensors"
    save_file(net.state_dict(), str(path), metadata={"arch": "dmsr", "scale": "3"})
    assert "rgb_mean" not in net.state_dict(), "the mean shift is a constant, not state"
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"arch": "dmsr", "scale": "3"}
    other = _tiny(3, mbm_identity_init=False).eval()
    other.load_state_dict(load_file(str(path)), strict=True)
    lr = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        assert torch.equal(net(lr).sr, other(lr).sr)


def test_restore_uses_the_given_degradations() -> None:
    net = _tiny(2, mbm_identity_init=False).eval()
    lr = torch.rand(2, 3, 6, 5)
    with torch.no_grad():
        full = net(lr)
        again = net.restore(lr, full.kernel, full.noise)
        assert torch.equal(full.sr, again.sr)
        delta = torch.zeros(2, 15, 15)
        delta[:, 7, 7] = 1.0
        given = net.restore(lr, delta, torch.zeros(2, 3, 6, 5))
    assert given.kernel is delta and torch.equal(given.noise, torch.zeros(2, 3, 6, 5))
    assert given.sr.shape == (2, 3, 12, 10)
    assert not torch.allclose(given.sr, full.sr)
    with pytest.raises(ValueError, match="kernel must have shape"):
        net.restore(lr, torch.zeros(2, 13, 13), full.noise)
    with pytest.raises(ValueError, match="noise must have the shape"):
        net.restore(lr, delta, torch.zeros(2, 3, 6, 6))


@pytest.mark.parametrize("n_mbm", [0, 2, 3])
def test_number_of_mbms(n_mbm: int) -> None:
    net = _tiny(2, n_mbm=n_mbm, mbm_identity_init=False)
    assert len(net.mbms) == n_mbm
    out = net(torch.rand(1, 3, 5, 5))
    assert out.sr.shape == (1, 3, 10, 10)
    assert (out.sr is out.y0) == (n_mbm == 0)


def test_sigma_noise_input_sees_only_the_per_image_std() -> None:
    net = _tiny(2, noise_input="sigma").eval()
    lr = torch.rand(2, 3, 6, 7)
    noise = 0.1 * torch.randn(2, 3, 6, 7)
    with torch.no_grad():
        a = net.restore(lr, torch.full((2, 15, 15), 1 / 225), noise)
        b = net.restore(lr, torch.full((2, 15, 15), 1 / 225), -noise.flip(-1))  # same std per image
        c = net.restore(lr, torch.full((2, 15, 15), 1 / 225), 2 * noise)
    assert torch.equal(a.noise, noise)
    torch.testing.assert_close(a.sr, b.sr)
    assert not torch.allclose(a.sr, c.sr)
    assert net(lr).sr.shape == (2, 3, 12, 14)


def test_noise_level_map_is_the_per_image_population_std() -> None:
    noise = torch.randn(2, 3, 4, 5)
    noise[1] *= 3
    sigma = noise_level_map(noise)
    assert sigma.shape == noise.shape
    expected = noise.flatten(1).std(dim=1, correction=0)
    torch.testing.assert_close(sigma[:, 0, 0, 0], expected)
    assert torch.equal(sigma, sigma[:, :1, :1, :1].expand_as(sigma))
    zero = torch.zeros(1, 3, 2, 2, requires_grad=True)
    noise_level_map(zero).sum().backward()
    assert zero.grad is not None and torch.isfinite(zero.grad).all()


def test_invalid_configurations_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_mbm"):
        _tiny(2, n_mbm=4)
    with pytest.raises(ValueError, match="noise_input"):
        _tiny(2, noise_input="level")
    with pytest.raises(ValueError, match="kernel size"):
        _tiny(2, mnm_kernel_size=2)
    with pytest.raises(ValueError, match="scale"):
        Upsampler(scale=5, channels=8)


# ---------------------------------------------------------------- layering


def test_dmsr_modules_do_not_import_degradations() -> None:
    layers_dir = Path(dmsr_module.__file__).parent / "layers"
    for path in [Path(dmsr_module.__file__), *layers_dir.glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.startswith("blindsr.degradations") for n in names), (path.name, names)


def test_resimulate_runs_the_second_extractor_pass_inside_forward() -> None:
    net = _tiny(2)
    lr = torch.rand(2, 3, 6, 5)
    seen = {}

    def resimulate(kernel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        seen["shapes"] = (tuple(kernel.shape), tuple(noise.shape))
        return lr + noise

    out = net(lr, resimulate=resimulate)
    assert seen["shapes"] == ((2, 15, 15), (2, 3, 6, 5))
    assert out.lr_sim is not None and out.kernel_sim is not None and out.noise_sim is not None
    k2, n2 = net.extractor(lr + out.noise)
    assert torch.allclose(out.kernel_sim, k2) and torch.allclose(out.noise_sim, n2)
    assert net(lr).lr_sim is None
