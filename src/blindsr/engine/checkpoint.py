"""Checkpoints: atomic, strict, complete enough that a resumed run continues bit for bit.

Layout of a run folder::

    RUN_DIR/config.yaml                  the resolved configuration
    RUN_DIR/log.jsonl                    the training log
    RUN_DIR/checkpoints/step_00001000/   networks.safetensors, ema.safetensors (if EMA), state.pt
    RUN_DIR/checkpoints/latest           the name of the newest complete checkpoint
    RUN_DIR/checkpoints/best/            a copy of the best validated checkpoint
    RUN_DIR/final/                       networks.safetensors (+ ema) at the end of training: what later stages
                                         and exports read

A checkpoint folder is written under a temporary name and renamed when complete, so a crash or a full disk never
leaves a half-written checkpoint where a complete one is expected; the previous checkpoint survives. Network
weights are safetensors (metadata: step, blindsr version); the optimiser, scheduler, gradient scaler, step and
every RNG state (torch CPU/CUDA, numpy, random) are in ``state.pt``, read back with ``weights_only=True``.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import blindsr

__all__ = [
    "CheckpointError",
    "latest_checkpoint",
    "load_checkpoint",
    "load_network_weights",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
    "save_weights",
]


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message says which and what survived."""


def rng_state() -> dict[str, Any]:
    """Every global RNG state, in a form ``torch.load(weights_only=True)`` accepts."""
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(s: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = s
    return [int(version), [int(v) for v in internal], gauss]


def _state_dict_for_file(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_weights(module: nn.Module, path: Path, *, metadata: Mapping[str, str] | None = None) -> None:
    """Write a module's state dict as safetensors, atomically, with string metadata."""
    from safetensors.torch import save_file

    meta = {"blindsr_version": blindsr.__version__, **(metadata or {})}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(_state_dict_for_file(module), str(tmp), metadata={k: str(v) for k, v in meta.items()})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _apply_key_map(state: dict[str, torch.Tensor], key_map: Mapping[str, str]) -> dict[str, torch.Tensor]:
    if not key_map:
        return state
    out = {}
    for key, value in state.items():
        for old, new in key_map.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def load_network_weights(
    module: nn.Module,
    path: Path,
    *,
    prefix: str = "",
    key_map: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
) -> None:
    """Load safetensors weights into `module` strictly.

    Args:
        module: the network to fill.
        path: a ``networks.safetensors`` (keys ``<network>.<param>``) or a single network's file.
        prefix: keep only keys starting with this (e.g. ``"mln."``) and strip it.
        key_map: explicit renames by prefix, applied after `prefix` (``{"old_name.": "new_name."}``).
        exclude: key prefixes (after renaming) neither loaded nor required: those parameters keep their current
            values. Every other key must match exactly.

    Raises:
        CheckpointError: missing file, or missing / unexpected keys (listed), or shape mismatches.
    """
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"weights file {path} not found")
    state = load_file(str(path))
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise CheckpointError(f"{path} has no keys starting with {prefix!r}")
    state = _apply_key_map(state, key_map or {})
    excluded = tuple(exclude)
    if excluded:
        state = {k: v for k, v in state.items() if not k.startswith(excluded)}
        kept = {k: v for k, v in module.state_dict().items() if k.startswith(excluded)}
        if not kept:
            raise CheckpointError(f"exclude {list(excluded)} matches no key of the network")
        state.update(kept)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()
        raise CheckpointError(f"{path}: weights do not match the network (strict load): {' '.join(first[:3])}") from e


def save_checkpoint(
    run_dir: Path,
    *,
    step: int,
    networks: nn.ModuleDict,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema_networks: nn.ModuleDict | None = None,
    scaler: torch.amp.GradScaler | None = None,
    extra: Mapping[str, Any] | None = None,
    keep_last: int = 2,
) -> Path:
    """Write ``checkpoints/step_XXXXXXXX`` atomically, point ``latest`` at it and prune older ones.

    Raises:
        CheckpointError: the write failed (e.g. the disk is full); the previous checkpoint is left intact.
    """
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        meta = {"step": str(step)}
        save_weights(networks, tmp / "networks.safetensors", metadata=meta)
        if ema_networks is not None:
            save_weights(ema_networks, tmp / "ema.safetensors", metadata=meta)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_state(),
            "extra": dict(extra or {}),
        }
        torch.save(state, tmp / "state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _write_text_atomic(ckpt_root / "latest", name + "\n")
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(run_dir)
        survivor = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        raise CheckpointError(f"could not write checkpoint {final} ({e.strerror or e}); {survivor}") from e
    _prune(ckpt_root, keep_last=keep_last, protect=name)
    return final


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Copy a checkpoint folder to `dst` (e.g. ``best``), replacing it atomically."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    old = dst.with_name(f".{dst.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    if dst.exists():
        os.replace(dst, old)
    os.replace(tmp, dst)
    shutil.rmtree(old, ignore_errors=True)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _prune(ckpt_root: Path, *, keep_last: int, protect: str) -> None:
    steps = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
    for old in steps[: max(0, len(steps) - max(1, keep_last))]:
        if old.name != protect:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    ckpt_root = run_dir / "checkpoints"
    pointer = ckpt_root / "latest"
    if pointer.is_file():
        candidate = ckpt_root / pointer.read_text().strip()
        if (candidate / "state.pt").is_file():
            return candidate
    steps = sorted(p for p in ckpt_root.glob("step_*") if (p / "state.pt").is_file())
    return steps[-1] if steps else None


def load_checkpoint(
    path: Path,
    *,
    networks: nn.ModuleDict,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema_networks: nn.ModuleDict | None = None,
    scaler: torch.amp.GradScaler | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore everything :func:`save_checkpoint` wrote (strictly); returns the state (``step``, ``extra``)."""
    state_path = path / "state.pt"
    if not state_path.is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint (no state.pt)")
    load_network_weights(networks, path / "networks.safetensors")
    if ema_networks is not None:
        ema_file = path / "ema.safetensors"
        if ema_file.is_file():
            load_network_weights(ema_networks, ema_file)
        else:
            raise CheckpointError(f"{path} has no EMA weights but EMA is enabled (train.ema_decay > 0)")
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if restore_rng:
        restore_rng_state(state["rng"])
    return dict(state)
