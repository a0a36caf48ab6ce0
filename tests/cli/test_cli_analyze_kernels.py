"""`blindsr analyze kernels` on a tiny random DMSR network and a fake Set5 in tmp_path.

A test that gets past the command's matplotlib check needs matplotlib and is skipped without it; what the command
computes is tested without matplotlib in tests/analysis."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from blindsr.archs import constructor_kwargs
from blindsr.cli.main import main
from blindsr.data.images import write_image
from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.mrda import MRDAStudent
from blindsr.zoo import save_release

DMSR: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_groups": 1, "n_blocks": 1, "extractor_channels": 8}
STUDENT: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_blocks": 2, "idr_dim": 16, "den_channels": 4}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A tiny DMSR, a tiny MRDA student and a Set5 of three random 48x48 HR images."""
    torch.manual_seed(0)
    out = {"dmsr": tmp_path / "dmsr.safetensors", "student": tmp_path / "student.safetensors"}
    save_release(DMSRNet(**DMSR), out["dmsr"], arch="dmsr", arch_kwargs=DMSR, scale=2, half=False)
    student = MRDAStudent(**constructor_kwargs("mrda_s", STUDENT))
    save_release(student, out["student"], arch="mrda_s", arch_kwargs=STUDENT, scale=2, half=False)
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        write_image(tmp_path / "data" / "Set5" / "HR" / f"im{i}.png", torch.rand(3, 48, 48, generator=g))
    out["data"] = tmp_path / "data"
    return out


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("blindsr analyze: error:") and "\n" not in err, err
    for w in words:
        assert w in err, err


def test_kernels(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots" / "kernels.png"
    argv = ["analyze", "kernels", "-m", str(files["dmsr"]), "--data-root", str(files["data"]), "--dataset", "set5"]
    argv += ["--widths", "0.8", "1.3", "2.6", "--noise-levels", "0", "15", "--scale", "2", "-q", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "model: dmsr.safetensors (dmsr, x2)" in text
    assert "on Set5 x2, 3 images x 6 settings" in text
    assert "correlation of true and estimated widths r = " in text and "mean |width error|" in text
    assert "σn 0" in text and "σn 15" in text

    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 500
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert len(rows) == 3 * 3 * 2
    assert list(rows[0]) == [
        "image",
        "sigma_k",
        "sigma_n",
        "true_width",
        "est_width",
        "width_error",
        "kernel_l2",
        "est_noise",
    ]
    assert [(r["image"], r["sigma_n"], r["sigma_k"]) for r in rows[:4]] == [
        ("im0", "0", "0.8"),
        ("im0", "0", "1.3"),
        ("im0", "0", "2.6"),
        ("im0", "15", "0.8"),
    ]
    assert float(rows[1]["true_width"]) == pytest.approx(1.3, abs=0.01)

    record = json.loads(out.with_suffix(".json").read_text())
    assert record["model"] == "dmsr.safetensors" and record["dataset"] == "Set5" and record["scale"] == 2
    assert record["widths"] == [0.8, 1.3, 2.6] and record["noise_levels"] == [0.0, 15.0]
    assert record["n_images"] == 3 and record["n_records"] == 18 and len(record["settings"]) == 6
    assert record["correlation"] is None or -1 <= record["correlation"] <= 1
    widths = [float(r["est_width"]) for r in rows if r["sigma_k"] == "2.6" and r["sigma_n"] == "15"]
    cell = next(s for s in record["settings"] if s["sigma_k"] == 2.6 and s["sigma_n"] == 15)
    assert cell["n_images"] == 3 and cell["est_width_mean"] == pytest.approx(sum(widths) / 3, abs=1e-5)


def test_kernels_defaults_and_max_images(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "k.png"
    argv = ["analyze", "kernels", "-m", str(files["dmsr"]), "--data-root", str(files["data"])]
    assert main([*argv, "--max-images", "1", "-q", "-o", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["widths"] == [0.2, 0.8, 1.3, 2.0, 2.6, 3.0] and record["noise_levels"] == [0.0, 15.0, 50.0]
    assert record["n_records"] == 18 and record["protocol"] == "dmsr-grid"


def test_kernels_argument_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "analyze",
        "kernels",
        "--data-root",
        str(files["data"]),
        "--dataset",
        "Set5",
        "-q",
        "-m",
        str(files["dmsr"]),
    ]
    assert main([*base, "-o", str(tmp_path / "d.jpg")]) == 2
    _one_line_error(capsys, ".png")
    (tmp_path / "e.json").write_text("{}")
    assert main([*base, "-o", str(tmp_path / "e.png")]) == 2
    _one_line_error(capsys, "e.json exists", "--overwrite")


def test_kernels_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    base = ["analyze", "kernels", "--data-root", str(files["data"]), "--dataset", "Set5", "-q"]
    assert main([*base, "-m", str(files["student"]), "-o", str(tmp_path / "a.png")]) == 2
    _one_line_error(capsys, "student.safetensors", "MRDA student", "kernel")
    assert not (tmp_path / "a.png").exists()
    assert main([*base, "-m", str(files["dmsr"]), "--scale", "4", "-o", str(tmp_path / "b.png")]) == 2
    _one_line_error(capsys, "x2", "--scale 4")
    assert main([*base, "-m", str(files["dmsr"]), "--widths", "1", "1", "-o", str(tmp_path / "c.png")]) == 2
    _one_line_error(capsys, "duplicate")
    assert main([*base, "-m", str(files["dmsr"]), "--dataset", "B100", "-o", str(tmp_path / "e.png")]) == 2
    _one_line_error(capsys, "B100")


def test_kernels_overwrite(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "k.png"
    argv = ["analyze", "kernels", "-m", str(files["dmsr"]), "--data-root", str(files["data"]), "--dataset", "Set5"]
    argv += ["--widths", "1", "--noise-levels", "0", "--max-images", "1", "-q", "-o", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    _one_line_error(capsys, "k.png exists", "--overwrite")
    assert main([*argv, "--overwrite"]) == 0
    assert "wrote" in capsys.readouterr().out


def test_kernels_without_matplotlib(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    argv = ["analyze", "kernels", "-m", str(files["dmsr"]), "--data-root", str(files["data"])]
    assert main([*argv, "-o", str(tmp_path / "x.png")]) == 2
    _one_line_error(capsys, "pip install -e '.[analysis]'")
