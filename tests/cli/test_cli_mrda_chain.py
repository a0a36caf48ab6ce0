"""`blindsr train` through MRDA's four tiny stages (chained by `from_stage`), then `blindsr export` of the student."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from blindsr.cli.main import main
from blindsr.zoo import load_model

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "mrda" / "tiny"


def test_mrda_stages_train_chain_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs" / "mrda-tiny"
    for stage in ("pretrain", "meta", "teacher", "student"):
        assert main(["train", str(TINY / f"{stage}.yaml"), "--run-dir", str(runs / stage)]) == 0, stage
        assert (runs / stage / "final" / "networks.safetensors").is_file()
    log = [json.loads(line) for line in (runs / "student" / "log.jsonl").read_text().splitlines()]
    inits = [r["text"] for r in log if r["kind"] == "message" and r["text"].startswith("init:")]
    assert len(inits) == 3 and any("teacher_den <- " in m for m in inits)
    trained = [r for r in log if r["kind"] == "train"]
    assert "l1" not in trained[0] and "l1" in trained[-1]  # one KD-only warm-up step, then L1 + KD

    out = tmp_path / "student.safetensors"
    assert main(["export", str(runs / "student"), "-o", str(out), "--fp32"]) == 0
    assert "exported network 'student' (mrda_s, x2" in capsys.readouterr().out
    model = load_model(out)
    assert model.arch == "mrda_s" and model.upscale(torch.rand(1, 3, 10, 10), 2).shape == (1, 3, 20, 20)
    # the teacher stage releases MRDA_T; its oracle upscaler cannot validate from LR, so the config keeps it off
    assert main(["export", str(runs / "teacher"), "-o", str(tmp_path / "teacher.safetensors")]) == 0
    assert load_model(tmp_path / "teacher.safetensors").arch == "mrda_t"
