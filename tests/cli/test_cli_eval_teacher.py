"""`blindsr eval` of MRDA's teacher: an ORACLE evaluation (the MLN adapted on each test image's HR; T3: true kernel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import save_file

from blindsr.archs import constructor_kwargs
from blindsr.cli.main import main
from blindsr.data.images import write_image
from blindsr.nets.mrda import MetaLearningNetwork, MRDATeacher
from blindsr.zoo import save_release

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "mrda" / "tiny"
NET: dict[str, Any] = {"n_feats": 8, "n_blocks": 1, "idr_dim": 16}


def _data(root: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    for name in ("Set5", "Urban100"):
        write_image(root / name / "HR" / "img0.png", torch.rand(3, 32, 36, generator=g))
    return root


def _release(net: torch.nn.Module, path: Path, arch: str, kwargs: dict[str, Any]) -> Path:
    save_release(net, path, arch=arch, arch_kwargs=kwargs, scale=kwargs["scale"], half=False)
    return path


def _eval(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["eval", *args, "-q"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_eval_released_teacher_files_as_an_oracle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path / "data")
    mln_kwargs = {"scale": 4, "n_feats": 8, "n_body": 2}
    t2_kwargs = {"scale": 4, **NET, "den_channels": 4, "mln_channels": 8}
    t3_kwargs = {"scale": 4, **NET, "idr_source": "kernel", "blur_kernel_size": 21}
    mln = _release(MetaLearningNetwork(**mln_kwargs), tmp_path / "mln.safetensors", "mrda_mln", mln_kwargs)
    t2_net, t3_net = (MRDATeacher(**constructor_kwargs("mrda_t", kw)) for kw in (t2_kwargs, t3_kwargs))
    t2 = _release(t2_net, tmp_path / "t2.safetensors", "mrda_t", t2_kwargs)
    t3 = _release(t3_net, tmp_path / "t3.safetensors", "mrda_t", t3_kwargs)
    common = ["--protocol", "gaussian8-x4", "--data-root", str(data)]

    js = tmp_path / "t2.json"
    rc, out, _ = _eval(capsys, "-m", str(t2), "--mln", str(mln), "--inner-steps", "2", *common, "--json", str(js))
    assert rc == 0
    first = out.splitlines()[0]
    assert first.startswith("ORACLE evaluation (not blind SR)") and "HR image" in first and "2 SGD steps" in first
    assert "ours (t2.safetensors, ORACLE)" in out and "| bicubic |" in out
    assert "paper MRDA_T2" in out and "paper MRDA_T3" in out and "Δ vs MRDA_T2" in out
    records = json.loads(js.read_text())
    assert records and all(r["oracle"] is True and "HR image" in r["oracle_uses"] for r in records)
    assert {r["dataset"] for r in records} == {"Set5", "Urban100"} and all(r["scale"] == 4 for r in records)

    rc, out, _ = _eval(capsys, "-m", str(t3), *common, "--datasets", "Urban100")
    assert rc == 0 and "true blur kernel" in out.splitlines()[0] and "Δ vs MRDA_T3" in out

    # misuse is a one-line error
    rc, _, err = _eval(capsys, "-m", str(t2), *common)
    assert rc == 2 and "--mln" in err
    rc, _, err = _eval(capsys, "-m", str(t3), "--mln", str(mln), *common)
    assert rc == 2 and "uses no MLN" in err
    rc, _, err = _eval(capsys, "-m", str(t3), "--protocol", "dmsr-grid", "--scales", "4", "--data-root", str(data))
    assert rc == 2 and "21x21" in err and "15x15" in err
    rc, _, err = _eval(capsys, "--mln", str(mln), *common)
    assert rc == 2 and "MRDA teacher" in err
    rc, _, err = _eval(capsys, "-m", str(t2), "--mln", str(t3), *common)
    assert rc == 2 and "not an MLN" in err
    rc, _, err = _eval(capsys, "-m", str(t2), "--teacher-run", str(tmp_path), *common)
    assert rc == 2 and "not both" in err


def test_eval_teacher_runs_as_an_oracle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--teacher-run`: the stage's own weights, MLN (via its init entry) and adaptation; same as the exported files."""
    data = _data(tmp_path / "data")
    runs = tmp_path / "runs" / "mrda-tiny"
    mln = MetaLearningNetwork(scale=2, n_feats=8, n_body=2)  # stands in for the tiny meta stage's result
    (runs / "meta" / "final").mkdir(parents=True)
    save_file(
        {f"mln.{k}": v.contiguous() for k, v in mln.state_dict().items()},
        runs / "meta" / "final" / "networks.safetensors",
    )
    for stage in ("teacher", "teacher_kernel"):
        assert main(["train", str(TINY / f"{stage}.yaml"), "--run-dir", str(runs / stage)]) == 0, stage
    common = ["--protocol", "gaussian8-x2", "--data-root", str(data), "--datasets", "Set5"]

    js = tmp_path / "run.json"
    rc, out, _ = _eval(capsys, "--teacher-run", str(runs / "teacher"), *common, "--json", str(js))
    assert rc == 0 and out.startswith("ORACLE evaluation") and "ours (mrda-tiny/teacher, ORACLE)" in out
    assert "2 SGD steps of 0.01, Upscaler fixed" in out.splitlines()[0]  # the run's adaptation options ...
    from_run = json.loads(js.read_text())
    assert all(r["oracle"] is True and r["model"] == "mrda-tiny/teacher" for r in from_run)

    # the same teacher through `blindsr export` + the MLN's release file gives the same numbers (tiny config: 2 steps)
    teacher_file = tmp_path / "teacher.safetensors"
    assert main(["export", str(runs / "teacher"), "-o", str(teacher_file), "--fp32"]) == 0
    mln_file = _release(mln, tmp_path / "mln.safetensors", "mrda_mln", {"scale": 2, "n_feats": 8, "n_body": 2})
    js2 = tmp_path / "files.json"
    files_args = ["-m", str(teacher_file), "--mln", str(mln_file), "--inner-steps", "2", *common, "--json", str(js2)]
    rc, _, _ = _eval(capsys, *files_args)
    assert rc == 0
    from_files = json.loads(js2.read_text())
    assert [(r["setting"], r["psnr"]) for r in from_files] == [(r["setting"], r["psnr"]) for r in from_run]
    rc, out, _ = _eval(capsys, "--teacher-run", str(runs / "teacher"), "--inner-steps", "4", *common)
    assert rc == 0 and "4 SGD steps of 0.01" in out.splitlines()[0]  # ... unless overridden

    rc, out, _ = _eval(capsys, "--teacher-run", str(runs / "teacher_kernel"), *common)
    assert rc == 0 and "true blur kernel" in out.splitlines()[0]
    rc, _, err = _eval(capsys, "--teacher-run", str(runs / "teacher_kernel"), "--inner-steps", "3", *common)
    assert rc == 2 and "has none" in err
    rc, _, err = _eval(capsys, "--teacher-run", str(runs / "meta"), *common)
    assert rc == 2 and "not a run folder" in err

    # the reference code's drifting MLN is saved with the run and is the one used
    legacy = ["--set", "method.options.legacy_persistent_mln=true"]
    assert main(["train", str(TINY / "teacher.yaml"), "--run-dir", str(runs / "teacher_legacy"), *legacy]) == 0
    rc, out, _ = _eval(capsys, "--teacher-run", str(runs / "teacher_legacy"), *common)
    assert rc == 0 and out.startswith("ORACLE evaluation")
    # a teacher run whose MLN no init entry fills is refused instead of adapting random weights
    config = runs / "teacher" / "config.yaml"
    resolved = yaml.safe_load(config.read_text())
    assert [i["network"] for i in resolved["init"]] == ["mln"]
    config.write_text(yaml.safe_dump({**resolved, "init": []}))
    rc, _, err = _eval(capsys, "--teacher-run", str(runs / "teacher"), *common)
    assert rc == 2 and "never loaded" in err
