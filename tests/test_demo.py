"""The `make demo` walk-through: outputs exist, the report names its models, the numbers are sane, the trained
model beats bicubic where it must, and bicubic alone works when no model is installed."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import blindsr.demo
from blindsr.demo import (
    BICUBIC,
    ROUNDTRIP_LABELS,
    DemoModels,
    RoundTripRow,
    label_columns,
    losses_to_bicubic,
    resolve_demo_models,
    run_demo,
    sample_paths,
)

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


_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")
_LOSS = re.compile(r"^- (\w+) at (k[\d.]+-n\d+): (\S+) ([+-][\d.]+) dB vs bicubic", re.M)


def test_report_embeds_every_comparison_image(demo_run: tuple[Path, Path]) -> None:
    out_dir, report = demo_run
    links = _LINK.findall(report.read_text(encoding="utf-8"))
    assert len(links) == len(sample_paths()) * len(ROUNDTRIP_LABELS)
    for link in links:
        assert not Path(link).is_absolute() and (report.parent / link).is_file(), link
    assert sorted(report.parent / link for link in links) == sorted((out_dir / "roundtrip").glob("*_compare.png"))


def test_compare_images_have_a_labelled_header_strip(demo_run: tuple[Path, Path]) -> None:
    out_dir, _ = demo_run
    with Image.open(out_dir / "roundtrip" / f"chelsea_{ROUNDTRIP_LABELS[0]}_compare.png") as img:
        compare = np.asarray(img.convert("L"))
    with Image.open(out_dir / "roundtrip" / f"chelsea_{ROUNDTRIP_LABELS[0]}_lr.png") as lr:
        hr_h, hr_w = lr.size[1] * SCALE, lr.size[0] * SCALE
    strip = compare.shape[0] - hr_h
    assert 8 <= strip <= 30, "a header strip of about one line of text"
    assert compare.shape[1] == 4 * hr_w + 3 * 4  # LR | bicubic | model | HR, 4-pixel gaps
    header = compare[:strip]
    assert (header > 200).mean() > 0.8, "white, with text"
    for i in range(4):  # a label above every column
        assert header[:, i * (hr_w + 4) : i * (hr_w + 4) + hr_w].min() < 100


def test_label_columns_fits_long_labels() -> None:
    image = torch.rand(3, 20, 2 * 40 + 4)
    out = label_columns(image, [40, 40], ["a very long label that cannot fit", "HR"])
    assert out.shape[0] == 3 and out.shape[2] == image.shape[2] and out.shape[1] > 20
    assert torch.equal(out[:, -20:], image)
    assert float(out[:, : out.shape[1] - 20, :40].min()) < 0.5  # something of the first label is drawn
    with pytest.raises(ValueError, match="2 panels but 1 labels"):
        label_columns(image, [40, 40], ["x"])


def test_losses_to_bicubic_selects_the_cells_a_model_loses() -> None:
    def row(stem: str, label: str, model: str, psnr: float) -> RoundTripRow:
        return RoundTripRow(stem, label, model, (8, 8), (4, 4), psnr, 0.5)

    rows = [
        row("chelsea", "k0.2-n0", BICUBIC, 29.65),
        row("chelsea", "k0.2-n0", "m", 28.66),
        row("chelsea", "k2.6-n50", BICUBIC, 20.0),
        row("chelsea", "k2.6-n50", "m", 22.0),
        row("coffee", "k0.2-n0", "m", 1.0),  # no bicubic row to compare with
    ]
    (loss,) = losses_to_bicubic(rows)
    assert (loss.stem, loss.label, loss.model, round(loss.delta, 2)) == ("chelsea", "k0.2-n0", "m", -0.99)


def test_report_lists_where_the_model_loses(demo_run: tuple[Path, Path]) -> None:
    _, report = demo_run
    text = report.read_text(encoding="utf-8")
    psnr = {(stem, label, model): float(p) for stem, label, model, p, _ in _ROW.findall(text)}
    expected = {
        (stem, label, model, f"{p - psnr[(stem, label, BICUBIC)]:+.2f}")
        for (stem, label, model), p in psnr.items()
        if model != BICUBIC and p < psnr[(stem, label, BICUBIC)]
    }
    assert set(_LOSS.findall(text)) == expected
    assert "### Where the model loses to bicubic" in text
    if not expected:
        assert "Nowhere in this run" in text


def test_a_model_worse_than_bicubic_is_pointed_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from blindsr.ops.resize import bicubic_upscale

    def worse(lr: torch.Tensor, scale: int) -> torch.Tensor:  # bicubic, then brighter: lower PSNR everywhere
        return (bicubic_upscale(lr, scale) + 0.1).clamp(0.0, 1.0)

    def fake_models(model: str, scale: int, device: torch.device) -> DemoModels:
        return DemoModels("worse", "worse", worse, worse, "a synthetic model that loses")

    monkeypatch.setattr(blindsr.demo, "resolve_demo_models", fake_models)
    text = run_demo(out_dir=tmp_path, scale=SCALE).read_text(encoding="utf-8")
    losses = _LOSS.findall(text)
    assert len(losses) == len(sample_paths()) * len(ROUNDTRIP_LABELS)
    assert all(model == "worse" and float(delta) < 0 for _, _, model, delta in losses)
    assert "Nowhere in this run" not in text


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
