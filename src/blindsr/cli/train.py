"""``blindsr train``: train a method from a YAML config, resumably, on 1 process or N under torchrun."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

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
    from blindsr.engine.loop import fit
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
    result = fit(
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
