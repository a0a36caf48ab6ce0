"""Tests for blindsr.data.patch_sampler: step determinism, shapes, augmentation group, crops, bad inputs."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from blindsr.data.patch_sampler import PatchSampler


def _write(path: Path, height: int, width: int, *, seed: int = 0, gray: bool = False) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (height, width) if gray else (height, width, 3)
    pixels = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _as_float(pixels: np.ndarray) -> torch.Tensor:
    hwc = np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels
    return torch.from_numpy(hwc.copy()).permute(2, 0, 1).float() / 255


@pytest.fixture
def folders(tmp_path: Path) -> list[Path]:
    _write(tmp_path / "A" / "a1.png", 20, 24, seed=1)
    _write(tmp_path / "A" / "a2.png", 17, 31, seed=2, gray=True)
    _write(tmp_path / "B" / "b1.png", 16, 16, seed=3)
    return [tmp_path / "A", tmp_path / "B"]


def _dihedral(patch: torch.Tensor) -> list[torch.Tensor]:
    """The 8 symmetries of the square applied to a (C, P, P) patch."""
    rotations = [torch.rot90(patch, k, dims=(-2, -1)) for k in range(4)]
    return rotations + [r.flip(-1) for r in rotations]


def test_shapes_dtype_range_and_properties(folders: list[Path]) -> None:
    sampler = PatchSampler(folders=folders, patch_size=12, batch_size=5, seed=3)
    assert sampler.num_images == 3 and sampler.patch_size == 12 and sampler.batch_size == 5
    assert sampler.device == torch.device("cpu") and sampler.augment and sampler.seed == 3
    assert [p.name for p in sampler.paths] == ["a1.png", "a2.png", "b1.png"]
    assert sampler.nbytes == 3 * (20 * 24 + 17 * 31 + 16 * 16)
    x = sampler.batch(0)
    assert x.shape == (5, 3, 12, 12) and x.dtype == torch.float32 and x.is_contiguous()
    assert x.min() >= 0 and x.max() <= 1
    assert torch.equal(torch.round(x * 255) / 255, x)  # on the 8-bit grid
    assert "num_images=3" in repr(sampler) and "batch_size=5" in repr(sampler)


def test_single_folder_path_is_accepted(folders: list[Path]) -> None:
    assert PatchSampler(folders=str(folders[0]), patch_size=8, batch_size=1).num_images == 2


def test_batches_are_a_pure_function_of_seed_step_and_rank(folders: list[Path]) -> None:
    sampler = PatchSampler(folders=folders, patch_size=8, batch_size=6, seed=0)
    first = sampler.batch(7)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(first, sampler.batch(7))
    assert torch.equal(sampler.batch(7, rank=1), sampler.batch(7, rank=1))
    again = PatchSampler(folders=folders, patch_size=8, batch_size=6, seed=0)  # a fresh process / resumed run
    assert torch.equal(first, again.batch(7))
    assert not torch.equal(first, sampler.batch(8))
    assert not torch.equal(first, sampler.batch(7, rank=1))
    other_seed = PatchSampler(folders=folders, patch_size=8, batch_size=6, seed=1)
    assert not torch.equal(first, other_seed.batch(7))


def test_augment_does_not_change_image_and_position_draws(folders: list[Path]) -> None:
    on = PatchSampler(folders=folders, patch_size=8, batch_size=6, augment=True)
    off = PatchSampler(folders=folders, patch_size=8, batch_size=6, augment=False)
    a, b = on.draws(4), off.draws(4)
    assert all(torch.equal(x, y) for x, y in zip(a[:3], b[:3], strict=True))
    assert not b[3].any()


def test_patch_pixels_equal_the_source_crop(folders: list[Path]) -> None:
    sources = [_as_float(np.asarray(Image.open(path))) for path in sorted(folders[0].glob("*.png"))]
    sources += [_as_float(np.asarray(Image.open(folders[1] / "b1.png")))]
    sampler = PatchSampler(folders=folders, patch_size=9, batch_size=8, augment=False)
    for step in range(5):
        x = sampler.batch(step)
        index, top, left, _ = sampler.draws(step)
        for b in range(8):
            i, t, s = int(index[b]), int(top[b]), int(left[b])
            assert torch.equal(x[b], sources[i][:, t : t + 9, s : s + 9])


def test_crops_stay_inside_images_of_different_sizes(tmp_path: Path) -> None:
    sizes = [(10, 10), (10, 40), (33, 12)]
    for n, (h, w) in enumerate(sizes):
        _write(tmp_path / f"{n}.png", h, w, seed=n)
    sampler = PatchSampler(folders=[tmp_path], patch_size=10, batch_size=32)
    positions: dict[int, set[tuple[int, int]]] = {0: set(), 1: set(), 2: set()}
    for step in range(20):
        index, top, left, _ = sampler.draws(step)
        for i, t, s in zip(index.tolist(), top.tolist(), left.tolist(), strict=True):
            h, w = sizes[i]
            assert 0 <= t <= h - 10 and 0 <= s <= w - 10
            positions[i].add((t, s))
        sampler.batch(step)  # slicing would fail or come back short if a crop left its image
    assert positions[0] == {(0, 0)}
    assert len({s for _, s in positions[1]}) > 20 and len({t for t, _ in positions[2]}) > 15  # spread over the range


def test_all_eight_transforms_appear_uniformly(tmp_path: Path) -> None:
    pixels = np.arange(16 * 3, dtype=np.uint8).reshape(4, 4, 3) * 5  # no symmetry: 8 distinct transforms
    Image.fromarray(pixels).save(tmp_path / "x.png")
    sampler = PatchSampler(folders=[tmp_path], patch_size=4, batch_size=100)
    variants = [v.numpy().tobytes() for v in _dihedral(_as_float(pixels))]
    assert len(set(variants)) == 8
    counts = Counter(variants.index(p.numpy().tobytes()) for step in range(8) for p in sampler.batch(step))
    assert sorted(counts) == list(range(8))  # every patch is one of the 8, and all 8 occur
    assert all(60 <= n <= 140 for n in counts.values())  # about 100 each
    identity = PatchSampler(folders=[tmp_path], patch_size=4, batch_size=3, augment=False).batch(0)
    assert all(torch.equal(p, _as_float(pixels)) for p in identity)


def test_transform_codes_match_the_documented_convention(tmp_path: Path) -> None:
    pixels = np.arange(16 * 3, dtype=np.uint8).reshape(4, 4, 3) * 5
    Image.fromarray(pixels).save(tmp_path / "x.png")
    sampler = PatchSampler(folders=[tmp_path], patch_size=4, batch_size=64)
    image = _as_float(pixels)
    x, transform = sampler.batch(0), sampler.draws(0)[3]
    for patch, k in zip(x, transform.tolist(), strict=True):
        expected = image.flip(-1) if k & 1 else image
        expected = expected.flip(-2) if k & 2 else expected
        expected = expected.transpose(-2, -1) if k & 4 else expected
        assert torch.equal(patch, expected)


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        PatchSampler(folders=[tmp_path / "missing"], patch_size=8, batch_size=2)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match=r"no training images .* in .*empty"):
        PatchSampler(folders=[tmp_path / "empty"], patch_size=8, batch_size=2)
    with pytest.raises(ValueError, match="folders is empty"):
        PatchSampler(folders=[], patch_size=8, batch_size=2)


def test_bad_arguments(folders: list[Path]) -> None:
    for patch_size in (0, -4, 8.0, True):
        with pytest.raises(ValueError, match="patch_size"):
            PatchSampler(folders=folders, patch_size=patch_size, batch_size=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        PatchSampler(folders=folders, patch_size=8, batch_size=0)
    with pytest.raises(ValueError, match="seed"):
        PatchSampler(folders=folders, patch_size=8, batch_size=2, seed=1.5)  # type: ignore[arg-type]
    sampler = PatchSampler(folders=folders, patch_size=8, batch_size=2)
    with pytest.raises(ValueError, match="step"):
        sampler.batch(-1)
    with pytest.raises(ValueError, match="rank"):
        sampler.batch(0, rank=-1)


def test_small_images_are_listed_in_the_error(tmp_path: Path) -> None:
    for i in range(12):
        _write(tmp_path / f"small{i:02d}.png", 10, 30 + i, seed=i)
    _write(tmp_path / "big.png", 40, 40)
    with pytest.raises(ValueError) as info:
        PatchSampler(folders=[tmp_path], patch_size=16, batch_size=2)
    message = str(info.value)
    assert "found 12 of 13 training images smaller than patch_size=16" in message
    assert "small00.png (30×10)" in message and "small09.png" in message and "small10.png" not in message
    assert "2 more" in message and "lower patch_size" in message.lower() and "skip_small=True" in message


def test_skip_small_drops_them_with_a_warning(tmp_path: Path) -> None:
    _write(tmp_path / "small.png", 30, 10)
    _write(tmp_path / "big.png", 20, 20)
    with pytest.warns(UserWarning, match=r"PatchSampler: dropping .*small\.png \(10×30\)"):
        sampler = PatchSampler(folders=[tmp_path], patch_size=16, batch_size=3, skip_small=True)
    assert [p.name for p in sampler.paths] == ["big.png"] and sampler.batch(0).shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="no images"):
        PatchSampler(folders=[tmp_path], patch_size=32, batch_size=3, skip_small=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_match_cpu(folders: list[Path]) -> None:
    cpu = PatchSampler(folders=folders, patch_size=8, batch_size=16, seed=5)
    gpu = PatchSampler(folders=folders, patch_size=8, batch_size=16, seed=5, device="cuda")
    assert gpu.device.type == "cuda"
    for step in (0, 1, 1000):
        x = gpu.batch(step, rank=2)
        assert x.device.type == "cuda" and torch.equal(x.cpu(), cpu.batch(step, rank=2))


def test_skip_small_with_a_note_callback_gives_one_line_and_no_warning(tmp_path: Path) -> None:
    _write(tmp_path / "small.png", 30, 10)
    _write(tmp_path / "big.png", 20, 20)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a UserWarning would fail here
        sampler = PatchSampler(folders=[tmp_path], patch_size=16, batch_size=3, skip_small=True, note=notes.append)
    assert [p.name for p in sampler.paths] == ["big.png"]
    (line,) = notes
    assert "\n" not in line and line.startswith("note: dropping 1 of 2 training images smaller than patch_size=16")
    assert "small.png (10×30)" in line and "data.skip_small" in line
