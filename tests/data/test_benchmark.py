"""Tests for blindsr.data.benchmark: discovery, name matching, modcrop, errors, and the staged real sets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from blindsr.data.benchmark import BenchmarkImage, BenchmarkSet, find_benchmark_sets
from blindsr.data.images import read_image, write_image


def _write(path: Path, height: int, width: int, *, gray: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(height * 1000 + width)
    shape = (height, width) if gray else (height, width, 3)
    Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A miniature benchmark root laid out like the staged data."""
    _write(tmp_path / "Set5" / "HR" / "baby.png", 13, 10)
    _write(tmp_path / "Set5" / "HR" / "bird.png", 8, 8)
    _write(tmp_path / "Set14" / "HR" / "comic.png", 361, 250, gray=True)
    _write(tmp_path / "Set14" / "HR" / "zebra.jpg", 11, 9)
    _write(tmp_path / "Urban100" / "img001.jpg", 9, 12)  # images directly in the set folder
    _write(tmp_path / "RealSRSet" / "LR" / "chip.png", 6, 6)  # no ground truth
    _write(tmp_path / "train" / "T91" / "t1.png", 6, 6)  # not a benchmark set
    (tmp_path / ".cache").mkdir()
    return tmp_path


def test_find_benchmark_sets(root: Path) -> None:
    assert find_benchmark_sets(root) == ["Set14", "Set5", "Urban100"]
    with pytest.raises(FileNotFoundError):
        find_benchmark_sets(root / "nowhere")


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_images_are_modcropped_rgb_float(root: Path, scale: int) -> None:
    bench = BenchmarkSet(root=root, name="Set5", scale=scale)
    assert len(bench) == 2 and bench.names == ("baby", "bird") and bench.scale == scale
    baby = bench[0]
    assert isinstance(baby, BenchmarkImage) and baby.name == "baby"
    assert baby.path == root / "Set5" / "HR" / "baby.png"
    assert baby.hr.shape == (3, 13 - 13 % scale, 10 - 10 % scale)
    assert baby.hr.dtype == torch.float32 and baby.hr.is_contiguous()
    full = read_image(baby.path)
    assert torch.equal(baby.hr, full[:, : baby.hr.shape[1], : baby.hr.shape[2]])  # top-left crop


def test_gray_becomes_rgb_and_odd_sizes_crop(root: Path) -> None:
    comic = BenchmarkSet(root=root, name="Set14", scale=4)["comic"]
    assert comic.hr.shape == (3, 360, 248)
    assert torch.equal(comic.hr[0], comic.hr[1]) and torch.equal(comic.hr[1], comic.hr[2])


def test_name_matching_is_case_insensitive_and_canonical(root: Path) -> None:
    for spelled in ("set5", "SET5", "Set5"):
        bench = BenchmarkSet(root=root, name=spelled, scale=2)
        assert bench.dataset_name == "Set5" and bench.folder == root / "Set5" / "HR"
    assert BenchmarkSet(root=root, name="set14", scale=2).names == ("comic", "zebra")


def test_set_folder_without_hr_subfolder(root: Path) -> None:
    bench = BenchmarkSet(root=root, name="urban100", scale=4)
    assert bench.dataset_name == "Urban100" and bench.folder == root / "Urban100"
    assert bench[0].hr.shape == (3, 8, 12)


def test_root_pointing_at_the_set(root: Path) -> None:
    for where in (root / "Set5", root / "Set5" / "HR"):
        bench = BenchmarkSet(root=where, name=None, scale=4)
        assert bench.dataset_name == "Set5" and bench.folder == root / "Set5" / "HR" and len(bench) == 2
    assert BenchmarkSet(root=root / "Set5", name="set5", scale=4).dataset_name == "Set5"
    assert BenchmarkSet(root=root / "Urban100", scale=2).dataset_name == "Urban100"


def test_iteration_indexing_and_lazy_loading(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import blindsr.data.benchmark as benchmark_module

    calls: list[Path] = []
    real_read = benchmark_module.read_image
    monkeypatch.setattr(benchmark_module, "read_image", lambda path: calls.append(path) or real_read(path))
    bench = BenchmarkSet(root=root, name="Set5", scale=2)
    assert calls == []  # nothing decoded at construction
    assert [image.name for image in bench] == ["baby", "bird"]
    assert bench[-1].name == "bird" and bench["bird"].path.name == "bird.png"
    assert len(calls) == 4
    with pytest.raises(IndexError):
        bench[2]
    with pytest.raises(KeyError, match="did you mean 'bird'"):
        bench["birds"]
    assert "Set5" in repr(bench)


def test_missing_set_lists_available_sets(root: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        BenchmarkSet(root=root, name="Set15", scale=4)
    message = str(info.value)
    assert str(root / "Set15") in message and "Set14, Set5, Urban100" in message
    with pytest.raises(FileNotFoundError, match="benchmark root not found"):
        BenchmarkSet(root=root / "nowhere", name="Set5", scale=4)
    with pytest.raises(FileNotFoundError, match="no sets found"):
        BenchmarkSet(root=root / "RealSRSet", name="Set5", scale=4)


def test_set_without_ground_truth_or_images(root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ground truth"):
        BenchmarkSet(root=root, name="RealSRSet", scale=4)
    (root / "Empty" / "HR").mkdir(parents=True)
    (root / "Empty" / "HR" / "readme.txt").write_text("nothing here")
    with pytest.raises(FileNotFoundError, match="no images"):
        BenchmarkSet(root=root, name="Empty", scale=4)
    (root / "Bare").mkdir()
    with pytest.raises(FileNotFoundError, match="no HR/ folder"):
        BenchmarkSet(root=root, name="Bare", scale=4)


def test_duplicate_stems_are_rejected(root: Path) -> None:
    _write(root / "Set5" / "HR" / "baby.jpg", 8, 8)
    with pytest.raises(ValueError, match=r"baby\.jpg and baby\.png"):
        BenchmarkSet(root=root, name="Set5", scale=4)


def test_ambiguous_case_insensitive_name(root: Path) -> None:
    if (root / "SET5").exists():
        pytest.skip("case-insensitive file system: Set5 and SET5 are one folder")
    _write(root / "SET5" / "HR" / "x.png", 4, 4)
    assert BenchmarkSet(root=root, name="SET5", scale=2).names == ("x",)  # exact spelling wins
    with pytest.raises(ValueError, match="ambiguous"):
        BenchmarkSet(root=root, name="set5", scale=2)


def test_bad_scale_and_tiny_image(root: Path) -> None:
    for scale in (0, -2, 2.0, True):
        with pytest.raises(ValueError, match="scale"):
            BenchmarkSet(root=root, name="Set5", scale=scale)  # type: ignore[arg-type]
    write_image(root / "Tiny" / "HR" / "dot.png", torch.rand(3, 2, 2))
    with pytest.raises(ValueError, match="smaller than the scale"):
        BenchmarkSet(root=root, name="Tiny", scale=3)[0]


def _shared_data() -> Path:
    env = os.environ.get("BLINDSR_DATA") or os.environ.get("BLINDSR_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.skipif(not (_shared_data() / "Set14" / "HR").is_dir(), reason="staged benchmark data not available")
def test_staged_set14() -> None:
    bench = BenchmarkSet(root=_shared_data(), name="set14", scale=4)
    assert bench.dataset_name == "Set14" and len(bench) == 14
    assert "Set14" in find_benchmark_sets(_shared_data())
    bridge = bench["bridge"]  # single-channel "L" PNG, 512×512
    assert bridge.hr.shape == (3, 512, 512) and torch.equal(bridge.hr[0], bridge.hr[2])
    assert bench["comic"].hr.shape == (3, 360, 248)  # 250×361 (W×H) cropped to multiples of 4
