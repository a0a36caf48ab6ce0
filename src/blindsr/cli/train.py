"""``blindsr train``: train a method from a YAML config, resumably, on 1 process or N under torchrun.

Besides the command, this module wires the training engine (:func:`blindsr.engine.loop.fit`, which knows no data set
or benchmark) to the data and the validation a config names: :func:`train_method` trains on
:class:`blindsr.data.patch_sampler.PatchSampler` batches (:func:`patch_batches`) and validates with
:func:`blindsr.eval.benchmark.evaluate` (:func:`benchmark_validation`).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from blindsr.config.schema import ExperimentConfig
    from blindsr.data.patch_sampler import PatchSampler
    from blindsr.engine.loop import BatchSource, FitResult, TrainingBatch, Validator
    from blindsr.types import Method

_DESCRIPTION = """Train a method from a YAML config (see configs/).

The run folder (default RUNS_ROOT/EXPERIMENT/STAGE) receives the resolved config.yaml, log.jsonl, checkpoints/
(atomic; `latest` and `best`) and final/ (the weights later stages and exports read).

  blindsr train configs/toy/x2.yaml
  blindsr train configs/toy/x2.yaml --set train.total_steps=2000 --set train.optimizer.lr=1e-4
  blindsr train configs/toy/x2.yaml --resume runs/toy-x2/train        # continue exactly where it stopped
  torchrun --standalone --nproc_per_node=2 -m blindsr.cli.main train configs/toy/x2.yaml   # DDP

An unknown or misspelled key is an error that names the closest valid key. With --resume, the config must match
the run's saved config.yaml except for train.total_steps (to extend a run). One process trains into a run folder at a
time (a second one is refused); --resume skips a damaged latest checkpoint for the newest intact one, and says so."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a method from a YAML config (resumable, DDP with torchrun)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", metavar="CONFIG", help="experiment YAML file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.optimizer.lr=1e-4 (repeatable)",
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument("--run-dir", "--run_dir", metavar="DIR", help="run folder (default RUNS_ROOT/EXPERIMENT/STAGE)")
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="N",
        help="stop (with a checkpoint) after N steps of this invocation; resume later",
    )
    p.set_defaults(func=run)


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix[:-1]]


def run(args: argparse.Namespace) -> int:
    from blindsr.cli.main import CLIError
    from blindsr.config import load_config

    config_path = Path(args.config)
    cfg = load_config(config_path, overrides=args.overrides)
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise CLIError(f"--resume: {run_dir} is not a run folder (no config.yaml)")
    else:
        run_dir = Path(args.run_dir) if args.run_dir else Path(cfg.runs_root) / cfg.experiment / cfg.stage
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if not main_rank:
        return _train(args, cfg, run_dir)
    # rank 0 holds the run folder's lock from before it reads or writes anything there until training ends
    from blindsr.engine.runlock import lock_run_folder

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"cannot create the run folder {run_dir} ({e.strerror or e})") from e
    with lock_run_folder(run_dir):
        return _train(args, cfg, run_dir)


def _train(args: argparse.Namespace, cfg: Any, run_dir: Path) -> int:
    from blindsr.cli.main import CLIError
    from blindsr.config import dump_config, load_config, to_dict
    from blindsr.methods import build_method

    config_path = Path(args.config)
    if args.resume:
        saved = load_config(run_dir / "config.yaml")
        changed = [k for k in _diff(to_dict(saved), to_dict(cfg)) if k != "train.total_steps"]
        if changed:
            raise CLIError(
                f"--resume: the config differs from the run's saved config in: {', '.join(changed)}; "
                "use the same config (or --set those keys back), or start a new --run-dir"
            )
    elif (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        raise CLIError(
            f"run folder {run_dir} already has checkpoints; continue it with --resume {run_dir}, "
            "or choose another --run-dir"
        )
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if main_rank:
        try:
            dump_config(cfg, run_dir / "config.yaml")
        except OSError as e:
            raise CLIError(f"could not write {run_dir / 'config.yaml'} ({e.strerror or e})") from e
    method = build_method(cfg)
    result = train_method(
        cfg,
        method,
        run_dir=run_dir,
        resume=bool(args.resume),
        config_dir=config_path.resolve().parent,
        stop_after=args.stop_after,
    )
    if main_rank:
        loss = f", last loss {result.final_loss:.5f}" if math.isfinite(result.final_loss) else ""
        best = ""
        if result.best_metric is not None:
            best = f", best {cfg.validation.metric} {result.best_metric:.4f} at step {result.best_step}"
        print(f"{result.steps} steps{loss}{best}; run folder {result.run_dir}")
    return 0


def train_method(
    cfg: ExperimentConfig,
    method: Method,
    *,
    run_dir: Path,
    resume: bool = False,
    config_dir: Path | None = None,
    stop_after: int | None = None,
) -> FitResult:
    """:func:`blindsr.engine.loop.fit` on the config's training data and validation (what ``blindsr train`` runs).

    Args:
        cfg: the resolved experiment config.
        method: the method (its networks on the CPU, as built).
        run_dir: the run folder.
        resume: continue from the latest intact checkpoint in `run_dir`.
        config_dir: folder of the config file (relative data paths resolve against it, see
            :func:`resolve_data_paths`).
        stop_after: stop after this many optimiser steps of this call (checkpointing first).
    """
    from blindsr.engine.loop import fit

    return fit(
        cfg,
        method,
        batches=patch_batches(cfg, config_dir=config_dir),
        validation=benchmark_validation(cfg, method, config_dir=config_dir),
        run_dir=run_dir,
        resume=resume,
        stop_after=stop_after,
    )


def resolve_data_paths(folders: tuple[str, ...], config_dir: Path | None) -> list[Path]:
    """Training folders: absolute, else relative to the config file's folder if it exists there, else to the CWD."""
    out = []
    for f in folders:
        p = Path(f).expanduser()
        if not p.is_absolute() and config_dir is not None and (config_dir / p).exists():
            p = config_dir / p
        out.append(p)
    return out


class PatchBatches:
    """The `BatchSource` of ``blindsr train``: `PatchSampler` patches and a step generator, both seeded by position.

    Micro-batch ``(step, micro, rank)`` is ``sampler.batch(step * accumulate + micro, rank=rank)`` with a CPU
    ``torch.Generator`` seeded with ``derive_seed("step", seed, step, micro, rank)``
    (:func:`blindsr.degradations.noise.derive_seed`) for the method's degradations and noise.
    """

    def __init__(self, sampler: PatchSampler, *, seed: int, accumulate: int) -> None:
        self._sampler = sampler
        self._seed = seed
        self._accumulate = accumulate

    @property
    def description(self) -> str:
        return f"{self._sampler.num_images} HR images"

    def batch(self, step: int, micro: int, *, rank: int) -> TrainingBatch:
        import torch

        from blindsr.degradations.noise import derive_seed
        from blindsr.engine.loop import TrainingBatch

        hr = self._sampler.batch(step * self._accumulate + micro, rank=rank)
        generator = torch.Generator().manual_seed(derive_seed("step", self._seed, step, micro, rank))
        return TrainingBatch(hr=hr, generator=generator)


def patch_batches(cfg: ExperimentConfig, *, config_dir: Path | None) -> Callable[[torch.device], BatchSource]:
    """The factory of the run's `PatchBatches` (``data.*`` of `cfg`; images kept on the device with ``on_device``).

    The images are read when the factory is called (by ``fit``, once it holds the run folder's lock).
    """

    def build(device: torch.device) -> BatchSource:
        from blindsr.data.patch_sampler import PatchSampler

        sampler = PatchSampler(
            folders=resolve_data_paths(cfg.data.train, config_dir),
            patch_size=cfg.data.patch_size,
            batch_size=cfg.data.batch_size,
            augment=cfg.data.augment,
            device=device if cfg.data.on_device else "cpu",
            skip_small=cfg.data.skip_small,
            seed=cfg.seed,
        )
        return PatchBatches(sampler, seed=cfg.seed, accumulate=cfg.train.accumulate)

    return build


def benchmark_validation(
    cfg: ExperimentConfig, method: Method, *, config_dir: Path | None
) -> Callable[[torch.device], Validator] | None:
    """The factory of the run's validator (None when ``validation.every`` is 0).

    The validator scores ``method.inference(networks)`` on ``validation.datasets`` under the evaluation preset
    ``validation.preset`` (at most ``validation.max_images`` images each) with
    :func:`blindsr.eval.benchmark.evaluate`, and returns ``{validation.metric: mean over the datasets}``.

    Raises (when the factory is called):
        FileNotFoundError: ``validation.data_root`` is not a folder.
    """
    vc = cfg.validation
    if not vc.every:
        return None

    def build(device: torch.device) -> Validator:
        root = resolve_data_paths((vc.data_root,), config_dir)[0]
        if not root.is_dir():
            raise FileNotFoundError(f"validation.data_root {root} does not exist (validation.every > 0)")

        def validate(networks: Mapping[str, nn.Module], step: int) -> Mapping[str, float]:
            from blindsr.degradations.presets import get_eval_preset
            from blindsr.eval.benchmark import evaluate

            cells = evaluate(
                method.inference(networks),
                get_eval_preset(vc.preset),
                data_root=root,
                datasets=list(vc.datasets),
                scales=(cfg.method.scale,),
                model_name=f"{cfg.experiment}/{cfg.stage}",
                device=device,
                progress=False,
                max_images=vc.max_images,
            )
            values = [getattr(c, vc.metric) for c in cells if c.setting != "mean"]
            return {vc.metric: float(sum(values) / len(values))}

        return validate

    return build
