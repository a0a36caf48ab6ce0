"""Tests for blindsr.data.hr_patches: shapes, augmentation group, determinism, caching, bad inputs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from blindsr.data.hr_patches import HRPatchDataset


def _write(path: Path, height: int, width: int, *, seed: int = 0, gray: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (height, width) if gray else (height, width, 3)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)).save(path)


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


@pytest.mark.parametrize("cache", [True, False])
def test_shapes_dtype_range_and_length(folders: list[Path], cache: bool) -> None:
    data = HRPatchDataset(folders=folders, patch_size=12, repeat=3, cache=cache)
    assert data.num_images == 3 and len(data) == 9 and data.patch_size == 12
    assert [p.name for p in data.paths] == ["a1.png", "a2.png", "b1.png"]
    for index in (0, 1, 2, 8, -1):
        patch = data[index]
        assert patch.shape == (3, 12, 12) and patch.dtype == torch.float32 and patch.is_contiguous()
        assert patch.min() >= 0 and patch.max() <= 1
        assert torch.equal(torch.round(patch * 255) / 255, patch)  # on the 8-bit grid
    gray = data[1]
    assert torch.equal(gray[0], gray[2])  # the gray image came back as RGB
    with pytest.raises(IndexError):
        data[9]
    assert "num_images=3" in repr(data)


def test_single_folder_path_is_accepted(folders: list[Path]) -> None:
    assert HRPatchDataset(folders=str(folders[0]), patch_size=8).num_images == 2


def test_patch_is_a_crop_of_the_image(tmp_path: Path) -> None:
    _write(tmp_path / "x.png", 9, 11)
    image = torch.from_numpy(np.asarray(Image.open(tmp_path / "x.png")).copy()).permute(2, 0, 1).float() / 255
    data = HRPatchDataset(folders=[tmp_path], patch_size=5, augment=False, generator=torch.Generator().manual_seed(0))
    windows = {image[:, t : t + 5, s : s + 5].numpy().tobytes() for t in range(5) for s in range(7)}
    seen = {data[0].numpy().tobytes() for _ in range(60)}
    assert seen <= windows and len(seen) > 10  # random positions, each a real window


def test_augmentation_draws_all_eight_transforms_uniformly(tmp_path: Path) -> None:
    pixels = np.arange(16 * 3, dtype=np.uint8).reshape(4, 4, 3) * 5  # no symmetry: 8 distinct transforms
    Image.fromarray(pixels).save(tmp_path / "x.png")
    data = HRPatchDataset(folders=[tmp_path], patch_size=4, generator=torch.Generator().manual_seed(0))
    reference = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    variants = [v.numpy().tobytes() for v in _dihedral(reference)]
    assert len(set(variants)) == 8
    counts = Counter(variants.index(data[0].numpy().tobytes()) for _ in range(800))
    assert sorted(counts) == list(range(8))  # every patch is one of the 8, and all 8 occur
    assert all(60 <= n <= 140 for n in counts.values())  # about 100 each


def test_no_augmentation_keeps_orientation(tmp_path: Path) -> None:
    pixels = np.arange(16 * 3, dtype=np.uint8).reshape(4, 4, 3)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    data = HRPatchDataset(folders=[tmp_path], patch_size=4, augment=False)
    assert torch.equal(data[0], torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)


def test_seeded_generator_is_deterministic_and_cache_agnostic(folders: list[Path]) -> None:
    def draw(seed: int, cache: bool) -> torch.Tensor:
        data = HRPatchDataset(folders=folders, patch_size=8, cache=cache, generator=torch.Generator().manual_seed(seed))
        return torch.stack([data[i] for i in range(len(data))])

    assert torch.equal(draw(0, cache=True), draw(0, cache=True))
    assert torch.equal(draw(0, cache=True), draw(0, cache=False))
    assert not torch.equal(draw(0, cache=True), draw(1, cache=True))


def test_global_rng_is_used_without_generator(folders: list[Path]) -> None:
    data = HRPatchDataset(folders=folders, patch_size=8)
    torch.manual_seed(5)
    first = torch.stack([data[i] for i in range(3)])
    torch.manual_seed(5)
    assert torch.equal(first, torch.stack([data[i] for i in range(3)]))


def test_dataloader_workers_draw_distinct_streams(tmp_path: Path) -> None:
    _write(tmp_path / "x.png", 40, 40)
    data = HRPatchDataset(folders=[tmp_path], patch_size=8, repeat=4, generator=torch.Generator().manual_seed(0))

    def load(seed: int) -> torch.Tensor:
        loader = DataLoader(data, batch_size=2, num_workers=2, generator=torch.Generator().manual_seed(seed))
        return torch.cat(list(loader))

    first = load(0)
    assert not torch.equal(first[:2], first[2:])  # worker 0 and worker 1 do not replay the same crops
    assert torch.equal(first, load(0)) and not torch.equal(first, load(1))


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        HRPatchDataset(folders=[tmp_path / "missing"], patch_size=8)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match=r"no training images .* in .*empty"):
        HRPatchDataset(folders=[tmp_path / "empty"], patch_size=8)
    with pytest.raises(ValueError, match="folders is empty"):
        HRPatchDataset(folders=[], patch_size=8)


def test_bad_arguments(folders: list[Path]) -> None:
    for patch_size in (0, -4, 8.0):
        with pytest.raises(ValueError, match="patch_size"):
            HRPatchDataset(folders=folders, patch_size=patch_size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat"):
        HRPatchDataset(folders=folders, patch_size=8, repeat=0)


def test_small_images_are_listed_in_the_error(tmp_path: Path) -> None:
    for i in range(12):
        _write(tmp_path / f"small{i:02d}.png", 10, 30 + i, seed=i)
    _write(tmp_path / "big.png", 40, 40)
    with pytest.raises(ValueError) as info:
        HRPatchDataset(folders=[tmp_path], patch_size=16)
    message = str(info.value)
    assert "found 12 of 13 training images smaller than patch_size=16" in message
    assert "small00.png (30×10)" in message and "small09.png" in message and "small10.png" not in message
    assert "2 more" in message and "lower patch_size" in message.lower() and "skip_small=True" in message


def test_skip_small_drops_them_with_a_warning(tmp_path: Path) -> None:
    _write(tmp_path / "small.png", 30, 10)
    _write(tmp_path / "big.png", 20, 20)
    with pytest.warns(UserWarning, match=r"small\.png \(10×30\)"):
        data = HRPatchDataset(folders=[tmp_path], patch_size=16, skip_small=True)
    assert [p.name for p in data.paths] == ["big.png"] and data[0].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="no images"):
        HRPatchDataset(folders=[tmp_path], patch_size=32, skip_small=True)
