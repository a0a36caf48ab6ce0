"""One training loop for every method: devices, precision, optimiser, schedule, EMA, DDP, checkpoints, logs, validation.

The loop knows no data set, degradation or benchmark. Its caller passes the training batches (a `BatchSource`) and,
optionally, the validation (a `Validator`), each built by a factory that :func:`fit` calls once with the training
device; :mod:`blindsr.cli.train` wires the patch sampler and the benchmark runner in.

:func:`fit` is three parts: :func:`_setup` (devices, lock, data, networks, optimiser, resume, logger), :func:`_step`
(one optimiser step: gradient accumulation, the non-finite check, clipping, scheduler, EMA) and :func:`_after_step`
(logging, validation and ``best/``, checkpoints, ``stop_after``).

Ctrl-C: in a single-process run, SIGINT only sets a flag; the step in progress finishes, a checkpoint of it is saved
and :func:`fit` raises :class:`TrainingInterrupted` (a ``KeyboardInterrupt``), so no completed step is lost. A second
Ctrl-C, or a ``KeyboardInterrupt`` raised by other code, interrupts at once; the last completed step is still saved
unless the interrupt came in the middle of the optimiser's update (then the previous checkpoint stands). Under DDP a
``KeyboardInterrupt`` passes through unchanged (the ranks could be at different steps): the last regular checkpoint
stands.

Determinism and exact resume: a `BatchSource` gives the micro-batch ``(step, micro, rank)`` (HR patches and the
``torch.Generator`` of the step's degradations and noise) as a pure function of those numbers, so nothing about the
data stream needs saving. A checkpoint holds the networks, the EMA, the optimiser, the scheduler, the gradient
scaler, every global RNG state and the step; on CPU a resumed run reproduces the uninterrupted one bit for bit
(tested).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from blindsr.config.schema import ExperimentConfig, InitConfig
from blindsr.engine import distributed
from blindsr.engine.checkpoint import (
    CheckpointError,
    copy_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    load_latest_checkpoint,
    load_network_weights,
    recover_best,
    save_checkpoint,
    save_weights,
)
from blindsr.engine.ema import EMA
from blindsr.engine.optim import build_optimizer, build_scheduler
from blindsr.engine.runlock import lock_run_folder
from blindsr.types import Method

if TYPE_CHECKING:  # pragma: no cover
    from blindsr.engine.logging import RunLogger

__all__ = [
    "BatchSource",
    "FitResult",
    "NonFiniteLossError",
    "TrainingBatch",
    "TrainingInterrupted",
    "Validator",
    "fit",
]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C) after `step` completed steps; `checkpoint` holds that step (None: nothing
    could be saved, see the message), so ``--resume`` loses no completed step."""

    def __init__(self, message: str, *, step: int, checkpoint: Path | None, run_dir: Path) -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint
        self.run_dir = run_dir


@dataclass(frozen=True, slots=True)
class FitResult:
    run_dir: Path
    steps: int
    final_loss: float
    best_metric: float | None
    best_step: int | None


@dataclass(frozen=True, slots=True)
class TrainingBatch:
    """One micro-batch of training data.

    Attributes:
        hr: HR patches (B, 3, P, P) on any device (the loop moves them to the training device).
        generator: the only source of randomness of the method's step on this micro-batch (degradation
            parameters, noise); see `blindsr.types.Method.training_step`.
    """

    hr: Tensor
    generator: torch.Generator


class BatchSource(Protocol):
    """The training batches of a run, addressed by position rather than read as a stream.

    ``batch(step, micro, rank=rank)`` must depend only on its arguments (and on how the source was built): a resumed
    run then asks for the batches of the steps after its checkpoint and gets exactly those the uninterrupted run
    would have used, and each DDP rank reads its own part of every step (the global batch of a data-parallel step is
    the concatenation of the ranks' batches).

    A source may also have ``notes``, a sequence of lines that the loop prints and logs once, after the start message
    of the run (``blindsr train``'s source names the images ``data.skip_small`` dropped there).
    """

    @property
    def description(self) -> str:
        """A few words for the start message of a run, e.g. ``"800 HR images"``."""
        ...

    def batch(self, step: int, micro: int, *, rank: int) -> TrainingBatch:
        """Micro-batch `micro` (0 to ``train.accumulate - 1``) of optimiser step `step` (0-based) on `rank`."""
        ...


def _notes(data: BatchSource) -> tuple[str, ...]:
    """A source's optional ``notes`` (lines for the start of a run, e.g. which images were dropped); () without."""
    notes = getattr(data, "notes", ())
    return tuple(str(line) for line in notes)


Validator = Callable[[Mapping[str, nn.Module], int], Mapping[str, float]]
"""``validate(networks, step) -> {metric name: value}``: scores the networks (the EMA copies when the run keeps an EMA;
in eval mode) after optimiser step `step`. The loop calls it on rank 0 only, logs what it returns as a ``val`` record
and keeps the checkpoint with the highest ``validation.metric`` as ``best/``."""


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _init_networks(method: Method, inits: tuple[InitConfig, ...], run_dir: Path) -> list[str]:
    """Load earlier stages' weights into networks (or frozen members) of the method, strictly."""
    done = []
    for init in inits:
        if init.from_stage:
            source = run_dir.parent / init.from_stage / "final" / "networks.safetensors"
        else:
            source = Path(init.from_run).expanduser() / "final" / "networks.safetensors"
        if init.network in method.networks:
            target: nn.Module = method.networks[init.network]
        else:
            member = getattr(method, init.network, None)
            if not isinstance(member, nn.Module):
                known = ", ".join(method.networks.keys())
                raise ValueError(f"init: the method has no network {init.network!r} (networks: {known})")
            target = member
        if not source.is_file():
            raise FileNotFoundError(
                f"init: {source} not found; run the stage {init.from_stage or init.from_run!r} first"
            )
        load_network_weights(
            target,
            source,
            prefix=f"{init.source_network or init.network}.",
            key_map=init.key_map,
            exclude=init.exclude,
        )
        if init.freeze:
            target.requires_grad_(False)
        done.append(f"{init.network} <- {source}")
    return done


@contextlib.contextmanager
def _maybe_no_sync(nets: Mapping[str, nn.Module], active: bool) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        if active:
            for net in nets.values():
                if isinstance(net, nn.parallel.DistributedDataParallel):
                    stack.enter_context(net.no_sync())
        yield


def _lock(info: distributed.DistInfo, run_dir: Path, stack: contextlib.ExitStack) -> None:
    """Rank 0 takes the run folder's lock; every rank learns whether it got it, so all stop together if not."""
    error: CheckpointError | None = None
    if info.is_main:
        try:
            stack.enter_context(lock_run_folder(run_dir))
        except CheckpointError as e:
            error = e
    if distributed.broadcast_float(info, 0.0 if error else 1.0) < 1.0:
        raise error or CheckpointError(f"run folder {run_dir} is in use by another training process (seen by rank 0)")


def _resume(
    info: distributed.DistInfo,
    run_dir: Path,
    *,
    networks: nn.ModuleDict,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: EMA | None,
    scaler: torch.amp.GradScaler | None,
    notes: list[str],
) -> dict[str, Any]:
    """Rank 0 picks the newest intact checkpoint (and says which it skipped); the other ranks load the same one."""
    ema_networks = ema.networks if ema else None
    chosen, state, error = -1, None, None
    if info.is_main:
        try:
            path, state = load_latest_checkpoint(
                run_dir,
                networks=networks,
                optimizer=optimizer,
                scheduler=scheduler,
                ema_networks=ema_networks,
                scaler=scaler,
                note=notes.append,
            )
            chosen = int(state["step"])
        except Exception as e:  # tell the other ranks before stopping, so that none waits forever
            error = e
    chosen = int(distributed.broadcast_float(info, float(chosen)))
    if error is not None:
        raise error
    if chosen < 0:
        raise CheckpointError(f"--resume: rank 0 found no intact checkpoint in {run_dir / 'checkpoints'}")
    if state is None:
        state = load_checkpoint(
            run_dir / "checkpoints" / f"step_{chosen:08d}",
            networks=networks,
            optimizer=optimizer,
            scheduler=scheduler,
            ema_networks=ema_networks,
            scaler=scaler,
        )
    return state


def fit(
    cfg: ExperimentConfig,
    method: Method,
    *,
    batches: Callable[[torch.device], BatchSource],
    validation: Callable[[torch.device], Validator] | None = None,
    run_dir: Path,
    resume: bool = False,
    stop_after: int | None = None,
) -> FitResult:
    """Train `method` as `cfg` says, on the batches of `batches`, writing checkpoints and logs to `run_dir`.

    Rank 0 holds the run folder's lock (:mod:`blindsr.engine.runlock`) for the whole call. With `resume`, the newest
    intact checkpoint is restored (damaged newer ones are moved aside, with a message), an interrupted update of
    ``best/`` is repaired, and the log loses the records of steps after the restored one. Resuming a run that has
    already reached ``train.total_steps`` trains nothing and reports the loss saved with its last checkpoint.

    Args:
        cfg: the resolved experiment config.
        method: the method (its networks on the CPU, as built).
        batches: builds the run's `BatchSource` for the training device it is given (called once, after the lock
            is taken and before the networks are initialised).
        validation: builds the `Validator` for the training device (called once, when ``validation.every`` > 0);
            required then.
        run_dir: the run folder (created; with `resume`, the latest intact checkpoint there is restored).
        resume: continue from the latest intact checkpoint in `run_dir`.
        stop_after: stop after this many optimiser steps in this call (checkpointing first), e.g. to train in
            chunks or to simulate an interruption in tests. The run can then be resumed.

    Returns:
        A `FitResult`.

    Raises:
        NonFiniteLossError: the loss became NaN/inf (the last good checkpoint is kept and named).
        TrainingInterrupted: Ctrl-C (or another ``KeyboardInterrupt``) in a single-process run, after the last
            completed step was checkpointed (see the module's notes).
        CheckpointError: a checkpoint could not be written (the previous one survives), no intact checkpoint to
            resume from, or another process is training into `run_dir`.
        ValueError: ``validation.every`` > 0 without `validation`; fp16 without CUDA; resuming beyond
            ``train.total_steps``.
    """
    if cfg.validation.every and validation is None:
        raise ValueError("fit: validation.every > 0 needs a `validation` (a Validator factory)")
    info = distributed.setup(cfg.train.device)
    with contextlib.ExitStack() as stack:
        stack.callback(distributed.cleanup, info)
        run = _setup(cfg, method, info, stack, batches=batches, validation=validation, run_dir=run_dir, resume=resume)
        if resume and run.step == cfg.train.total_steps:  # already finished: nothing to train; final/ is (re)written
            run.logger.message(f"the run already reached train.total_steps={cfg.train.total_steps}; nothing to train")
            _write_final(run)
            distributed.barrier(info)
            return run.result()
        ctrl_c = stack.enter_context(_deferred_sigint(enabled=not info.distributed))
        try:
            while run.step < cfg.train.total_steps:
                loss, logs = _step(run)
                if _after_step(run, loss, logs, stop_after=stop_after):
                    return run.result()
                if ctrl_c.requested and run.step < cfg.train.total_steps:
                    raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            if info.distributed:
                raise
            raise _interrupted(run) from interrupt
        _checkpoint(run)
        _write_final(run)
        distributed.barrier(info)
        return run.result()


class _CtrlC:
    requested: bool = False


@contextlib.contextmanager
def _deferred_sigint(*, enabled: bool) -> Iterator[_CtrlC]:
    """While training, the first SIGINT sets ``requested`` (the loop stops after the step); the second is Python's.

    Installed only in the main thread and only over Python's own SIGINT handler (an ignored or custom one is left
    alone).
    """
    state = _CtrlC()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield state
        return

    def request(signum: int, frame: object) -> None:
        state.requested = True
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

    signal.signal(signal.SIGINT, request)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(run: _Run) -> TrainingInterrupted:
    """Checkpoint the last completed step (unless saved already, or the optimiser's update was cut in the middle)."""
    run.logger.end_progress()
    checkpoint: Path | None = None
    if run.updating:
        last = latest_checkpoint(run.run_dir)
        checkpoint = last
        text = f"interrupted during the update of step {run.step + 1}; " + (
            f"the last checkpoint is {last.name}" if last else "no checkpoint was written yet"
        )
    elif run.step == run.saved_step:
        checkpoint = latest_checkpoint(run.run_dir)
        text = f"interrupted at step {run.step}" + (f"; checkpoint {checkpoint.name}" if checkpoint else "")
    elif run.step == 0:
        text = "interrupted before the first step; nothing to save"
    else:
        checkpoint = _checkpoint(run)
        text = f"interrupted at step {run.step}; saved checkpoint {checkpoint.name if checkpoint else ''}"
    run.logger.message(text)
    return TrainingInterrupted(text, step=run.step, checkpoint=checkpoint, run_dir=run.run_dir)


@dataclass(slots=True, eq=False)
class _Run:
    """What :func:`_setup` builds for one :func:`fit` call, and the counters the steps advance."""

    cfg: ExperimentConfig
    method: Method
    info: distributed.DistInfo
    run_dir: Path
    data: BatchSource
    validator: Validator | None
    networks: nn.ModuleDict  # on the device; checkpointed
    nets: dict[str, nn.Module]  # what the method calls: DDP-wrapped when distributed and trainable
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    ema: EMA | None
    logger: RunLogger
    step: int  # optimiser steps done (the next step's 0-based index)
    best_metric: float | None
    best_step: int | None
    last_loss: float
    steps_this_call: int = 0
    saved_step: int = -1  # the step of the newest checkpoint this call wrote or resumed from
    updating: bool = False  # inside the optimiser's update of a step (a checkpoint now would be inconsistent)
    t_last: float = 0.0  # time and step of the last train record, for it/s
    step_last: int = 0

    def extra(self) -> dict[str, Any]:
        """The loop's own state saved with a checkpoint (``state.pt``'s ``extra``)."""
        return {
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "world_size": self.info.world_size,
            "last_loss": self.last_loss,
        }

    def result(self) -> FitResult:
        return FitResult(self.run_dir, self.step, self.last_loss, self.best_metric, self.best_step)


def _setup(
    cfg: ExperimentConfig,
    method: Method,
    info: distributed.DistInfo,
    stack: contextlib.ExitStack,
    *,
    batches: Callable[[torch.device], BatchSource],
    validation: Callable[[torch.device], Validator] | None,
    run_dir: Path,
    resume: bool,
) -> _Run:
    """Devices, the lock, data, inits, networks (DDP), optimiser, scheduler, scaler, EMA, resume, logger."""
    from blindsr.engine.logging import RunLogger

    tc = cfg.train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    if tc.precision == "fp16" and info.device.type != "cuda":
        raise ValueError("train.precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    device = info.device
    run_dir.mkdir(parents=True, exist_ok=True)
    _lock(info, run_dir, stack)

    data = batches(device)
    inits = _init_networks(method, cfg.init, run_dir)
    validator = validation(device) if cfg.validation.every and validation is not None else None
    networks = method.networks.to(device)
    if tc.channels_last:
        networks.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    nets: dict[str, nn.Module] = {}
    for name, net in networks.items():
        trainable = any(p.requires_grad for p in net.parameters())
        if info.distributed and trainable:
            ids = [device.index] if device.type == "cuda" else None
            nets[name] = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        else:
            nets[name] = net
    optimizer = build_optimizer(networks.parameters(), tc.optimizer)
    scheduler = build_scheduler(optimizer, tc.scheduler, tc.total_steps)
    scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
    ema = EMA(networks, decay=tc.ema_decay, warmup=tc.ema_warmup) if tc.ema_decay > 0 else None

    start_step = 0
    best_metric: float | None = None
    best_step: int | None = None
    last_loss = math.nan
    notes: list[str] = []
    if resume:
        state = _resume(
            info,
            run_dir,
            networks=networks,
            optimizer=optimizer,
            scheduler=scheduler,
            ema=ema,
            scaler=scaler,
            notes=notes,
        )
        start_step = int(state["step"])
        best_metric = state["extra"].get("best_metric")
        best_step = state["extra"].get("best_step")
        last_loss = float(state["extra"].get("last_loss", math.nan))
        if start_step > tc.total_steps:
            raise ValueError(
                f"--resume: the run is at step {start_step}, beyond train.total_steps={tc.total_steps}; "
                f"use --set train.total_steps={start_step} or more"
            )
    if info.is_main:
        repaired = recover_best(run_dir / "checkpoints", best_step=best_step)
        if repaired:
            notes.append(repaired)

    logger = RunLogger(
        run_dir=run_dir,
        total_steps=tc.total_steps,
        start_step=start_step,
        enabled=info.is_main,
        tensorboard=cfg.log.tensorboard,
        progress=cfg.log.progress,
    )
    stack.callback(logger.close)
    logger.message(
        f"{cfg.experiment}/{cfg.stage}: method {cfg.method.name} x{cfg.method.scale} on {device} "
        f"({info.world_size} process{'es' if info.world_size > 1 else ''}), {data.description}, "
        f"batch {cfg.data.batch_size}x{info.world_size}x{tc.accumulate}, {tc.precision}"
        + (f", resumed at step {start_step}" if resume else "")
    )
    for line in (*notes, *_notes(data)):
        logger.message(line)
    for line in inits:
        logger.message(f"init: {line}")
    return _Run(
        cfg=cfg,
        method=method,
        info=info,
        run_dir=run_dir,
        data=data,
        validator=validator,
        networks=networks,
        nets=nets,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        ema=ema,
        logger=logger,
        step=start_step,
        best_metric=best_metric,
        best_step=best_step,
        last_loss=last_loss,
        saved_step=start_step if resume else -1,
        t_last=time.perf_counter(),
        step_last=start_step,
    )


def _step(run: _Run) -> tuple[float, dict[str, float]]:
    """One optimiser step over ``train.accumulate`` micro-batches; returns the step's mean loss and logged terms.

    Raises:
        NonFiniteLossError: a micro-batch's loss is NaN/inf on any rank (all ranks stop together).
    """
    tc, info, device = run.cfg.train, run.info, run.info.device
    step = run.step
    run.networks.train()
    run.optimizer.zero_grad(set_to_none=True)
    logs: dict[str, float] = {}
    total = 0.0
    for micro in range(tc.accumulate):
        batch = run.data.batch(step, micro, rank=info.rank)
        hr = batch.hr.to(device, non_blocking=True)
        with _maybe_no_sync(run.nets, micro < tc.accumulate - 1), _autocast(device, tc.precision):
            out = run.method.training_step(hr, step=step, generator=batch.generator, nets=run.nets)
            loss = out.loss / tc.accumulate
        finite = 1.0 if bool(torch.isfinite(out.loss.detach()).all()) else 0.0
        if distributed.all_min(info, finite) < 1.0:
            last = latest_checkpoint(run.run_dir)
            where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
            shown = ", ".join(f"{k}={float(v):.4g}" for k, v in out.logs.items())
            raise NonFiniteLossError(
                f"non-finite loss at step {step} ({float(out.loss.detach()):.4g}; {shown}); training stopped, "
                f"{where}. Lower train.optimizer.lr, enable train.grad_clip, or check the data."
            )
        with _maybe_no_sync(run.nets, micro < tc.accumulate - 1):
            (run.scaler.scale(loss) if run.scaler else loss).backward()
        total += float(out.loss.detach()) / tc.accumulate
        for k, v in out.logs.items():
            logs[k] = logs.get(k, 0.0) + float(v) / tc.accumulate
    run.updating = True
    if run.scaler is not None:
        run.scaler.unscale_(run.optimizer)
    if tc.grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(run.networks.parameters(), tc.grad_clip)
        logs["grad_norm"] = float(grad_norm)
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update(run.networks, step=step)
    run.step += 1
    run.updating = False
    run.steps_this_call += 1
    run.last_loss = total
    return total, logs


def _after_step(run: _Run, loss: float, logs: Mapping[str, float], *, stop_after: int | None) -> bool:
    """Log the step, validate (a new best is checkpointed into ``best/``), checkpoint; True: `stop_after` is reached.

    At most one checkpoint is written per step: a new best, else one every ``checkpoint.every`` steps (the last step
    is left to :func:`fit`, which checkpoints it and writes ``final/``), else one because the call stops here.
    """
    cfg, step = run.cfg, run.step
    total_steps = cfg.train.total_steps
    if step % cfg.log.every == 0 or step == total_steps:
        now = time.perf_counter()
        rate = (step - run.step_last) / max(now - run.t_last, 1e-9)
        run.t_last, run.step_last = now, step
        lr = run.optimizer.param_groups[0]["lr"]
        run.logger.log(step, {"loss": loss, **logs, "lr": lr, "it_per_s": rate})
    run.logger.update(step, {"loss": loss})

    saved = False
    if run.validator is not None and (step % cfg.validation.every == 0 or step == total_steps):
        metric = _validate(run)
        if run.best_metric is None or metric > run.best_metric:
            run.best_metric, run.best_step = metric, step
            ckpt = _checkpoint(run)
            saved = True
            if ckpt is not None:
                copy_checkpoint(ckpt, run.run_dir / "checkpoints" / "best")
            run.logger.message(f"step {step}: {cfg.validation.metric} {metric:.4f} (best so far)")
    if not saved and step % cfg.checkpoint.every == 0 and step < total_steps:
        _checkpoint(run)
        saved = True
    if stop_after is not None and run.steps_this_call >= stop_after and step < total_steps:
        if not saved:
            _checkpoint(run)
        run.logger.end_progress()
        run.logger.message(f"stopped after {run.steps_this_call} steps at step {step}; resume with --resume")
        return True
    return False


def _validate(run: _Run) -> float:
    """Run the validator on rank 0 (EMA networks if any, in eval mode), log its metrics; ``validation.metric``."""
    assert run.validator is not None
    name = run.cfg.validation.metric
    metrics: Mapping[str, float] = {}
    value = math.nan
    if run.info.is_main:
        networks = run.ema.networks if run.ema else run.networks
        was_training = networks.training
        networks.eval()
        try:
            metrics = run.validator(dict(networks.items()), run.step)
        finally:
            networks.train(was_training)
        if name not in metrics:
            raise ValueError(f"the validator returned {sorted(metrics)}, not validation.metric {name!r}")
        value = float(metrics[name])
    value = distributed.broadcast_float(run.info, value)
    run.logger.log(run.step, {name: value, **{k: v for k, v in metrics.items() if k != name}}, kind="val")
    return value


def _checkpoint(run: _Run) -> Path | None:
    """Rank 0 saves a checkpoint of the current step (the other ranks wait); its folder on rank 0, else None."""
    path = None
    if run.info.is_main:
        path = save_checkpoint(
            run.run_dir,
            step=run.step,
            networks=run.networks,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            ema_networks=run.ema.networks if run.ema else None,
            scaler=run.scaler,
            extra=run.extra(),
            keep_last=run.cfg.checkpoint.keep_last,
        )
    run.saved_step = run.step
    distributed.barrier(run.info)
    return path


def _write_final(run: _Run) -> None:
    """Rank 0 writes ``final/networks.safetensors`` (and ``final/ema.safetensors``): what later stages read."""
    if not run.info.is_main:
        return
    run.logger.end_progress()
    final = run.run_dir / "final"
    final.mkdir(exist_ok=True)
    save_weights(run.networks, final / "networks.safetensors", metadata={"step": str(run.step)})
    if run.ema is not None:
        save_weights(run.ema.networks, final / "ema.safetensors", metadata={"step": str(run.step)})
    run.logger.message(f"done: {run.step} steps; final weights in {final}")
