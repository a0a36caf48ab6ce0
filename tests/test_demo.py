"""The `make demo` walk-through: outputs exist, the report is honest about the model, the numbers are sane."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from PIL import Image

from blindsr.demo import MODEL_NOTE, ROUNDTRIP_LABELS, run_demo, sample_paths

SCALE = 2


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out_dir = tmp_path_factory.mktemp("demo")
    return out_dir, run_demo(out_dir=out_dir, scale=SCALE)


def test_bundled_samples_are_small_and_licensed() -> None:
    paths = sample_paths()
    assert [p.stem for p in paths] == ["astronaut", "camera", "chelsea", "coffee"]
    assert sum(p.stat().st_size for p in paths) < 600_000
    licenses = (paths[0].parent / "LICENSES.md").read_text(encoding="utf-8")
    modes = []
    for p in paths:
        assert f"`{p.name}`" in licenses
        with Image.open(p) as img:
            assert max(img.size) <= 256
            modes.append(img.mode)
    assert sorted(modes) == ["L", "RGB", "RGB", "RGB"]


def test_outputs_exist(demo_run: tuple[Path, Path]) -> None:
    out_dir, report = demo_run
    assert report == out_dir / "report.md"
    assert report.is_file()
    for path in sample_paths():
        upscaled = out_dir / "upscaled" / f"{path.stem}_x{SCALE}.png"
        with Image.open(path) as src, Image.open(upscaled) as out:
            assert out.size == (src.size[0] * SCALE, src.size[1] * SCALE)
        for label in ROUNDTRIP_LABELS:
            assert (out_dir / "roundtrip" / f"{path.stem}_{label}_lr.png").is_file()
            assert (out_dir / "roundtrip" / f"{path.stem}_{label}_compare.png").is_file()


def test_gray_sample_stays_single_channel(demo_run: tuple[Path, Path]) -> None:
    out_dir, _ = demo_run
    with Image.open(out_dir / "upscaled" / f"camera_x{SCALE}.png") as gray:
        assert gray.mode == "L"
    with Image.open(out_dir / "upscaled" / f"astronaut_x{SCALE}.png") as colour:
        assert colour.mode == "RGB"


def test_report_names_model_and_has_sane_metrics(demo_run: tuple[Path, Path]) -> None:
    _, report = demo_run
    text = report.read_text(encoding="utf-8")
    assert "bicubic" in text.lower()
    assert MODEL_NOTE in text
    assert "dmsr-grid" in text and "sr-y" in text
    rows = re.findall(
        r"^\| (\w+) \| \S+ \| \S+ \| (k[\d.]+-n\d+) \| ([^|]+) \| ([^|]+) \| sr-y \| dmsr-grid \|$", text, re.M
    )
    assert len(rows) == len(sample_paths()) * len(ROUNDTRIP_LABELS)
    for _, _, psnr, ssim in rows:
        assert math.isfinite(float(psnr)) and 15.0 < float(psnr) < 60.0
        assert 0.0 < float(ssim) <= 1.0
    means = re.findall(r"^\| (k[\d.]+-n\d+) \| ([\d.]+) \| ([\d.]+) \| sr-y \| dmsr-grid \|$", text, re.M)
    assert [label for label, _, _ in means] == list(ROUNDTRIP_LABELS)
    # more blur and noise -> lower scores
    psnrs = [float(p) for _, p, _ in means]
    assert psnrs == sorted(psnrs, reverse=True)


def test_out_dir_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "report"
    target.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file"):
        run_demo(out_dir=target, scale=SCALE)


def test_unsupported_scale_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale must be one of 2, 3, 4"):
        run_demo(out_dir=tmp_path, scale=5)
