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


def _toy_release(tmp_path: Path, name: str, seed: int) -> Path:
    run = tmp_path / f"run-{name}"
    overrides = ["train.total_steps=2", "validation.every=0", "log.progress=false", "method.options.n_feats=4"]
    overrides += ["data.patch_size=32", "data.batch_size=2", "train.device=cpu", f"seed={seed}"]
    args = ["train", str(ROOT / "configs" / "toy" / "x2.yaml"), "--run-dir", str(run)]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0
    weights = tmp_path / f"{name}.safetensors"
    assert main(["export", str(run), "-o", str(weights)]) == 0
    return weights


def test_noise_free_cells_use_the_nf_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DMSR Table 1 scores [0.2, 0] with DMSR-nf: --nf-model scores exactly those cells, the rest are unchanged."""
    main_w, nf_w = _toy_release(tmp_path, "main", 0), _toy_release(tmp_path, "nf", 1)
    hr = tmp_path / "data" / "Set5" / "HR"
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(hr / f"{i}.png")
    base = ["eval", "-m", str(main_w), "--protocol", "dmsr-grid", "--data-root", str(tmp_path / "data"), "-q"]
    capsys.readouterr()
    assert main([*base, "--nf-model", "none", "--json", str(tmp_path / "a.json")]) == 0
    capsys.readouterr()
    assert main([*base, "--nf-model", str(nf_w), "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    plain = {r["setting"]: r for r in json.loads((tmp_path / "a.json").read_text())}
    mixed = {r["setting"]: r for r in json.loads((tmp_path / "b.json").read_text())}
    assert set(plain) == set(mixed) and len(mixed) == 7
    assert mixed["k0.2-n0"]["model"] == "nf.safetensors" and plain["k0.2-n0"]["model"] == "main.safetensors"
    assert mixed["k0.2-n0"]["psnr"] != plain["k0.2-n0"]["psnr"]
    for label, record in mixed.items():
        if label != "k0.2-n0":  # the same LR images (seeded noise) and model: identical numbers
            assert record["model"] == "main.safetensors" and record["psnr"] == plain[label]["psnr"]
    assert "| k0.2-n0 | ours (nf.safetensors) |" in out and "| k1.3-n15 | ours (main.safetensors) |" in out
    assert "paper DMSR-nf" in out
    # a bicubic -m has no noise-free variant to replace
    assert main(["eval", "--protocol", "dmsr-nf", "--data-root", str(tmp_path / "data"), "--nf-model", "x", "-q"]) == 2
