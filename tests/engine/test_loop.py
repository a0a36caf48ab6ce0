"""The training loop: exact resume, DDP on 2 CPU processes, non-finite loss, full disk, init from a stage."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from blindsr.cli.train import train_method
from blindsr.config import from_dict
from blindsr.config.schema import ExperimentConfig
from blindsr.engine.checkpoint import CheckpointError, latest_checkpoint
from blindsr.engine.loop import NonFiniteLossError, TrainingBatch, fit
from blindsr.methods import build_method
from blindsr.types import StepOutput


def _images(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = (rng.random((9, 11, 3)) * 255).astype(np.uint8)
        Image.fromarray(base).resize((44, 36), Image.BICUBIC).save(folder / f"{i}.png")
    return folder


def _cfg(tmp_path: Path, **changes: Any) -> ExperimentConfig:
    raw: dict[str, Any] = {
        "experiment": "t",
        "method": {"name": "toy", "scale": 2, "options": {"n_feats": 4, "n_blocks": 1}},
        "data": {"train": [str(_images(tmp_path / "hr"))], "patch_size": 16, "batch_size": 2},
        "degradation": {"preset": "dmsr"},
        "train": {
            "total_steps": 8,
            "device": "cpu",
            "accumulate": 2,
            "grad_clip": 0.5,
            "ema_decay": 0.9,
            "optimizer": {"lr": 1e-3},
            "scheduler": {"name": "cosine", "warmup_steps": 2, "min_lr": 1e-5},
        },
        "checkpoint": {"every": 3, "keep_last": 2},
        "log": {"every": 2, "progress": False},
    }
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return from_dict(ExperimentConfig, raw)


def _weights(run_dir: Path, name: str = "networks") -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "final" / f"{name}.safetensors"))


def test_resume_equals_uninterrupted_bit_for_bit(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    full = train_method(cfg, build_method(cfg), run_dir=tmp_path / "full")
    part = tmp_path / "part"
    first = train_method(cfg, build_method(cfg), run_dir=part, stop_after=5)  # "interrupted" mid-schedule, off the grid
    assert first.steps == 5 and latest_checkpoint(part) == part / "checkpoints" / "step_00000005"
    torch.manual_seed(12345)  # scramble global RNG state: resume must restore it
    np.random.seed(7)
    resumed = train_method(cfg, build_method(cfg), run_dir=part, resume=True)
    assert resumed.steps == full.steps == 8
    for name in ("networks", "ema"):
        a, b = _weights(tmp_path / "full", name), _weights(part, name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"
    assert resumed.final_loss == full.final_loss
    kept = sorted(p.name for p in (part / "checkpoints").glob("step_*"))
    assert len(kept) == 2  # keep_last


class _FixedBatches:
    """A `BatchSource` without files: random HR patches seeded by (step, micro, rank)."""

    description = "random patches"

    def batch(self, step: int, micro: int, *, rank: int) -> TrainingBatch:
        seed = 1000 * step + 10 * micro + rank
        hr = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
        return TrainingBatch(hr=hr, generator=torch.Generator().manual_seed(seed + 1))


def test_the_engine_trains_on_any_batch_source_and_validator(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, validation={"every": 3, "metric": "ssim"})
    devices: list[torch.device] = []
    calls: list[tuple[int, bool, list[str]]] = []

    def batches(device: torch.device) -> _FixedBatches:
        devices.append(device)
        return _FixedBatches()

    def validation(device: torch.device) -> Any:
        devices.append(device)

        def validate(networks: Mapping[str, nn.Module], step: int) -> dict[str, float]:
            calls.append((step, any(n.training for n in networks.values()), sorted(networks)))
            return {"ssim": 1.0 if step == 6 else 0.5, "other": float(step)}

        return validate

    def run(name: str, **kwargs: Any) -> Any:
        return fit(cfg, build_method(cfg), batches=batches, validation=validation, run_dir=tmp_path / name, **kwargs)

    result = run("full")
    assert devices == [torch.device("cpu")] * 2  # each factory called once, with the training device
    assert calls == [(3, False, ["sr"]), (6, False, ["sr"]), (8, False, ["sr"])]  # eval mode; and the last step
    assert (result.best_metric, result.best_step, result.steps) == (1.0, 6, 8)
    records = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    val = [{k: r[k] for k in ("step", "ssim", "other")} for r in records if r["kind"] == "val"]
    assert val == [
        {"step": 3, "ssim": 0.5, "other": 3.0},
        {"step": 6, "ssim": 1.0, "other": 6.0},
        {"step": 8, "ssim": 0.5, "other": 8.0},
    ]
    best = json.loads((tmp_path / "full" / "checkpoints" / "best" / "manifest.json").read_text())
    assert best["step"] == 6
    run("part", stop_after=4)
    resumed = run("part", resume=True)
    assert (resumed.best_metric, resumed.best_step, resumed.final_loss) == (1.0, 6, result.final_loss)
    for name in ("networks", "ema"):
        a, b = _weights(tmp_path / "full", name), _weights(tmp_path / "part", name)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_validation_every_needs_a_validator(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, validation={"every": 3})
    with pytest.raises(ValueError, match="needs a `validation`"):
        fit(cfg, build_method(cfg), batches=lambda device: _FixedBatches(), run_dir=tmp_path / "run")


class _NaNAt:
    """Wraps the toy method; its loss becomes NaN at a given step."""

    def __init__(self, inner: Any, bad_step: int) -> None:
        self.inner, self.bad_step = inner, bad_step
        self.networks = inner.networks

    def training_step(
        self, hr: torch.Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        out = self.inner.training_step(hr, step=step, generator=generator, nets=nets)
        return StepOutput(loss=out.loss * float("nan"), logs=out.logs) if step == self.bad_step else out

    def inference(self, nets: Mapping[str, nn.Module]) -> Any:
        return self.inner.inference(nets)

    def release(self) -> Any:
        return self.inner.release()


def test_non_finite_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, train__total_steps=10, checkpoint__every=2)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"step 5 .*last good checkpoint is .*step_00000004"):
        train_method(cfg, _NaNAt(build_method(cfg), bad_step=5), run_dir=run)
    last = latest_checkpoint(run)
    assert last is not None and last.name == "step_00000004"
    weights = load_file(str(last / "networks.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())
    resumed = train_method(
        cfg.__class__(**{**_fields(cfg), "train": dataclasses.replace(cfg.train, total_steps=6)}),
        build_method(cfg),
        run_dir=run,
        resume=True,
    )
    assert resumed.steps == 6  # the kept checkpoint is usable


def _fields(cfg: ExperimentConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def test_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path, train__total_steps=9, checkpoint__every=3)
    run = tmp_path / "run"
    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(CheckpointError, match="No space left.*step_00000003 is intact"):
        train_method(cfg, build_method(cfg), run_dir=run)
    assert latest_checkpoint(run) == run / "checkpoints" / "step_00000003"
    assert not list((run / "checkpoints").glob(".*tmp"))  # nothing half-written left behind


def test_init_from_an_earlier_stage_is_strict(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, train__total_steps=2, experiment="chain", stage="a")
    train_method(cfg, build_method(cfg), run_dir=tmp_path / "chain" / "a")
    stage_b = _cfg(
        tmp_path, train__total_steps=1, stage="b", init=[{"network": "sr", "from_stage": "a", "freeze": False}]
    )
    method = build_method(stage_b)
    train_method(stage_b, method, run_dir=tmp_path / "chain" / "b")
    wrong = _cfg(
        tmp_path,
        train__total_steps=1,
        stage="c",
        method={"name": "toy", "scale": 2, "options": {"n_feats": 8, "n_blocks": 1}},
        init=[{"network": "sr", "from_stage": "a"}],
    )
    with pytest.raises(CheckpointError, match="strict"):
        train_method(wrong, build_method(wrong), run_dir=tmp_path / "chain" / "c")
    missing = _cfg(tmp_path, stage="d", init=[{"network": "sr", "from_stage": "nope"}])
    with pytest.raises(FileNotFoundError, match="run the stage 'nope' first"):
        train_method(missing, build_method(missing), run_dir=tmp_path / "chain" / "d")


def test_init_with_exclude_transfers_everything_but_the_upsampler(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, train__total_steps=1, experiment="xfer", stage="x2")
    train_method(cfg, build_method(cfg), run_dir=tmp_path / "xfer" / "x2")
    source = _weights(tmp_path / "xfer" / "x2")
    x3 = {"name": "toy", "scale": 3, "options": {"n_feats": 4, "n_blocks": 1}}
    data = {"train": [str(tmp_path / "hr")], "patch_size": 18, "batch_size": 2}
    strict = _cfg(tmp_path, stage="x3", method=x3, data=data, init=[{"network": "sr", "from_stage": "x2"}])
    with pytest.raises(CheckpointError, match="strict"):
        train_method(strict, build_method(strict), run_dir=tmp_path / "xfer" / "x3")
    init = [{"network": "sr", "from_stage": "x2", "exclude": ["upsample."]}]
    ok = _cfg(tmp_path, train__total_steps=1, train__optimizer__lr=0.0, stage="x3b", method=x3, data=data, init=init)
    method = build_method(ok)
    fresh = {k: v.clone() for k, v in method.networks["sr"].state_dict().items() if k.startswith("upsample.")}
    train_method(ok, method, run_dir=tmp_path / "xfer" / "x3b")
    loaded = method.networks["sr"].state_dict()
    for key, value in loaded.items():
        expected = fresh[key] if key.startswith("upsample.") else source[f"sr.{key}"]
        torch.testing.assert_close(value, expected, msg=key)
    nothing = _cfg(
        tmp_path, stage="x3c", method=x3, data=data, init=[{"network": "sr", "from_stage": "x2", "exclude": ["nope."]}]
    )
    with pytest.raises(CheckpointError, match="matches no key"):
        train_method(nothing, build_method(nothing), run_dir=tmp_path / "xfer" / "x3c")


def _ddp_worker(rank: int, tmp: str, world: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), BLINDSR_DIST_INIT=f"file://{tmp}/pg")
    torch.set_num_threads(1)
    cfg = _cfg(Path(tmp), train__total_steps=4, train__ema_decay=0.0, checkpoint__every=2)
    method = build_method(cfg)
    train_method(cfg, method, run_dir=Path(tmp) / "run")
    torch.save({k: v.clone() for k, v in method.networks.state_dict().items()}, f"{tmp}/rank{rank}.pt")


def test_ddp_two_cpu_processes_keep_weights_identical(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(_ddp_worker, args=(str(tmp_path), 2), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the ranks trained on different data: the weights moved away from a single-process run's
    initial = build_method(_cfg(tmp_path)).networks.state_dict()
    assert any(not torch.equal(a[k], initial[k]) for k in a if "tail" in k)
    assert (tmp_path / "run" / "final" / "networks.safetensors").is_file()  # rank 0 saved


@pytest.mark.parametrize(
    "changes",
    [
        {"train__precision": "bf16"},
        {"train__channels_last": True},
        {
            "train__scheduler": {"name": "multistep", "milestones": [2], "gamma": 0.5},
            "train__optimizer": {"name": "sgd"},
        },
        {"data__on_device": True, "train__ema_decay": 0.0, "train__grad_clip": 0.0, "train__accumulate": 1},
    ],
)
def test_speed_and_schedule_options_train(tmp_path: Path, changes: dict[str, Any]) -> None:
    cfg = _cfg(tmp_path, train__total_steps=3, **changes)
    result = train_method(cfg, build_method(cfg), run_dir=tmp_path / "run")
    assert result.steps == 3 and np.isfinite(result.final_loss)


def test_fp16_on_cpu_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, train__precision="fp16")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        train_method(cfg, build_method(cfg), run_dir=tmp_path / "run")


def test_learning_rate_follows_the_schedule(tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path,
        train__total_steps=4,
        train__accumulate=1,
        log__every=1,
        train__scheduler={"name": "multistep", "milestones": [2], "gamma": 0.1},
    )
    train_method(cfg, build_method(cfg), run_dir=tmp_path / "run")
    lrs = [
        r["lr"]
        for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines())
        if r["kind"] == "train"
    ]
    assert lrs == pytest.approx([1e-3, 1e-4, 1e-4, 1e-4])  # logged after each step's scheduler update


def test_degradation_noise_free_prob_reaches_the_method(tmp_path: Path) -> None:
    assert build_method(_cfg(tmp_path)).degradation.noise_free_prob == 0.0  # type: ignore[attr-defined]
    cfg = _cfg(tmp_path, degradation={"preset": "dmsr", "noise_free_prob": 0.3})
    spec = build_method(cfg).degradation  # type: ignore[attr-defined]
    assert spec.noise_free_prob == 0.3 and spec.noise == (0.0, 75.0)


def test_degradation_sigma_overrides_the_presets_kernel_widths(tmp_path: Path) -> None:
    default = build_method(_cfg(tmp_path, degradation={"preset": "dmsr"}))
    assert default.degradation.sigma == (0.2, 3.0)  # type: ignore[attr-defined]
    cfg = _cfg(tmp_path, degradation={"preset": "dmsr", "sigma": [0.2, 1.5]})
    spec = build_method(cfg).degradation  # type: ignore[attr-defined]
    assert spec.sigma == (0.2, 1.5) and spec.noise == (0.0, 75.0)
    with pytest.raises(ValueError, match="sigma"):
        build_method(_cfg(tmp_path, degradation={"preset": "dmsr", "sigma": [1.5, 0.2]}))
    with pytest.raises(ValueError, match="isotropic"):
        build_method(_cfg(tmp_path, degradation={"preset": "bicubic", "sigma": [0.2, 1.5]}))
