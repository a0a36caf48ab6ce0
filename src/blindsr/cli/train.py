"""``blindsr train``: train a method from a YAML config, resumably, on 1 process or N under torchrun.

Besides the command, this module wires the training engine (:func:`blindsr.engine.loop.fit`, which knows no data set
or benchmark) to the data and the validation a config names: :func:`train_method` trains on
:class:`blindsr.data.patch_sampler.PatchSampler` batches (:func:`patch_batches`) and validates with
:func:`blindsr.eval.benchmark.evaluate` (:func:`benchmark_validation`). Data paths written ``${data_root}/...`` resolve
against one data root (:func:`find_data_root`: ``--data-root``, ``$BLINDSR_DATA``, else ``../shared/data`` beside the
checkout); :func:`resume_config` is the config of ``--resume`` (the run's saved one, with the few safe ``--set``).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
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

  blindsr train configs/toy/x2.yaml --stop-after 100                 # 100 steps, a checkpoint, exit
  blindsr train configs/toy/x2.yaml --resume runs/toy-x2/train       # continue exactly where it stopped
  blindsr train configs/toy/x2.yaml --resume runs/toy-x2/train --set train.total_steps=600   # extend the run
  blindsr train configs/toy/x2.yaml --run-dir runs/lr1e-4 --set train.optimizer.lr=1e-4      # another run
  blindsr train configs/dmsr/lite_x4.yaml --data-root /data/sr       # the data root of ${data_root} paths
  torchrun --standalone --nproc_per_node=2 -m blindsr.cli.main train configs/toy/x2.yaml   # DDP

An unknown or misspelled key is an error that names the closest valid key.

--resume continues with the run's own saved config.yaml (whatever --set the first start had); CONFIG only locates
relative data paths. --set may then change only what leaves the training itself alone: train.total_steps (to
extend a run), train.threads, checkpoint.every, checkpoint.keep_last, log.every, log.progress, log.tensorboard.
One process trains into a run folder at a time (a second one is refused); --resume skips a damaged latest
checkpoint for the newest intact one, and says so. Ctrl-C finishes the current step, saves a checkpoint and prints
the command that resumes (a second Ctrl-C stops at once).

Data paths written ${data_root}/... (the shipped configs: ${data_root}/train/T91, ${data_root}/train/BSD200,
${data_root}/train/DIV2K_valid_crop256, validation on ${data_root}/Set5) resolve against the data root: --data-root
DIR, else the environment variable BLINDSR_DATA, else ../shared/data beside the checkout (the folder above the
config's configs/ folder). Other relative paths resolve against the config file's folder, then the working folder."""

DATA_ROOT_ENV = "BLINDSR_DATA"
"""The environment variable naming the data root of ``${data_root}`` paths (below ``--data-root``)."""

DATA_ROOT_PLACEHOLDER = "${data_root}"
"""Written in a config's data paths (``data.train``, ``validation.data_root``); replaced by the data root."""

RESUME_CHANGEABLE = (
    "train.total_steps",
    "train.threads",
    "checkpoint.every",
    "checkpoint.keep_last",
    "log.every",
    "log.progress",
    "log.tensorboard",
)
"""The keys ``--set`` may change on ``--resume`` (the run's saved config is the base): none changes the training."""


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
        help="override a config value, e.g. --set train.optimizer.lr=1e-4 (repeatable; with --resume, only the "
        "keys listed below)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its latest checkpoint, with the run's saved config",
    )
    p.add_argument("--run-dir", "--run_dir", metavar="DIR", help="run folder (default RUNS_ROOT/EXPERIMENT/STAGE)")
    p.add_argument(
        "--data-root",
        metavar="DIR",
        help=f"the folder {DATA_ROOT_PLACEHOLDER} stands for in data paths (default: ${DATA_ROOT_ENV}, else "
        "../shared/data beside the checkout)",
    )
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


def resume_config(run_dir: Path, config_path: Path, overrides: Sequence[str]) -> tuple[ExperimentConfig, str | None]:
    """The config of ``--resume RUN_DIR``: the run's saved ``config.yaml`` with the `overrides` applied.

    Returns:
        The config, and a one-line note when the file `config_path` differs from the saved config (the differences
        are not used), else None.

    Raises:
        ConfigError: an override is malformed or invalid, or `config_path` cannot be read.
        ValueError: an override changes a key outside :data:`RESUME_CHANGEABLE`, or `config_path` is the config of
            another experiment or stage (one line each, saying what to do).
    """
    from blindsr.config import load_config, to_dict

    saved_path = run_dir / "config.yaml"
    saved = load_config(saved_path)
    cfg = load_config(saved_path, overrides=overrides)
    fixed = [k for k in _diff(to_dict(saved), to_dict(cfg)) if k not in RESUME_CHANGEABLE]
    if fixed:
        raise ValueError(
            f"--resume: --set cannot change {', '.join(fixed)}: the run continues with its saved {saved_path}; "
            f"on resume --set may change only {', '.join(RESUME_CHANGEABLE)} (start a new --run-dir for other "
            "settings)"
        )
    given = load_config(config_path)
    if (given.experiment, given.stage) != (saved.experiment, saved.stage):
        raise ValueError(
            f"--resume: {config_path} is the config of {given.experiment}/{given.stage}, but {run_dir} is a run of "
            f"{saved.experiment}/{saved.stage}; give that run's config"
        )
    differs = sorted(_diff(to_dict(saved), to_dict(given)), key=lambda key: key != "train.total_steps")
    note = None
    if differs:
        shown = ", ".join(differs[:6]) + (f" and {len(differs) - 6} more" if len(differs) > 6 else "")
        note = f"resuming with the settings saved in {saved_path}; those of {config_path} in {shown} are not used"
    return cfg, note


def run(args: argparse.Namespace) -> int:
    from blindsr.cli.main import CLIError
    from blindsr.config import load_config

    config_path = Path(args.config)
    note = None
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise CLIError(f"--resume: {run_dir} is not a run folder (no config.yaml)")
        cfg, note = resume_config(run_dir, config_path, args.overrides)
    else:
        cfg = load_config(config_path, overrides=args.overrides)
        run_dir = Path(args.run_dir) if args.run_dir else Path(cfg.runs_root) / cfg.experiment / cfg.stage
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if note and main_rank:
        print(note, flush=True)
    if not main_rank:
        return _train(args, cfg, run_dir)
    # rank 0 holds the run folder's lock from before it writes anything there until training ends (a resumed run's
    # config.yaml is read before: it is only ever replaced atomically)
    from blindsr.engine.runlock import lock_run_folder

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"cannot create the run folder {run_dir} ({e.strerror or e})") from e
    with lock_run_folder(run_dir):
        return _train(args, cfg, run_dir)


def _train(args: argparse.Namespace, cfg: Any, run_dir: Path) -> int:
    from blindsr.cli.main import CLIError
    from blindsr.config import dump_config
    from blindsr.engine.checkpoint import latest_checkpoint
    from blindsr.engine.loop import TrainingInterrupted
    from blindsr.methods import build_method

    config_path = Path(args.config)
    config_dir = config_path.resolve().parent
    if not args.resume and (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        raise CLIError(
            f"run folder {run_dir} already has checkpoints; continue it with --resume {run_dir}, "
            "or choose another --run-dir"
        )
    check_data_folders(cfg, config_dir=config_dir, data_root=args.data_root)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if main_rank:
        try:
            dump_config(cfg, run_dir / "config.yaml")
        except OSError as e:
            raise CLIError(f"could not write {run_dir / 'config.yaml'} ({e.strerror or e})") from e
    method = build_method(cfg)
    resume_line = f"blindsr train {shlex.quote(args.config)} --resume {shlex.quote(str(run_dir))}"
    if args.data_root:
        resume_line += f" --data-root {shlex.quote(args.data_root)}"
    try:
        result = train_method(
            cfg,
            method,
            run_dir=run_dir,
            resume=bool(args.resume),
            config_dir=config_dir,
            data_root=args.data_root,
            stop_after=args.stop_after,
        )
    except KeyboardInterrupt as e:
        if not main_rank:
            raise
        checkpoint = e.checkpoint if isinstance(e, TrainingInterrupted) else latest_checkpoint(run_dir)
        if checkpoint is None:
            print("interrupted before any checkpoint; start again with the same command", file=sys.stderr)
        else:
            where = f"at step {e.step}" if isinstance(e, TrainingInterrupted) else f"(last checkpoint {checkpoint})"
            print(f"interrupted {where}; resume with: {resume_line}", file=sys.stderr)
        return 130
    if main_rank:
        loss = f", last loss {result.final_loss:.5f}" if math.isfinite(result.final_loss) else ""
        best = ""
        if result.best_metric is not None:
            best = f", best {cfg.validation.metric} {result.best_metric:.4f} at step {result.best_step}"
        more = f"; resume with: {resume_line}" if result.steps < cfg.train.total_steps else ""
        print(f"{result.steps} steps{loss}{best}; run folder {result.run_dir}{more}")
    return 0


def train_method(
    cfg: ExperimentConfig,
    method: Method,
    *,
    run_dir: Path,
    resume: bool = False,
    config_dir: Path | None = None,
    data_root: str | os.PathLike[str] | None = None,
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
        data_root: what ``${data_root}`` in data paths stands for (default: see :func:`find_data_root`).
        stop_after: stop after this many optimiser steps of this call (checkpointing first).

    Raises:
        FileNotFoundError: a ``${data_root}`` folder the run needs is missing (see :func:`check_data_folders`).
        blindsr.engine.loop.TrainingInterrupted: Ctrl-C; the last completed step was checkpointed.
    """
    from blindsr.engine.loop import fit

    check_data_folders(cfg, config_dir=config_dir, data_root=data_root)
    return fit(
        cfg,
        method,
        batches=patch_batches(cfg, config_dir=config_dir, data_root=data_root),
        validation=benchmark_validation(cfg, method, config_dir=config_dir, data_root=data_root),
        run_dir=run_dir,
        resume=resume,
        stop_after=stop_after,
    )


def default_data_root(config_dir: Path | None) -> Path:
    """``../shared/data`` beside the checkout: beside the folder that holds the config's ``configs/`` folder.

    For a config outside any ``configs/`` folder (or without `config_dir`), ``../shared/data`` relative to the
    working folder.
    """
    if config_dir is not None:
        here = Path(config_dir).resolve()
        for folder in (here, *here.parents):
            if folder.name == "configs":
                return folder.parent.parent / "shared" / "data"
    return Path("..") / "shared" / "data"


def find_data_root(data_root: str | os.PathLike[str] | None, config_dir: Path | None) -> tuple[Path, str]:
    """The data root of ``${data_root}`` paths, and where it came from (for messages).

    `data_root` (``--data-root``) if given, else the environment variable ``BLINDSR_DATA`` if set and not empty,
    else :func:`default_data_root`. Relative values are relative to the working folder.
    """
    if data_root is not None and str(data_root).strip():
        return Path(data_root).expanduser(), "--data-root"
    env = os.environ.get(DATA_ROOT_ENV, "").strip()
    if env:
        return Path(env).expanduser(), DATA_ROOT_ENV
    return default_data_root(config_dir), f"the default, ../shared/data beside the checkout; {DATA_ROOT_ENV} is unset"


def resolve_data_paths(
    folders: Sequence[str], config_dir: Path | None, *, data_root: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Data folders: ``${data_root}/...`` under the data root (:func:`find_data_root`); else absolute; else relative to
    the config file's folder if it exists there; else to the working folder.

    Raises:
        ValueError: a path holds another ``${...}`` placeholder.
    """
    out = []
    for f in folders:
        if DATA_ROOT_PLACEHOLDER in f:
            f = f.replace(DATA_ROOT_PLACEHOLDER, str(find_data_root(data_root, config_dir)[0]))
        if "${" in f:
            raise ValueError(f"data path {f!r}: the only placeholder is {DATA_ROOT_PLACEHOLDER}")
        p = Path(f).expanduser()
        if not p.is_absolute() and config_dir is not None and (config_dir / p).exists():
            p = config_dir / p
        out.append(p)
    return out


def check_data_folders(
    cfg: ExperimentConfig, *, config_dir: Path | None, data_root: str | os.PathLike[str] | None = None
) -> None:
    """Check that the ``${data_root}`` folders the run reads exist (training folders; with validation, the sets).

    Raises:
        FileNotFoundError: one line naming the first missing folder, the data root and where it came from, what to
            set (``BLINDSR_DATA`` or ``--data-root``) and the folders expected under it.
    """
    wanted = [f for f in cfg.data.train if DATA_ROOT_PLACEHOLDER in f]
    vc = cfg.validation
    if vc.every and DATA_ROOT_PLACEHOLDER in vc.data_root:
        wanted += [f"{vc.data_root.rstrip('/')}/{name}" for name in vc.datasets]
    if not wanted:
        return
    folders = resolve_data_paths(wanted, config_dir, data_root=data_root)
    missing = [folder for folder in folders if not folder.is_dir()]
    if not missing:
        return
    root, source = find_data_root(data_root, config_dir)
    expected = ", ".join(f.replace(DATA_ROOT_PLACEHOLDER, "").strip("/") for f in wanted)
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    raise FileNotFoundError(
        f"data folder {missing[0]} not found{more}: the data root is {root} ({source}); set {DATA_ROOT_ENV}=DIR or "
        f"pass --data-root DIR, where DIR holds {expected}"
    )


class PatchBatches:
    """The `BatchSource` of ``blindsr train``: `PatchSampler` patches and a step generator, both seeded by position.

    Micro-batch ``(step, micro, rank)`` is ``sampler.batch(step * accumulate + micro, rank=rank)`` with a CPU
    ``torch.Generator`` seeded with ``derive_seed("step", seed, step, micro, rank)``
    (:func:`blindsr.degradations.noise.derive_seed`) for the method's degradations and noise.
    """

    def __init__(self, sampler: PatchSampler, *, seed: int, accumulate: int, notes: Sequence[str] = ()) -> None:
        self._sampler = sampler
        self._seed = seed
        self._accumulate = accumulate
        self._notes = tuple(notes)

    @property
    def description(self) -> str:
        return f"{self._sampler.num_images} HR images"

    @property
    def notes(self) -> tuple[str, ...]:
        """Lines the loop prints once at the start of the run (the images ``data.skip_small`` dropped)."""
        return self._notes

    def batch(self, step: int, micro: int, *, rank: int) -> TrainingBatch:
        import torch

        from blindsr.degradations.noise import derive_seed
        from blindsr.engine.loop import TrainingBatch

        hr = self._sampler.batch(step * self._accumulate + micro, rank=rank)
        generator = torch.Generator().manual_seed(derive_seed("step", self._seed, step, micro, rank))
        return TrainingBatch(hr=hr, generator=generator)


def patch_batches(
    cfg: ExperimentConfig, *, config_dir: Path | None, data_root: str | os.PathLike[str] | None = None
) -> Callable[[torch.device], BatchSource]:
    """The factory of the run's `PatchBatches` (``data.*`` of `cfg`; images kept on the device with ``on_device``).

    The images are read when the factory is called (by ``fit``, once it holds the run folder's lock).
    """

    def build(device: torch.device) -> BatchSource:
        from blindsr.data.patch_sampler import PatchSampler

        notes: list[str] = []
        sampler = PatchSampler(
            folders=resolve_data_paths(cfg.data.train, config_dir, data_root=data_root),
            patch_size=cfg.data.patch_size,
            batch_size=cfg.data.batch_size,
            augment=cfg.data.augment,
            device=device if cfg.data.on_device else "cpu",
            skip_small=cfg.data.skip_small,
            seed=cfg.seed,
            note=notes.append,
        )
        return PatchBatches(sampler, seed=cfg.seed, accumulate=cfg.train.accumulate, notes=notes)

    return build


def benchmark_validation(
    cfg: ExperimentConfig,
    method: Method,
    *,
    config_dir: Path | None,
    data_root: str | os.PathLike[str] | None = None,
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
        root = resolve_data_paths((vc.data_root,), config_dir, data_root=data_root)[0]
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
