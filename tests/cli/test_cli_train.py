"""`blindsr train`: the toy config from the CLI (logs, validation, best checkpoint, resume) and under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
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


# ------------------------------------------------------------------------------- --resume: the run's own config


def _steps(run: Path) -> list[int]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if r["kind"] == "train"]


def test_resume_continues_with_the_runs_saved_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's sequence: a start with --set, then a plain --resume, then --resume --set train.total_steps."""
    run = tmp_path / "run"
    start = [*FAST, "--set", "validation.every=0", "--set", "train.total_steps=9"]
    assert main(["train", str(TOY), *start, "--run-dir", str(run), "--stop-after", "7"]) == 0
    assert f"resume with: blindsr train {TOY} --resume {run}" in capsys.readouterr().out
    # no --set repeated: total 9 (not the file's 300), patch 32, n_feats 4 ... all come from the run
    assert main(["train", str(TOY), "--resume", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"settings saved in {run / 'config.yaml'}" in out and "train.total_steps" in out
    assert "resumed at step 7" in out and "9 steps" in out
    assert _steps(run) == [2, 4, 6, 8, 9]
    # extending is one of the few changes --set may make on resume
    assert main(["train", str(TOY), "--resume", str(run), "--set", "train.total_steps=11"]) == 0
    assert _steps(run) == [2, 4, 6, 8, 9, 10, 11]
    assert "total_steps: 11" in (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", str(TOY), "--resume", str(run), "--set", "data.patch_size=16"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--set cannot change data.patch_size" in line and "train.total_steps" in line and "--run-dir" in line


def test_resume_with_another_experiments_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert (
        main(["train", str(TOY), *FAST, "--set", "validation.every=0", "--run-dir", str(run), "--stop-after", "1"]) == 0
    )
    capsys.readouterr()
    other = ROOT / "configs" / "dmsr" / "tiny.yaml"
    assert main(["train", str(other), "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "is a run of toy-x2/train" in err and "give that run's config" in err


def test_help_says_what_resume_and_the_data_root_do(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--resume continues with the run's own saved config.yaml" in text
    assert "BLINDSR_DATA" in text and "--data-root DIR" in text and "train.total_steps" in text


# ------------------------------------------------------------------------------------- ${data_root} data paths


def _repo_with_config(tmp_path: Path) -> Path:
    """A checkout `tmp/repo` with `configs/toy/x2.yaml` reading `${data_root}/train/samples` (validation off)."""
    config = tmp_path / "repo" / "configs" / "toy" / "x2.yaml"
    config.parent.mkdir(parents=True)
    text = TOY.read_text().replace("[../../src/blindsr/assets/samples]", '["${data_root}/train/samples"]')
    assert "${data_root}" in text
    config.write_text(text)
    return config


def _data_root(folder: Path) -> Path:
    shutil.copytree(ROOT / "src" / "blindsr" / "assets" / "samples", folder / "train" / "samples")
    return folder


def test_data_root_comes_from_the_flag_then_the_environment_then_beside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blindsr.cli.train import find_data_root, resolve_data_paths

    config_dir = _repo_with_config(tmp_path).parent
    paths = ("${data_root}/train/samples",)
    monkeypatch.delenv("BLINDSR_DATA", raising=False)
    assert resolve_data_paths(paths, config_dir) == [tmp_path / "shared" / "data" / "train" / "samples"]
    monkeypatch.setenv("BLINDSR_DATA", str(tmp_path / "env"))
    assert resolve_data_paths(paths, config_dir) == [tmp_path / "env" / "train" / "samples"]
    assert find_data_root(None, config_dir) == (tmp_path / "env", "BLINDSR_DATA")
    assert resolve_data_paths(paths, config_dir, data_root=tmp_path / "flag") == [tmp_path / "flag/train/samples"]
    with pytest.raises(ValueError, match=r"the only placeholder is \$\{data_root\}"):
        resolve_data_paths(("${data}/x",), config_dir)


def test_shipped_configs_read_the_same_folders_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """`${data_root}` by default is what `../../../shared/data` relative to configs/<method>/ used to be."""
    from blindsr.cli.train import resolve_data_paths
    from blindsr.config import load_config

    monkeypatch.delenv("BLINDSR_DATA", raising=False)
    for name in ("dmsr/lite_x4.yaml", "mrda/lite_iso_x4_student.yaml", "mrda/iso_x2_student.yaml"):
        path = ROOT / "configs" / name
        cfg = load_config(path)
        before = path.parent / "../../../shared/data"
        train = [p.resolve() for p in resolve_data_paths(cfg.data.train, path.parent)]
        assert train == [(before / "train" / n).resolve() for n in ("T91", "BSD200", "DIV2K_valid_crop256")], name
        assert resolve_data_paths((cfg.validation.data_root,), path.parent)[0].resolve() == before.resolve(), name


@pytest.mark.parametrize("how", ["environment", "flag"])
def test_a_config_with_data_root_trains_from_the_environment_or_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    config = _repo_with_config(tmp_path)
    root = _data_root(tmp_path / "elsewhere")
    monkeypatch.delenv("BLINDSR_DATA", raising=False)
    extra = ["--data-root", str(root)] if how == "flag" else []
    if how == "environment":
        monkeypatch.setenv("BLINDSR_DATA", str(root))
    argv = ["train", str(config), *FAST, "--set", "train.total_steps=2", "--set", "validation.every=0", *extra]
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 0
    assert "${data_root}/train/samples" in (tmp_path / "run" / "config.yaml").read_text()  # kept portable


def test_a_missing_data_root_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _repo_with_config(tmp_path)
    monkeypatch.delenv("BLINDSR_DATA", raising=False)
    assert main(["train", str(config), *FAST, "--run-dir", str(tmp_path / "run")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"data folder {tmp_path / 'shared' / 'data' / 'train' / 'samples'} not found" in line
    assert "BLINDSR_DATA=DIR" in line and "--data-root DIR" in line and "holds train/samples" in line
    monkeypatch.setenv("BLINDSR_DATA", str(tmp_path / "nowhere"))
    assert main(["train", str(config), *FAST, "--run-dir", str(tmp_path / "run")]) == 2
    line = capsys.readouterr().err.strip()
    assert f"the data root is {tmp_path / 'nowhere'} (BLINDSR_DATA)" in line
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before writing anything


def test_a_shipped_config_names_the_expected_folders_when_the_data_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ROOT / "configs" / "dmsr" / "lite_x4.yaml"
    assert main(["train", str(config), "--data-root", str(tmp_path), "--run-dir", str(tmp_path / "run")]) == 2
    line = capsys.readouterr().err.strip()
    assert "(--data-root)" in line and "BLINDSR_DATA" in line
    assert "holds train/T91, train/BSD200, train/DIV2K_valid_crop256, Set5" in line


# ---------------------------------------------------------------------------- images smaller than the patch


def test_images_smaller_than_the_patch_are_one_note_not_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    hr = tmp_path / "hr"
    shutil.copytree(ROOT / "src" / "blindsr" / "assets" / "samples", hr)
    Image.new("RGB", (20, 12)).save(hr / "tiny.png")
    argv = [*FAST, "--set", f"data.train=[{hr}]", "--set", "data.skip_small=true", "--set", "validation.every=0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["train", str(TOY), *argv, "--set", "train.total_steps=1", "--run-dir", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.out.splitlines() if "tiny.png" in line]
    assert len(notes) == 1 and notes[0].startswith("note: dropping 1 of "), captured.out
    assert "Warning" not in captured.err
