"""`blindsr eval -m FILE`: a trained, exported model next to bicubic in the paper-style table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blindsr.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_eval_an_exported_model_with_a_bicubic_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(ROOT / "configs" / "toy" / "x2.yaml"),
                "--set",
                "train.total_steps=2",
                "--set",
                "validation.every=0",
                "--set",
                "log.progress=false",
                "--set",
                "method.options.n_feats=4",
                "--set",
                "data.patch_size=32",
                "--set",
                "data.batch_size=2",
                "--set",
                "train.device=cpu",
                "--run-dir",
                str(run),
            ]
        )
        == 0
    )
    weights = tmp_path / "toy.safetensors"
    assert main(["export", str(run), "-o", str(weights)]) == 0
    hr = tmp_path / "data" / "Set5" / "HR"
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(hr / f"{i}.png")
    capsys.readouterr()
    js = tmp_path / "e.json"
    assert (
        main(
            [
                "eval",
                "-m",
                str(weights),
                "--protocol",
                "dmsr-grid",
                "--data-root",
                str(tmp_path / "data"),
                "--json",
                str(js),
                "-q",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| bicubic |" in out and "paper DMSR" in out and "Set5 x2" in out and "Set5 x4" not in out
    records = json.loads(js.read_text())
    assert len(records) == 7 and all(r["scale"] == 2 and r["model"] == "toy.safetensors" for r in records)
    assert {"dataset", "scale", "kernel_sigma", "noise", "psnr", "ssim"} <= set(records[0])
    # asking for a scale the model does not have is a clear error
    assert (
        main(
            [
                "eval",
                "-m",
                str(weights),
                "--protocol",
                "dmsr-grid",
                "--data-root",
                str(tmp_path / "data"),
                "--scales",
                "4",
                "-q",
            ]
        )
        == 2
    )
    assert "upscales x2" in capsys.readouterr().err
