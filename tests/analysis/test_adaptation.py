"""MLN adaptation curves (blindsr.analysis.adaptation): step 0, untouched meta-weights, loading runs and files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from blindsr.analysis.adaptation import adaptation_psnr, load_mln, run_adaptation, step_sizes
from blindsr.config import dump_config, load_config
from blindsr.engine.checkpoint import save_weights
from blindsr.methods import build_method
from blindsr.methods.meta import inner_adapt, meta_parameters
from blindsr.metrics import psnr
from blindsr.nets.mrda import MetaLearningNetwork
from blindsr.zoo import save_release

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "mrda" / "tiny"


def _mln() -> MetaLearningNetwork:
    torch.manual_seed(0)
    return MetaLearningNetwork(scale=2, n_feats=8, n_body=1).eval()


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(1, 3, 32, 32, generator=g)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    return lr, hr


def test_step_zero_is_the_unadapted_mln_and_weights_stay() -> None:
    mln = _mln()
    lr, hr = _pair()
    before = {k: v.clone() for k, v in mln.state_dict().items()}
    scores = adaptation_psnr(mln, lr, hr, inner_lr=[0.05] * 3)
    assert len(scores) == 4
    with torch.no_grad():
        plain = float(psnr(mln(lr).sr, hr, scale=2)[0])
    assert scores[0] == pytest.approx(plain, abs=1e-9)
    assert scores[-1] > scores[0]  # L1 steps on the pair itself improve its PSNR
    assert all(torch.equal(before[k], v) for k, v in mln.state_dict().items())
    assert all(p.grad is None for p in mln.parameters())

    # stepping one at a time is the same as inner_adapt with n steps; the Upscaler is not adapted
    def loss(out: object) -> torch.Tensor:
        return (out.sr - hr).abs().mean()  # type: ignore[attr-defined]

    adapted = inner_adapt(
        mln,
        meta_parameters(mln, detach=True),
        loss,
        (lr,),
        steps=3,
        lr=0.05,
        adapt=lambda n: not MetaLearningNetwork.is_upscaler_parameter(n),
        order="none",
    )
    with torch.no_grad():
        sr = torch.func.functional_call(mln, adapted, (lr,)).sr
    assert scores[-1] == pytest.approx(float(psnr(sr, hr, scale=2)[0]), abs=1e-6)
    assert all(torch.equal(adapted[k], before[k]) for k in adapted if k.startswith("upscaler."))
    assert not torch.equal(adapted["trunk.head.weight"], before["trunk.head.weight"])


def test_step_sizes() -> None:
    assert step_sizes([0.1], 0) == []
    with pytest.raises(ValueError, match="one per step"):
        step_sizes([0.1, 0.2], 3)
    with pytest.raises(ValueError, match="> 0"):
        step_sizes([-1.0], 2)


def _fake_run(tmp_path: Path, stage: str) -> Path:
    """A finished run folder as `blindsr train` leaves it: the resolved config.yaml and final/networks.safetensors."""
    cfg = load_config(TINY / f"{stage}.yaml")
    run = tmp_path / stage
    (run / "final").mkdir(parents=True)
    dump_config(cfg, run / "config.yaml")
    save_weights(build_method(cfg).networks, run / "final" / "networks.safetensors", metadata={"step": "3"})
    return run


def test_load_mln_from_runs_and_files(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, "pretrain")
    loaded = load_mln(run)
    assert loaded.label == "pretrain" and loaded.scale == 2 and loaded.mln.n_feats == 8
    assert load_mln(run / "final", label="p").label == "p"
    mln = _mln()
    kwargs = {"scale": 2, "n_feats": 8, "n_body": 1}
    save_release(mln, tmp_path / "mln.safetensors", arch="mrda_mln", arch_kwargs=kwargs, scale=2, half=False)
    from_file = load_mln(tmp_path / "mln.safetensors")
    assert from_file.label == "mln"
    assert all(torch.equal(a, b) for a, b in zip(from_file.mln.parameters(), mln.parameters(), strict=True))

    with pytest.raises(FileNotFoundError, match="not a run folder"):
        load_mln(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.yaml").write_text((run / "config.yaml").read_text())
    with pytest.raises(FileNotFoundError, match="has the run finished"):
        load_mln(tmp_path / "empty")
    student = _fake_run(tmp_path, "student")
    with pytest.raises(ValueError, match="pretrain or meta stage"):
        load_mln(student)


def test_run_adaptation_curves() -> None:
    from blindsr.analysis.adaptation import LoadedMLN

    a = LoadedMLN(mln=_mln(), label="a", source="-", scale=2)
    lr, hr = _pair()
    curves = run_adaptation([a, a], [("im", "k1", lr, hr), ("im", "k2", lr, hr * 0.9)], inner_lr=[0.01, 0.01])
    assert [c.label for c in curves] == ["a", "a"] and curves[0].psnr.shape == (2, 3)
    assert curves[0].mean == curves[1].mean and list(curves[0].per_setting()) == ["k1", "k2"]
    assert curves[0].record()["per_pair"][1]["setting"] == "k2"
    with pytest.raises(ValueError, match="different factors"):
        run_adaptation([a, LoadedMLN(mln=a.mln, label="b", source="-", scale=4)], [], inner_lr=[])
