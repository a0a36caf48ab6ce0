"""The `make demo` walk-through: outputs exist, the report names its models, the numbers are sane, the trained
model beats bicubic where it must, and bicubic alone works when no model is installed."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from blindsr.demo import BICUBIC, ROUNDTRIP_LABELS, resolve_demo_models, run_demo, sample_paths

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
        with Image.open(out_dir / "upscaled" / f"{path.stem}_x{SCALE}_bicubic.png") as bic:
            assert bic.size == (src.size[0] * SCALE, src.size[1] * SCALE)
        for label in ROUNDTRIP_LABELS:
            assert (out_dir / "roundtrip" / f"{path.stem}_{label}_lr.png").is_file()
            assert (out_dir / "roundtrip" / f"{path.stem}_{label}_compare.png").is_file()


def test_gray_sample_stays_single_channel(demo_run: tuple[Path, Path]) -> None:
    out_dir, _ = demo_run
    with Image.open(out_dir / "upscaled" / f"camera_x{SCALE}.png") as gray:
        assert gray.mode == "L"
    with Image.open(out_dir / "upscaled" / f"astronaut_x{SCALE}.png") as colour:
        assert colour.mode == "RGB"


_ROW = re.compile(
    r"^\| (\w+) \| \S+ \| \S+ \| (k[\d.]+-n\d+) \| (\S+) \| ([^|]+) \| ([^|]+) \| sr-y \| dmsr-grid \|$", re.M
)
_MEAN = re.compile(r"^\| (k[\d.]+-n\d+) \| (\S+) \| ([\d.]+) \| ([\d.]+) \| \S+ \| sr-y \| dmsr-grid \|$", re.M)


def _check_metrics(text: str, n_models: int) -> dict[tuple[str, str], float]:
    rows = _ROW.findall(text)
    assert len(rows) == len(sample_paths()) * len(ROUNDTRIP_LABELS) * n_models
    for _, _, _, psnr, ssim in rows:
        assert math.isfinite(float(psnr)) and 15.0 < float(psnr) < 60.0
        assert 0.0 < float(ssim) <= 1.0
    means = {(label, model): float(p) for label, model, p, _ in _MEAN.findall(text)}
    assert len(means) == len(ROUNDTRIP_LABELS) * n_models
    # more blur and noise -> lower scores, for every model
    for m in {m for _, m in means}:
        psnrs = [p for (_, model), p in means.items() if model == m]
        assert psnrs == sorted(psnrs, reverse=True)
    return means


def test_report_names_models_and_has_sane_metrics(demo_run: tuple[Path, Path]) -> None:
    _, report = demo_run
    text = report.read_text(encoding="utf-8")
    assert f"`dmsr-x{SCALE}.lite` (blurred / noisy inputs)" in text
    assert f"`dmsr-x{SCALE}.nf-lite` (clean inputs)" in text
    assert "dmsr-grid" in text and "sr-y" in text
    means = _check_metrics(text, 2)
    # the noise-free setting goes to the noise-free variant, the noisy ones to the default model
    assert (ROUNDTRIP_LABELS[0], f"dmsr-x{SCALE}.nf-lite") in means
    assert (ROUNDTRIP_LABELS[-1], f"dmsr-x{SCALE}.lite") in means
    # heavy blur + noise (k2.6, n50): the trained model is far above bicubic (about +4 dB when measured)
    assert means[(ROUNDTRIP_LABELS[-1], f"dmsr-x{SCALE}.lite")] > means[(ROUNDTRIP_LABELS[-1], BICUBIC)] + 2.0


def test_bicubic_only(tmp_path: Path) -> None:
    report = run_demo(out_dir=tmp_path, scale=SCALE, model="bicubic")
    text = report.read_text(encoding="utf-8")
    assert "- Model: bicubic (MATLAB-exact" in text
    _check_metrics(text, 1)
    assert not list((tmp_path / "upscaled").glob("*_bicubic.png"))


def test_auto_falls_back_to_bicubic_when_the_model_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import blindsr.zoo

    def missing(name: str, **_: object) -> None:
        raise FileNotFoundError(f"no weights for {name}")

    monkeypatch.setattr(blindsr.zoo, "load_model", missing)
    models = resolve_demo_models("auto", 4, torch.device("cpu"))
    assert not models.learned and models.name == BICUBIC
    assert "dmsr-x4 is not installed" in models.note
    with pytest.raises(FileNotFoundError):  # a model named explicitly must load
        resolve_demo_models("dmsr-x4", 4, torch.device("cpu"))


def test_model_of_another_scale_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="upscales x4, but the demo runs x2"):
        run_demo(out_dir=tmp_path, scale=2, model="dmsr-x4")


def test_out_dir_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "report"
    target.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file"):
        run_demo(out_dir=target, scale=SCALE)


def test_unsupported_scale_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale must be one of 2, 3, 4"):
        run_demo(out_dir=tmp_path, scale=5)
