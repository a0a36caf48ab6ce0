"""`blindsr analyze idr | rdam | adaptation` on tiny random MRDA networks and synthetic images in tmp_path.

The commands check for matplotlib before they load anything: a test that gets past that check needs it and is
skipped without it (``pytest.importorskip``); the argument checks before it, and the one-line hint when it is
missing, are tested everywhere. What the commands compute is tested without matplotlib in tests/analysis."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from blindsr.archs import constructor_kwargs
from blindsr.cli.main import main
from blindsr.config import dump_config, load_config
from blindsr.data.images import write_image
from blindsr.engine.checkpoint import save_weights
from blindsr.methods import build_method
from blindsr.nets.mrda import MetaLearningNetwork, MRDAStudent
from blindsr.nets.toy import ToySR
from blindsr.zoo import save_release

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIGS = ROOT / "configs" / "mrda" / "tiny"
STUDENT: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_blocks": 2, "idr_dim": 16, "den_channels": 4}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A tiny student, one without RDAM, a toy model, and a Set5 of three 32x32 synthetic HR images."""
    torch.manual_seed(0)
    out = {}
    for name, kwargs in [("student", STUDENT), ("plain", {**STUDENT, "modulation": "none"})]:
        out[name] = tmp_path / f"{name}.safetensors"
        net = MRDAStudent(**constructor_kwargs("mrda_s", kwargs))
        save_release(net, out[name], arch="mrda_s", arch_kwargs=kwargs, scale=2, half=False)
    out["toy"] = tmp_path / "toy.safetensors"
    toy = {"scale": 2, "n_feats": 4, "n_blocks": 1}
    save_release(ToySR(**toy), out["toy"], arch="toy_sr", arch_kwargs=toy, scale=2)
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 32)
    for i in range(3):
        pattern = 0.5 + 0.4 * torch.sin(ramp[None, :] * (8 + 3 * i)) * torch.cos(ramp[:, None] * (5 + 2 * i))
        image = (pattern + 0.1 * torch.rand(3, 32, 32, generator=g)).clamp(0, 1)
        write_image(tmp_path / "data" / "Set5" / "HR" / f"im{i}.png", image)
    out["data"] = tmp_path / "data"
    out["hr"] = tmp_path / "data" / "Set5" / "HR" / "im0.png"
    return out


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("blindsr analyze: error:") and "\n" not in err, err
    for w in words:
        assert w in err, err


def test_idr(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots" / "idr.png"
    common = ["analyze", "idr", "-m", str(files["student"]), "--data-root", str(files["data"]), "--dataset", "set5"]
    assert main([*common, "--tsne-iters", "250", "--seed", "7", "-q", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "IDR: 24 samples (3 images of Set5 x 8 degradations)" in text
    assert "separability in IDR space: 5-NN accuracy" in text and "silhouette" in text
    assert _png(out)[0] > 300
    data = np.load(out.with_suffix(".npz"))
    assert data["idr"].shape == (24, 16) and data["embedding"].shape == (24, 2) and data["labels"].max() == 7
    assert int(data["seed"]) == 7 and int(data["tsne_seed"]) == 7 and str(data["kind"]) == "iso"
    assert len(json.loads(str(data["settings"]))) == 8

    noise = tmp_path / "noise.png"
    args = ["--kind", "noise", "--noise-levels", "0", "30", "--max-images", "2", "--tsne-iters", "50", "-q"]
    assert main([*common, *args, "-o", str(noise)]) == 0
    assert "degradations (noise): σn 0, σn 30" in capsys.readouterr().out
    assert np.load(noise.with_suffix(".npz"))["idr"].shape == (4, 16)


def test_idr_argument_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["analyze", "idr", "--data-root", str(files["data"]), "--dataset", "Set5", "-q", "-m", str(files["student"])]
    assert main([*base, "--kind", "aniso", "--widths", "1", "2", "-o", str(tmp_path / "c.png")]) == 2
    _one_line_error(capsys, "--widths")
    assert main([*base, "-o", str(tmp_path / "d.jpg")]) == 2
    _one_line_error(capsys, ".png")


def test_idr_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    base = ["analyze", "idr", "--data-root", str(files["data"]), "--dataset", "Set5", "-q"]
    assert main([*base, "-m", str(files["toy"]), "-o", str(tmp_path / "a.png")]) == 2
    _one_line_error(capsys, "toy.safetensors", "has no IDR")
    assert not (tmp_path / "a.png").exists()
    missing = [
        "analyze",
        "idr",
        "-m",
        str(files["student"]),
        "--data-root",
        str(tmp_path / "nope"),
        "-o",
        "x.png",
        "-q",
    ]
    assert main(missing) == 2
    _one_line_error(capsys, "does not exist")
    assert main([*base, "-m", str(files["student"]), "--dataset", "B100", "-o", str(tmp_path / "b.png")]) == 2
    _one_line_error(capsys, "B100")
    few = ["--kind", "noise", "--noise-levels", "0", "30", "--max-images", "1"]
    assert main([*base, "-m", str(files["student"]), *few, "-o", str(tmp_path / "e.png")]) == 2
    _one_line_error(capsys, "only 2 samples", "t-SNE needs at least 4")
    assert not (tmp_path / "e.png").exists() and not (tmp_path / "e.npz").exists()


def test_idr_without_matplotlib(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    argv = ["analyze", "idr", "-m", str(files["student"]), "--data-root", str(files["data"]), "--dataset", "Set5"]
    assert main([*argv, "-o", str(tmp_path / "x.png")]) == 2
    _one_line_error(capsys, "pip install -e '.[analysis]' (in the clone)")


def test_rdam(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "rdam.png"
    hr2 = files["data"] / "Set5" / "HR" / "im1.png"
    argv = ["analyze", "rdam", "-m", str(files["student"]), "-i", str(files["hr"]), str(hr2), "-q"]
    assert main([*argv, "--degradation", "iso:1.2", "--noise", "5", "--per-block", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "LR synthesised with σ 1.2, σn 5" in text and "im0: LR 16x16, M mean" in text
    _png(out)
    for stem in ("im0", "im1"):
        _png(tmp_path / f"rdam-{stem}-blocks.png")
    data = np.load(out.with_suffix(".npz"))
    assert data["names"].tolist() == ["im0", "im1"] and data["conv_names"].shape == (4,)
    assert data["mean_0"].shape == (16, 16) and data["per_block_1"].shape == (2, 16, 16)
    assert data["per_conv_0"].shape == (4, 16, 16) and np.allclose(data["per_conv_0"].mean(0), data["mean_0"])
    assert json.loads(str(data["degradation"]))["kernel_sigma"] == 1.2

    lr_out = tmp_path / "lr.png"
    assert main(["analyze", "rdam", "-m", str(files["student"]), "-i", str(files["hr"]), "-o", str(lr_out), "-q"]) == 0
    assert "LR inputs" in capsys.readouterr().out
    assert np.load(lr_out.with_suffix(".npz"))["mean_0"].shape == (32, 32)  # the input is the LR itself


def test_rdam_argument_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["analyze", "rdam", "-m", str(files["student"]), "-o", str(tmp_path / "r.png"), "-q"]
    assert main([*base, "-i", str(files["hr"]), "--degradation", "aniso:1,2"]) == 2
    _one_line_error(capsys, "bad degradation")
    assert main([*base, "-i", str(tmp_path / "missing.png")]) == 2
    _one_line_error(capsys, "does not exist")
    assert main([*base, "-i", str(files["hr"]), "--noise", "5"]) == 2
    _one_line_error(capsys, "--noise needs --degradation")


def test_rdam_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    small = tmp_path / "small.png"
    write_image(small, torch.rand(3, 6, 20))
    base = ["analyze", "rdam", "-m", str(files["student"]), "-o", str(tmp_path / "r.png"), "-q"]
    assert main([*base, "-i", str(small)]) == 2
    _one_line_error(capsys, "image too small", "20x6")
    assert main([*base, "-i", str(files["hr"]), str(small), "--degradation", "iso:1", "--per-block"]) == 2
    _one_line_error(capsys, "small.png", "image too small")
    assert sorted(p.name for p in tmp_path.glob("r*.png")) == []  # nothing written, not even the first image's
    plain = ["analyze", "rdam", "-m", str(files["plain"]), "-i", str(files["hr"]), "-o", str(tmp_path / "p.png")]
    assert main(plain) == 2
    _one_line_error(capsys, "no RDAM")


def _run_folder(tmp_path: Path, stage: str) -> Path:
    """A finished tiny MRDA run as `blindsr train` leaves it (resolved config.yaml + final/networks.safetensors)."""
    cfg = load_config(TINY_CONFIGS / f"{stage}.yaml")
    run = tmp_path / "runs" / stage
    (run / "final").mkdir(parents=True)
    dump_config(cfg, run / "config.yaml")
    torch.manual_seed(1)
    save_weights(build_method(cfg).networks, run / "final" / "networks.safetensors", metadata={"step": "3"})
    return run


def test_adaptation(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    run = _run_folder(tmp_path, "meta")
    exported = tmp_path / "mln.safetensors"
    assert main(["export", str(run), "--network", "mln", "--fp32", "-o", str(exported)]) == 0
    capsys.readouterr()
    other = tmp_path / "other.safetensors"
    kwargs = {"scale": 2, "n_feats": 8, "n_body": 2}
    torch.manual_seed(5)
    save_release(MetaLearningNetwork(**kwargs), other, arch="mrda_mln", arch_kwargs=kwargs, scale=2, half=False)

    out = tmp_path / "adapt.png"
    argv = ["analyze", "adaptation", "--mln", str(run), "--mln", str(exported), "--mln", str(other)]
    argv += ["--label", "meta-run", "--label", "meta-file", "--label", "random", "--data-root", str(files["data"])]
    argv += ["--dataset", "Set5", "--max-images", "2", "--steps", "2", "--inner-lr", "1e-2", "-q", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "16 pairs = 2 images x 8 settings" in text and "meta-run" in text and "gain" in text
    _png(out)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["steps"] == 2 and record["inner_lr"] == [0.01, 0.01] and record["n_pairs"] == 16
    curves = {c["label"]: c for c in record["curves"]}
    assert curves["meta-run"]["psnr_mean"] == pytest.approx(curves["meta-file"]["psnr_mean"], abs=1e-6)
    assert curves["random"]["psnr_mean"] != curves["meta-run"]["psnr_mean"]
    assert len(curves["meta-run"]["per_pair"]) == 16 and len(curves["random"]["psnr_per_setting"]) == 8
    rows = list(csv.reader(out.with_suffix(".csv").open()))
    assert rows[0] == ["step", "meta-run", "meta-file", "random"] and [r[0] for r in rows[1:]] == ["0", "1", "2"]


def test_adaptation_argument_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "a.png")
    base = ["analyze", "adaptation", "--data-root", str(files["data"]), "--dataset", "Set5", "-o", out, "-q"]
    assert main([*base, "--mln", str(files["student"]), "--steps", "3", "--inner-lr", "1", "2"]) == 2
    _one_line_error(capsys, "one per step")
    assert main([*base, "--mln", "a", "--mln", "b", "--label", "x"]) == 2
    _one_line_error(capsys, "one --label per --mln")
    assert main(["analyze"]) == 2


def test_adaptation_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = str(tmp_path / "a.png")
    base = ["analyze", "adaptation", "--data-root", str(files["data"]), "--dataset", "Set5", "-o", out, "-q"]
    student_run = _run_folder(tmp_path, "student")
    assert main([*base, "--mln", str(student_run)]) == 2
    _one_line_error(capsys, "pretrain or meta stage")
    assert main([*base, "--mln", str(files["student"])]) == 2
    _one_line_error(capsys, "not an MRDA MLN", "--network mln")
    assert main([*base, "--mln", str(tmp_path / "nothing")]) == 2
    _one_line_error(capsys, "not found")


def test_adaptation_without_steps(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    mln = tmp_path / "mln.safetensors"
    net = MetaLearningNetwork(scale=2, n_feats=8, n_body=1)
    kwargs = {"scale": 2, "n_feats": 8, "n_body": 1}
    save_release(net, mln, arch="mrda_mln", arch_kwargs=kwargs, scale=2, half=False)
    out = tmp_path / "a.png"
    argv = ["analyze", "adaptation", "--mln", str(mln), "--data-root", str(files["data"]), "--dataset", "Set5"]
    assert main([*argv, "--max-images", "1", "--steps", "0", "-q", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "inner lr -," in text and "gain" not in text
    assert json.loads(out.with_suffix(".json").read_text())["inner_lr"] == []
    assert [r[0] for r in csv.reader(out.with_suffix(".csv").open())] == ["step", "0"]
