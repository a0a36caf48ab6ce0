"""`blindsr train`: the toy config from the CLI (logs, validation, best checkpoint, resume) and under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from blindsr.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "configs" / "toy" / "x2.yaml"
FAST = [
    "--set",
    "train.total_steps=6",
    "--set",
    "checkpoint.every=3",
    "--set",
    "validation.every=3",
    "--set",
    "log.every=2",
    "--set",
    "log.progress=false",
    "--set",
    "method.options.n_feats=4",
    "--set",
    "data.batch_size=2",
    "--set",
    "data.patch_size=32",
    "--set",
    "train.device=cpu",
]


def test_toy_trains_logs_validates_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", str(TOY), *FAST, "--run-dir", str(run), "--stop-after", "4"]) == 0
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "latest").read_text().strip() == "step_00000004"
    assert (run / "checkpoints" / "best" / "networks.safetensors").is_file()
    # a second plain start refuses to overwrite; resuming finishes the run
    assert main(["train", str(TOY), *FAST, "--run-dir", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(TOY), *FAST, "--resume", str(run)]) == 0
    assert (run / "final" / "networks.safetensors").is_file() and (run / "final" / "ema.safetensors").is_file()
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    kinds = {r["kind"] for r in records}
    assert {"train", "val", "message"} <= kinds
    assert max(r["step"] for r in records if r["kind"] == "train") == 6
    assert all(r["psnr"] > 20 for r in records if r["kind"] == "val")


def test_resume_with_a_different_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert (
        main(["train", str(TOY), *FAST, "--set", "validation.every=0", "--run-dir", str(run), "--stop-after", "2"]) == 0
    )
    assert (
        main(
            [
                "train",
                str(TOY),
                *FAST,
                "--set",
                "validation.every=0",
                "--set",
                "train.optimizer.lr=0.5",
                "--resume",
                str(run),
            ]
        )
        == 2
    )
    assert "train.optimizer.lr" in capsys.readouterr().err


def test_config_typos_fail_with_a_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(TOY), "--set", "train.optimiser.lr=1", "--run-dir", str(tmp_path / "r")]) == 2
    assert "did you mean 'optimizer'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(TOY.read_text().replace("precision: fp32", "precison: fp32"))
    assert main(["train", str(bad), "--run-dir", str(tmp_path / "r2")]) == 2
    assert "did you mean 'precision'" in capsys.readouterr().err


def test_missing_data_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "train",
                str(TOY),
                *FAST,
                "--set",
                f"data.train=[{tmp_path / 'nothing'}]",
                "--run-dir",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "nothing" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
    reason="torchrun not found",
)
def test_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "blindsr.cli.main",
            "train",
            str(TOY),
            *FAST,
            "--run-dir",
            str(run),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    infra = (
        "RendezvousConnectionError",
        "EADDRINUSE",
        "Address already in use",
        "Connection refused",
        "Operation not permitted",
    )
    if out.returncode != 0 and any(sig in out.stderr for sig in infra):
        pytest.skip(f"torchrun could not open a local rendezvous here: {out.stderr.strip().splitlines()[-1][:200]}")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "(2 processes)" in out.stdout and (run / "final" / "networks.safetensors").is_file()
