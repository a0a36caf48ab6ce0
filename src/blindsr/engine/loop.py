"""One training loop for every method: devices, precision, optimiser, schedule, EMA, DDP, checkpoints, logs, validation.

Determinism and exact resume: batch ``s`` (HR patches) and the step's ``torch.Generator`` (degradations, noise) are
pure functions of (seed, step, micro-batch, rank), so nothing about the data stream needs saving. A checkpoint holds
the networks, the EMA, the optimiser, the scheduler, the gradient scaler, every global RNG state and the step; on
CPU a resumed run reproduces the uninterrupted one bit for bit (tested).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blindsr.config.schema import ExperimentConfig, InitConfig
from blindsr.degradations.noise import derive_seed
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

__all__ = ["FitResult", "NonFiniteLossError", "fit", "resolve_data_paths"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


@dataclass(frozen=True, slots=True)
class FitResult:
    run_dir: Path
    steps: int
    final_loss: float
    best_metric: float | None
    best_step: int | None


def resolve_data_paths(folders: tuple[str, ...], config_dir: Path | None) -> list[Path]:
    """Training folders: absolute, else relative to the config file's folder if it exists there, else to the CWD."""
    out = []
    for f in folders:
        p = Path(f).expanduser()
        if not p.is_absolute() and config_dir is not None and (config_dir / p).exists():
            p = config_dir / p
        out.append(p)
    return out


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


def fit(
    cfg: ExperimentConfig,
    method: Method,
    *,
    run_dir: Path,
    resume: bool = False,
    config_dir: Path | None = None,
    stop_after: int | None = None,
) -> FitResult:
    """Train `method` as `cfg` says, writing checkpoints and logs to `run_dir`.

    Rank 0 holds the run folder's lock (:mod:`blindsr.engine.runlock`) for the whole call. With `resume`, the newest
    intact checkpoint is restored (damaged newer ones are moved aside, with a message), an interrupted update of
    ``best/`` is repaired, and the log loses the records of steps after the restored one. Resuming a run that has
    already reached ``train.total_steps`` trains nothing and reports the loss saved with its last checkpoint.

    Args:
        cfg: the resolved experiment config.
        method: the method (its networks on the CPU, as built).
        run_dir: the run folder (created; with `resume`, the latest intact checkpoint there is restored).
        resume: continue from the latest intact checkpoint in `run_dir`.
        config_dir: folder of the config file (relative data paths resolve against it).
        stop_after: stop after this many optimiser steps in this call (checkpointing first), e.g. to train in
            chunks or to simulate an interruption in tests. The run can then be resumed.

    Returns:
        A `FitResult`.

    Raises:
        NonFiniteLossError: the loss became NaN/inf (the last good checkpoint is kept and named).
        CheckpointError: a checkpoint could not be written (the previous one survives), no intact checkpoint to
            resume from, or another process is training into `run_dir`.
    """
    info = distributed.setup(cfg.train.device)
    with contextlib.ExitStack() as stack:
        stack.callback(distributed.cleanup, info)
        return _fit(
            cfg, method, info, stack, run_dir=run_dir, resume=resume, config_dir=config_dir, stop_after=stop_after
        )


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


def _fit(
    cfg: ExperimentConfig,
    method: Method,
    info: distributed.DistInfo,
    stack: contextlib.ExitStack,
    *,
    run_dir: Path,
    resume: bool,
    config_dir: Path | None,
    stop_after: int | None,
) -> FitResult:
    from blindsr.data.patch_sampler import PatchSampler
    from blindsr.engine.logging import RunLogger

    tc = cfg.train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    if tc.precision == "fp16" and info.device.type != "cuda":
        raise ValueError("train.precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    device = info.device
    run_dir.mkdir(parents=True, exist_ok=True)
    _lock(info, run_dir, stack)

    sampler = PatchSampler(
        folders=resolve_data_paths(cfg.data.train, config_dir),
        patch_size=cfg.data.patch_size,
        batch_size=cfg.data.batch_size,
        augment=cfg.data.augment,
        device=device if cfg.data.on_device else "cpu",
        skip_small=cfg.data.skip_small,
        seed=cfg.seed,
    )
    inits = _init_networks(method, cfg.init, run_dir)
    val_root = resolve_data_paths((cfg.validation.data_root,), config_dir)[0] if cfg.validation.every else None
    if val_root is not None and not val_root.is_dir():
        raise FileNotFoundError(f"validation.data_root {val_root} does not exist (validation.every > 0)")
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
        f"({info.world_size} process{'es' if info.world_size > 1 else ''}), {sampler.num_images} HR images, "
        f"batch {cfg.data.batch_size}x{info.world_size}x{tc.accumulate}, {tc.precision}"
        + (f", resumed at step {start_step}" if resume else "")
    )
    for line in notes:
        logger.message(line)
    for line in inits:
        logger.message(f"init: {line}")

    def extra() -> dict[str, Any]:
        return {
            "best_metric": best_metric,
            "best_step": best_step,
            "world_size": info.world_size,
            "last_loss": last_loss,
        }

    def checkpoint(step: int) -> Path | None:
        path = None
        if info.is_main:
            path = save_checkpoint(
                run_dir,
                step=step,
                networks=networks,
                optimizer=optimizer,
                scheduler=scheduler,
                ema_networks=ema.networks if ema else None,
                scaler=scaler,
                extra=extra(),
                keep_last=cfg.checkpoint.keep_last,
            )
        distributed.barrier(info)
        return path

    def write_final(step: int) -> None:
        if not info.is_main:
            return
        final = run_dir / "final"
        final.mkdir(exist_ok=True)
        save_weights(networks, final / "networks.safetensors", metadata={"step": str(step)})
        if ema is not None:
            save_weights(ema.networks, final / "ema.safetensors", metadata={"step": str(step)})
        logger.message(f"done: {step} steps; final weights in {final}")

    step = start_step
    if resume and start_step == tc.total_steps:  # already finished: nothing to train; final/ is (re)written
        logger.message(f"the run already reached train.total_steps={tc.total_steps}; nothing to train")
        write_final(step)
        distributed.barrier(info)
        return FitResult(run_dir, step, last_loss, best_metric, best_step)

    steps_this_call = 0
    t_last, step_last = time.perf_counter(), start_step
    while step < tc.total_steps:
        networks.train()
        optimizer.zero_grad(set_to_none=True)
        logs: dict[str, float] = {}
        total = 0.0
        for micro in range(tc.accumulate):
            hr = sampler.batch(step * tc.accumulate + micro, rank=info.rank).to(device, non_blocking=True)
            gen = torch.Generator().manual_seed(derive_seed("step", cfg.seed, step, micro, info.rank))
            with _maybe_no_sync(nets, micro < tc.accumulate - 1), _autocast(device, tc.precision):
                out = method.training_step(hr, step=step, generator=gen, nets=nets)
                loss = out.loss / tc.accumulate
            finite = 1.0 if bool(torch.isfinite(out.loss.detach()).all()) else 0.0
            if distributed.all_min(info, finite) < 1.0:
                last = latest_checkpoint(run_dir)
                where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
                shown = ", ".join(f"{k}={float(v):.4g}" for k, v in out.logs.items())
                raise NonFiniteLossError(
                    f"non-finite loss at step {step} ({float(out.loss.detach()):.4g}; {shown}); training stopped, "
                    f"{where}. Lower train.optimizer.lr, enable train.grad_clip, or check the data."
                )
            with _maybe_no_sync(nets, micro < tc.accumulate - 1):
                (scaler.scale(loss) if scaler else loss).backward()
            total += float(out.loss.detach()) / tc.accumulate
            for k, v in out.logs.items():
                logs[k] = logs.get(k, 0.0) + float(v) / tc.accumulate
        if scaler is not None:
            scaler.unscale_(optimizer)
        if tc.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(networks.parameters(), tc.grad_clip)
            logs["grad_norm"] = float(grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(networks, step=step)
        step += 1
        steps_this_call += 1
        last_loss = total

        if step % cfg.log.every == 0 or step == tc.total_steps:
            now = time.perf_counter()
            rate = (step - step_last) / max(now - t_last, 1e-9)
            t_last, step_last = now, step
            logger.log(step, {"loss": total, **logs, "lr": optimizer.param_groups[0]["lr"], "it_per_s": rate})
        logger.update(step, {"loss": total})

        saved = False
        if cfg.validation.every and (step % cfg.validation.every == 0 or step == tc.total_steps):
            val_nets = ema.networks if ema else networks
            metric = distributed.broadcast_float(info, _validate(cfg, method, val_nets, info, val_root))
            logger.log(step, {cfg.validation.metric: metric}, kind="val")
            if best_metric is None or metric > best_metric:
                best_metric, best_step = metric, step
                ckpt = checkpoint(step)
                saved = True
                if ckpt is not None:
                    copy_checkpoint(ckpt, run_dir / "checkpoints" / "best")
                logger.message(f"step {step}: {cfg.validation.metric} {metric:.4f} (best so far)")
        if not saved and step % cfg.checkpoint.every == 0 and step < tc.total_steps:
            checkpoint(step)
            saved = True
        if stop_after is not None and steps_this_call >= stop_after and step < tc.total_steps:
            if not saved:
                checkpoint(step)
            logger.message(f"stopped after {steps_this_call} steps at step {step}; resume with --resume")
            return FitResult(run_dir, step, last_loss, best_metric, best_step)

    checkpoint(step)
    write_final(step)
    distributed.barrier(info)
    return FitResult(run_dir, step, last_loss, best_metric, best_step)


def _validate(
    cfg: ExperimentConfig, method: Method, networks: nn.ModuleDict, info: distributed.DistInfo, root: Path | None
) -> float:
    """Mean PSNR (or SSIM) of the method on the validation preset; computed on rank 0 only (NaN elsewhere)."""
    if not info.is_main:
        return math.nan
    from blindsr.degradations.presets import get_eval_preset
    from blindsr.eval.benchmark import evaluate

    vc = cfg.validation
    preset = get_eval_preset(vc.preset)
    was_training = networks.training
    networks.eval()
    try:
        cells = evaluate(
            method.inference(dict(networks.items())),
            preset,
            data_root=root if root is not None else vc.data_root,
            datasets=list(vc.datasets),
            scales=(cfg.method.scale,),
            model_name=f"{cfg.experiment}/{cfg.stage}",
            device=info.device,
            progress=False,
            max_images=vc.max_images,
        )
    finally:
        networks.train(was_training)
    values = [getattr(c, vc.metric) for c in cells if c.setting != "mean"]
    return float(sum(values) / len(values))
