"""MATLAB-exact bicubic: the torch fast and general paths against an independent NumPy port of MATLAB."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _reference import matlab_imresize as ref
from blindsr.ops.resize import bicubic_downscale, bicubic_upscale, contributions, fold_index, imresize

# interior taps of docs/specs/degradations_and_protocols.md §3.2, by |offset|
TAPS = {
    2: [0.43359375, 0.11328125, -0.03515625, -0.01171875],
    3: [0.33333333, 0.25925926, 0.11111111, 0.0, -0.02469136, -0.01234568],
    4: [0.24096680, 0.18188477, 0.09741211, 0.02270508, -0.01196289, -0.01831055, -0.01098633, -0.00170898],
}


def _np_to_torch(img: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(dtype)


def _torch_to_np(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).double().numpy()


def test_fold_index_matches_numpy_symmetric() -> None:
    for n, p in [(3, 5), (1, 4), (7, 2), (4, 13)]:
        expected = np.pad(np.arange(n), p, mode="symmetric")
        assert fold_index(n, p).tolist() == expected.tolist()


def test_fold_index_replicate_and_bad_border() -> None:
    assert fold_index(4, 3, "replicate").tolist() == [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]
    with pytest.raises(ValueError, match="border"):
        fold_index(4, 3, "reflect")  # type: ignore[arg-type]


@pytest.mark.parametrize("s", [2, 3, 4])
def test_interior_taps_match_spec(s: int) -> None:
    n = 16 * s
    w, idx = contributions(n, n // s, 1 / s)
    i = 8  # an interior output pixel
    centre = s * i + (s - 1) / 2
    offsets = idx[i].double() - centre
    for off, wt in zip(offsets.tolist(), w[i].tolist(), strict=False):
        assert wt == pytest.approx(TAPS[s][int(abs(off) - (0.5 if s % 2 == 0 else 0))], abs=5e-9)
    assert float(w.sum(1).sub(1).abs().max()) < 1e-12


@pytest.mark.parametrize("border", ["symmetric", "replicate"])
@pytest.mark.parametrize("s", [2, 3, 4])
@pytest.mark.parametrize("hw", [(24, 36), (12, 12)])
def test_integer_downscale_exact_float64(s: int, hw: tuple[int, int], border: str) -> None:
    h, w = hw[0] // s * s, hw[1] // s * s
    img = np.random.default_rng(s).random((h, w, 3))
    expected = ref.imresize(img, size=(h // s, w // s), border=border)
    got = _torch_to_np(imresize(_np_to_torch(img, torch.float64), scale=1 / s, border=border))
    assert np.abs(got - expected).max() * 255 < 1e-9


@pytest.mark.parametrize("s", [2, 3, 4])
def test_tiny_images_down_to_one_pixel(s: int) -> None:
    img = np.random.default_rng(0).random((s, 2 * s, 3))
    expected = ref.imresize(img, size=(1, 2))
    got = _torch_to_np(imresize(_np_to_torch(img, torch.float64), scale=1 / s))
    assert np.abs(got - expected).max() < 1e-12


@pytest.mark.parametrize("border", ["symmetric", "replicate"])
@pytest.mark.parametrize("s", [2, 3, 4])
def test_integer_upscale_exact_float64(s: int, border: str) -> None:
    img = np.random.default_rng(10 + s).random((7, 10, 3))
    expected = ref.imresize(img, scale=s, border=border)
    got = _torch_to_np(imresize(_np_to_torch(img, torch.float64), scale=s, border=border))
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() * 255 < 1e-9


@pytest.mark.parametrize("s", [2, 3, 4])
def test_float32_within_1e5(s: int) -> None:
    img = np.random.default_rng(s).random((48, 60, 3))
    down = ref.imresize(img, scale=1 / s)
    up = ref.imresize(down, scale=s)
    x32 = _np_to_torch(img, torch.float32)
    got_down = _torch_to_np(bicubic_downscale(x32, s))
    got_up = _torch_to_np(bicubic_upscale(_np_to_torch(down, torch.float32), s))
    assert np.abs(got_down - down).max() < 1e-5
    assert np.abs(got_up - up).max() < 1e-5


@pytest.mark.parametrize(
    ("scale", "size"),
    [(0.5, None), (1 / 3, None), (0.7, None), (1.5, None), (2.5, None), (None, (11, 17)), (None, (30, 9))],
)
def test_arbitrary_factors_and_sizes(scale: float | None, size: tuple[int, int] | None) -> None:
    img = np.random.default_rng(1).random((13, 19, 3))  # odd sizes: the general path
    expected = ref.imresize(img, scale=scale, size=size)
    got = _torch_to_np(imresize(_np_to_torch(img, torch.float64), scale=scale, size=size))
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-12


def test_dense_gather_and_interpolate_recipes_agree() -> None:
    """Three ways to compute MATLAB bicubic: our dense matrices, our tap gather, and the torch recipe (fold-pad +
    ``F.interpolate(antialias=True)`` + crop) of docs/specs/degradations_and_protocols.md §3.3."""
    import torch.nn.functional as F

    from blindsr.ops import resize as r

    x = torch.rand(2, 3, 24, 36, dtype=torch.float64)
    dense = imresize(x, scale=0.25)
    gather = r._resize_axis_gather(
        r._resize_axis_gather(x, -2, 6, 0.25, True, "symmetric"), -1, 9, 0.25, True, "symmetric"
    )
    xp = x.index_select(-2, fold_index(24, 8)).index_select(-1, fold_index(36, 8))
    recipe = F.interpolate(xp, size=(10, 13), mode="bicubic", antialias=True, align_corners=False)[..., 2:-2, 2:-2]
    assert torch.allclose(dense, gather, atol=1e-12)
    assert torch.allclose(dense, recipe, atol=1e-12)
    up = imresize(dense, scale=4)
    up_gather = r._resize_axis_gather(
        r._resize_axis_gather(dense, -2, 24, 4.0, True, "symmetric"), -1, 36, 4.0, True, "symmetric"
    )
    assert torch.allclose(up, up_gather, atol=1e-12)


def test_long_axes_use_the_gather_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from blindsr.ops import resize as r

    x = torch.rand(1, 3, 30, 44, dtype=torch.float64)
    expected = imresize(x, scale=0.5)
    monkeypatch.setattr(r, "_DENSE_LIMIT", 10)
    assert torch.allclose(imresize(x, scale=0.5), expected, atol=1e-12)


def test_constant_stays_constant_and_linear_ramp_interior() -> None:
    x = torch.full((1, 3, 20, 20), 0.42, dtype=torch.float64)
    for s in (2, 3, 4):
        h = 20 // s * s
        assert torch.allclose(
            imresize(x[..., :h, :h], scale=1 / s), torch.full((1, 3, h // s, h // s), 0.42, dtype=torch.float64)
        )


def test_gradients_flow_and_match_finite_differences() -> None:
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale=0.5), (x,))
    y = torch.rand(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale=2), (y,))
    z = torch.rand(1, 1, 7, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, size=(5, 4)), (z,))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="modcrop"):
        bicubic_downscale(torch.rand(1, 3, 10, 10), 4)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="B, C, H, W"):
        imresize(torch.rand(3, 8, 8), scale=0.5)
    with pytest.raises(ValueError, match="positive"):
        imresize(torch.rand(1, 3, 8, 8), scale=-1.0)
