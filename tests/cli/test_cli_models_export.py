"""`blindsr models` and `blindsr export`: the card listing, and a toy run exported and loaded by path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from blindsr.cli.main import main
from blindsr.nets.toy import ToySR
from blindsr.zoo import ModelCard, cards, load_model, read_release_metadata, save_release, sha256_file

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "configs" / "toy" / "x2.yaml"
FAST = [
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
]


def test_models_with_no_cards(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cards, "MODEL_CARDS", ())
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "No trained models ship with blindsr yet" in out and "blindsr eval -m FILE" in out
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_models_lists_cards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BLINDSR_HOME", str(tmp_path))
    kwargs = {"scale": 2, "n_feats": 4, "n_blocks": 1}
    sha = save_release(
        ToySR(**kwargs), tmp_path / "weights" / "toy.safetensors", arch="toy_sr", arch_kwargs=kwargs, scale=2
    )
    common = {"arch": "toy_sr", "arch_kwargs": kwargs, "scale": 2, "license": "MIT", "description": "test model"}
    listed = (
        ModelCard(name="toy-x2.bicubic", weights="toy.safetensors", sha256=sha, trained="2 CPU steps", **common),
        ModelCard(name="toy-x2.nf", weights="missing.safetensors", sha256=sha, trained="none", **common),
    )
    monkeypatch.setattr(cards, "MODEL_CARDS", listed)
    n_params = sum(p.numel() for p in ToySR(**kwargs).parameters())

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "SCALE", "PARAMS", "TRAINED", "LICENSE"]
    assert "toy-x2.bicubic (= toy-x2)" in out and "2 CPU steps" in out and "MIT" in out and "x2" in out
    assert f"total {n_params / 1e3:.1f}k" in out
    assert "toy-x2.nf *" in out and "not found locally" in out

    assert main(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in models] == ["toy-x2.bicubic", "toy-x2.nf"]
    first = models[0]
    assert first["arch"] == "toy_sr" and first["scale"] == 2 and first["params"] == {"total": n_params}
    assert first["trained"] == "2 CPU steps" and first["license"] == "MIT" and first["available"] is True
    assert models[1]["available"] is False


def test_train_export_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", str(TOY), *FAST, "--run-dir", str(run)]) == 0
    capsys.readouterr()
    out_file = tmp_path / "m.safetensors"
    assert main(["export", str(run), "-o", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "exported network 'sr' (toy_sr, x2; EMA weights, step 2; fp16" in out and str(out_file) in out
    assert f"sha256 {sha256_file(out_file)}" in out
    assert main(["export", str(run), "-o", str(tmp_path / "again.safetensors")]) == 0
    assert sha256_file(tmp_path / "again.safetensors") == sha256_file(out_file)  # exports are reproducible
    capsys.readouterr()

    meta = read_release_metadata(out_file)
    assert meta["run_dir"] == str(run) and meta["step"] == "2" and meta["weights"] == "ema"
    assert meta["config_sha256"] == sha256_file(run / "config.yaml") and meta["card"] == ""
    loaded = load_model(out_file)
    assert loaded.arch == "toy_sr" and dict(loaded.arch_kwargs) == {"scale": 2, "n_feats": 4, "n_blocks": 2}
    assert loaded.upscale(torch.rand(1, 3, 8, 8), 2).shape == (1, 3, 16, 16)

    # raw weights in fp32, for a card: the weights are exactly the run's final networks
    raw = tmp_path / "raw.safetensors"
    assert main(["export", str(run), "-o", str(raw), "--no-ema", "--fp32", "--card", "toy-x2.bicubic"]) == 0
    assert "raw weights" in capsys.readouterr().out
    assert read_release_metadata(raw)["card"] == "toy-x2.bicubic"
    from safetensors.torch import load_file

    final = load_file(str(run / "final" / "networks.safetensors"))
    for key, value in load_model(raw).model.state_dict().items():
        assert torch.equal(value, final[f"sr.{key}"])


def test_export_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path), "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", str(TOY), *FAST, "--set", "train.ema_decay=0", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "-o", str(tmp_path / "x.safetensors"), "--network", "mln"]) == 2
    assert "unknown --network 'mln'; this method releases: sr" in capsys.readouterr().err
    assert main(["export", str(run), "-o", str(tmp_path / "x.safetensors"), "--ema"]) == 2
    assert "EMA weights" in capsys.readouterr().err
    assert main(["export", str(run), "-o", str(tmp_path / "x.safetensors"), "--card", "toy-x4"]) == 2
    err = capsys.readouterr().err
    assert "x4" in err and "Traceback" not in err
    assert not (tmp_path / "x.safetensors").exists()
    assert main(["export", str(run), "-o", str(tmp_path / "y.safetensors")]) == 0  # no EMA: the raw weights
    assert "raw weights" in capsys.readouterr().out
