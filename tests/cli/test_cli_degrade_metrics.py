"""The command-line contracts: degrade, metrics, protocols, eval (run in-process through `main`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _reference import matlab_imresize as ref
from blindsr.cli.main import main


def _make_set(root: Path, name: str = "Tiny", n: int = 3, size: tuple[int, int] = (37, 42), gray: bool = True) -> Path:
    """A small benchmark set ROOT/<name>/HR with smooth colour images (and one grayscale)."""
    hr = root / name / "HR"
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.random((size[0] // 6 + 1, size[1] // 6 + 1, 3))
        img = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize((size[1], size[0]), Image.BICUBIC))
        if gray and i == n - 1:
            Image.fromarray(img[..., 0]).save(hr / f"img{i}.png")
        else:
            Image.fromarray(img).save(hr / f"img{i}.png")
    return hr


def _numpy_degrade(hr: np.ndarray, sigma: float, size: int, scale: int) -> np.ndarray:
    """Independent path: fspecial Gaussian, imfilter(..., 'replicate') by explicit taps, MATLAB imresize."""
    r = (size - 1) // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    k = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    k /= k.sum()
    h, w = hr.shape[:2]
    padded = np.pad(hr, ((r, r), (r, r), (0, 0)), mode="edge")
    blurred = np.zeros_like(hr)
    for dy in range(size):
        for dx in range(size):
            blurred += k[dy, dx] * padded[dy : dy + h, dx : dx + w]
    return ref.imresize(blurred, scale=1 / scale)


def test_degrade_npy_matches_independent_implementation(tmp_path: Path) -> None:
    hr_dir = _make_set(tmp_path, gray=True)
    out = tmp_path / "lr"
    assert (
        main(["degrade", str(hr_dir), "-o", str(out), "--scale", "4", "--kernel-sigma", "1.3", "--format", "npy", "-q"])
        == 0
    )
    for path in sorted(hr_dir.glob("*.png")):
        img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
        img = img[: img.shape[0] // 4 * 4, : img.shape[1] // 4 * 4]
        expected = _numpy_degrade(img, 1.3, 15, 4)
        got = np.load(out / f"{path.stem}.npy")
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-5
    meta = json.loads((out / "degradation.json").read_text())
    assert meta["kernel"] == {"type": "iso", "sigma": 1.3, "size": 15} and len(meta["images"]) == 3


@pytest.mark.slow
def test_done_when_set5_degrade_matches_matlab_algorithm(shared_data: Path, tmp_path: Path) -> None:
    """Issue: `blindsr degrade` on Set5 (x4, sigma 1.3, 15x15, replicate, no noise, npy) within 1e-4."""
    out = tmp_path / "lr"
    assert (
        main(
            [
                "degrade",
                str(shared_data / "Set5" / "HR"),
                "-o",
                str(out),
                "--scale",
                "4",
                "--kernel-sigma",
                "1.3",
                "--kernel-size",
                "15",
                "--padding",
                "replicate",
                "--format",
                "npy",
                "-q",
            ]
        )
        == 0
    )
    worst = 0.0
    for path in sorted((shared_data / "Set5" / "HR").glob("*.png")):
        img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
        img = img[: img.shape[0] // 4 * 4, : img.shape[1] // 4 * 4]
        worst = max(worst, float(np.abs(np.load(out / f"{path.stem}.npy") - _numpy_degrade(img, 1.3, 15, 4)).max()))
    assert worst < 1e-4


def test_degrade_noise_png_aniso_and_seeds(tmp_path: Path) -> None:
    hr_dir = _make_set(tmp_path)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    args = [
        "degrade",
        str(hr_dir),
        "--scale",
        "3",
        "--aniso",
        "3.5",
        "1.5",
        "20",
        "--noise",
        "10",
        "--padding",
        "reflect",
        "-q",
    ]
    assert main([*args, "-o", str(a)]) == 0
    assert main([*args, "-o", str(b)]) == 0
    assert main([*args, "-o", str(c), "--seed", "1"]) == 0
    pa = np.asarray(Image.open(a / "img0.png"))
    assert pa.shape == (12, 14, 3)
    assert np.array_equal(pa, np.asarray(Image.open(b / "img0.png")))
    assert not np.array_equal(pa, np.asarray(Image.open(c / "img0.png")))
    assert json.loads((a / "degradation.json").read_text())["kernel"]["size"] == 21


def test_degrade_preset_writes_cells_and_index(tmp_path: Path) -> None:
    hr_dir = _make_set(tmp_path, size=(48, 48))
    out = tmp_path / "cells"
    assert main(["degrade", str(hr_dir), "-o", str(out), "--preset", "dmsr-grid", "--scale", "4", "-q"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert index["preset"] == "dmsr-grid" and index["dataset"] == "Tiny" and index["format"] == "npy"
    assert len(index["cells"]) == 7
    cell = index["cells"][4]
    assert cell["label"] == "k1.3-n50" and cell["kernel_sigma"] == 1.3 and cell["noise"] == 50
    lr = np.load(out / cell["folder"] / "img0.npy")
    assert lr.shape == (12, 12, 3) and (lr.min() < 0 or lr.max() > 1)
    # the same cell through the library API gives the same pixels (one seeding rule everywhere)
    from blindsr.data.images import read_image
    from blindsr.degradations.presets import get_eval_preset

    hr = read_image(hr_dir / "img0.png")
    again = get_eval_preset("dmsr-grid").degrade(hr, scale=4, setting_index=4, dataset="Tiny", stem="img0").lr
    assert np.abs(again[0].permute(1, 2, 0).numpy() - lr).max() < 1e-6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "4"], "give a kernel"),
        (["--kernel-sigma", "1.0"], "--scale is required"),
        (["--scale", "4", "--kernel-sigma", "1.0", "--kernel-size", "14"], "odd"),
        (["--preset", "gausian8"], "did you mean"),
        (["--preset", "dmsr-grid", "--noise", "5"], "--preset fixes"),
    ],
)
def test_degrade_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    hr_dir = _make_set(tmp_path)
    assert main(["degrade", str(hr_dir), "-o", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_degrade_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["degrade", str(tmp_path / "nope"), "-o", str(tmp_path / "o"), "--scale", "2", "--kernel-sigma", "1"]) == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_metrics_pairs_by_stem_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from blindsr.data.images import read_image, write_image
    from blindsr.metrics import psnr_and_ssim
    from blindsr.ops.crop import modcrop
    from blindsr.ops.resize import bicubic_downscale, bicubic_upscale

    hr_dir = _make_set(tmp_path, size=(50, 46))
    sr_dir = tmp_path / "sr"
    expected = {}
    for path in sorted(hr_dir.glob("*.png")):
        hr = modcrop(read_image(path), 4).unsqueeze(0)
        sr = bicubic_upscale(bicubic_downscale(hr, 4), 4)
        write_image(sr_dir / f"{path.stem}_x4.png", sr[0])
        p, s = psnr_and_ssim(read_image(sr_dir / f"{path.stem}_x4.png"), hr, scale=4)
        expected[path.stem] = (float(p), float(s))
    js = tmp_path / "m.json"
    assert main(["metrics", str(sr_dir), str(hr_dir), "--scale", "4", "--suffix", "_x4", "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert set(data) >= {"mean", "images"} and set(data["images"]) == set(expected)
    for stem, (p, s) in expected.items():
        assert data["images"][stem] == {"psnr": pytest.approx(p, abs=1e-9), "ssim": pytest.approx(s, abs=1e-9)}
    assert data["mean"]["psnr"] == pytest.approx(np.mean([p for p, _ in expected.values()]))
    assert "mean over 3 images (protocol sr-y, x4)" in capsys.readouterr().out


def test_metrics_reports_size_mismatch_and_no_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from blindsr.data.images import write_image

    hr_dir = _make_set(tmp_path, size=(48, 48))
    sr_dir = tmp_path / "sr"
    write_image(sr_dir / "img0.png", torch.rand(3, 40, 40))
    write_image(sr_dir / "img1.png", torch.rand(3, 48, 48))
    assert main(["metrics", str(sr_dir), str(hr_dir), "--scale", "4"]) == 1
    assert "SR is 40x40" in capsys.readouterr().err
    assert main(["metrics", str(sr_dir), str(hr_dir), "--scale", "4", "--suffix", "_x9"]) == 2
    assert "no SR file" in capsys.readouterr().err


def test_protocols_lists_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocols"]) == 0
    out = capsys.readouterr().out
    for name in ("dmsr-grid", "gaussian8", "mrda-aniso", "dasr-iso", "dasr-aniso", "sr-y", "mrda-aniso-noise"):
        assert name in out
    assert main(["protocols", "gaussian8-x4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["eval_presets"][0]["grid"]) == ["x4"] and len(data["eval_presets"][0]["grid"]["x4"]) == 8


def test_eval_bicubic_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_set(tmp_path, name="Set5", size=(48, 48))
    js = tmp_path / "e.json"
    assert (
        main(
            [
                "eval",
                "-m",
                "bicubic",
                "--protocol",
                "gaussian8-x4",
                "--data-root",
                str(tmp_path),
                "--json",
                str(js),
                "-q",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "paper Bicubic" in out and "Δ vs Bicubic" in out and "| mean |" in out
    records = json.loads(js.read_text())
    assert len(records) == 9 and records[-1]["setting"] == "mean"
    assert {"dataset", "scale", "kernel_sigma", "noise", "psnr", "ssim"} <= set(records[0])


def test_help_is_useful(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("degrade", "metrics", "protocols", "eval", "demo", "lpips-convert"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert len(capsys.readouterr().out) > 300


def test_metrics_with_lpips_from_a_weights_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--lpips alex` loads weights through the normal resolution (here: BLINDSR_LPIPS_WEIGHTS) and reports them."""
    from safetensors.torch import save_file

    from blindsr.data.images import write_image
    from blindsr.metrics.lpips import LPIPS

    weights = tmp_path / "lpips_alex.safetensors"
    save_file({k: v.contiguous() for k, v in LPIPS(net="alex", pretrained=False).state_dict().items()}, weights)
    monkeypatch.setenv("BLINDSR_LPIPS_WEIGHTS", str(weights))
    hr_dir = _make_set(tmp_path, size=(64, 64), gray=False)
    sr_dir = tmp_path / "sr"
    for path in sorted(hr_dir.glob("*.png")):
        write_image(sr_dir / path.name, torch.rand(3, 64, 64))
    js = tmp_path / "m.json"
    assert main(["metrics", str(sr_dir), str(hr_dir), "--scale", "2", "--lpips", "alex", "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert all(r["lpips"] > 0 for r in data["images"].values()) and data["mean"]["lpips"] > 0
    assert "LPIPS-alex" in capsys.readouterr().out


def test_metrics_lpips_without_weights_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BLINDSR_LPIPS_WEIGHTS", raising=False)
    monkeypatch.setenv("BLINDSR_HOME", str(tmp_path / "empty-home"))
    hr_dir = _make_set(tmp_path, size=(48, 48))
    assert main(["metrics", str(hr_dir), str(hr_dir), "--scale", "2", "--lpips", "vgg"]) == 2
    err = capsys.readouterr().err
    assert "lpips-convert" in err and "Traceback" not in err


def test_eval_max_images(tmp_path: Path) -> None:
    _make_set(tmp_path, name="Set5", n=3, size=(48, 48))
    js = tmp_path / "e.json"
    assert (
        main(
            [
                "eval",
                "--protocol",
                "dmsr-nf-x2",
                "--data-root",
                str(tmp_path),
                "--max-images",
                "2",
                "--json",
                str(js),
                "-q",
            ]
        )
        == 0
    )
    assert [r["n_images"] for r in json.loads(js.read_text())] == [2]
