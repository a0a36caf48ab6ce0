"""Checkpoints: atomic, verified, strict, complete enough that a resumed run continues bit for bit.

Layout of a run folder::

    RUN_DIR/config.yaml                  the resolved configuration
    RUN_DIR/log.jsonl                    the training log
    RUN_DIR/.lock                        held (``flock``) by the process that trains into the folder
    RUN_DIR/checkpoints/step_00001000/   networks.safetensors, ema.safetensors (if EMA), state.pt, manifest.json
    RUN_DIR/checkpoints/latest           the name of the newest complete checkpoint
    RUN_DIR/checkpoints/best/            the best validated checkpoint (hard links to a step's files)
    RUN_DIR/final/                       networks.safetensors (+ ema) at the end of training: what later stages
                                         and exports read

A checkpoint folder is written under a temporary name (``.step_XXXXXXXX.tmp``) and renamed when complete, so a crash
or a full disk never leaves a half-written checkpoint where a complete one is expected; the previous checkpoint
survives. Whatever the writers raise (``OSError``, or the errors safetensors and torch turn a failed write into) becomes
one :class:`CheckpointError`, and the temporary folder is removed.

Each checkpoint ends with ``manifest.json`` (written last): the size and SHA-256 of every file. Loading checks it,
so a truncated, zero-length or corrupted file is detected; :func:`load_latest_checkpoint` then falls back to the
newest intact checkpoint. Checkpoints written before manifests existed are still loaded (their files must parse).

Network weights are safetensors (metadata: step, blindsr version); the optimiser, scheduler, gradient scaler, step and
every RNG state (torch CPU/CUDA, numpy, random) are in ``state.pt``, read back with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from blindsr.files import atomic_write_bytes, atomic_write_text
from blindsr.version import __version__

__all__ = [
    "MANIFEST_FILENAME",
    "CheckpointError",
    "checkpoint_step",
    "copy_checkpoint",
    "latest_checkpoint",
    "load_checkpoint",
    "load_latest_checkpoint",
    "load_network_weights",
    "recover_best",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
    "save_weights",
    "verify_checkpoint",
]

MANIFEST_FILENAME = "manifest.json"
"""Written last into every checkpoint folder: ``{"format", "step", "files": {name: {"size", "sha256"}}}``."""

_MANIFEST_FORMAT = 1
_NETWORKS = "networks.safetensors"
_EMA = "ema.safetensors"
_STATE = "state.pt"
_BEST = "best"


class CheckpointError(RuntimeError):
    """A checkpoint (or the run folder) could not be written or read; the message says which and what survived."""


# ---------------------------------------------------------------------------------------------------------- RNG


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


# ------------------------------------------------------------------------------------------------- small helpers


def _reason(error: BaseException) -> str:
    """A short reason for a failed read or write: the OS's words when an ``OSError`` is behind it.

    safetensors reports ``... I/O error: No space left on device (os error 28)`` and torch a bare ``RuntimeError``;
    the chain (``__cause__`` / ``__context__``) is searched for the ``OSError``.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        text = str(current)
        marker = text.rfind("(os error ")
        if marker >= 0:
            number = text[marker + len("(os error ") :].split(")", 1)[0]
            if number.isdigit():
                return os.strerror(int(number))
        current = current.__cause__ or current.__context__
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _state_dict_for_file(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def _safetensors_bytes(module: nn.Module, metadata: Mapping[str, str] | None) -> bytes:
    from safetensors.torch import save

    meta = {"blindsr_version": __version__, **(metadata or {})}
    return save(_state_dict_for_file(module), metadata={k: str(v) for k, v in meta.items()})


def _write_new_file(path: Path, data: bytes) -> None:
    """Write `data` to a new file and flush it to the disk (raises ``OSError``; a partial file may remain)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: Path) -> None:
    """Make a rename in `path` durable where the platform allows it (a no-op elsewhere)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_weights(module: nn.Module, path: Path, *, metadata: Mapping[str, str] | None = None) -> None:
    """Write a module's state dict as safetensors, atomically, with string metadata.

    Raises:
        CheckpointError: the file could not be written (full disk, read-only folder...); no partial file is left.
    """
    data = _safetensors_bytes(module, metadata)
    try:
        atomic_write_bytes(path, data)
    except Exception as error:  # OutputError (with the OSError chained) or whatever the writer raised
        raise CheckpointError(f"could not write {path} ({_reason(error)})") from error


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


def _load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()
        raise CheckpointError(f"{source}: weights do not match the network (strict load): {' '.join(first[:3])}") from e


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
        CheckpointError: missing or unreadable file, or missing / unexpected keys (listed), or shape mismatches.
    """
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"weights file {path} not found")
    try:
        state = load_file(str(path))
    except Exception as error:  # SafetensorError for a truncated or corrupted file
        raise CheckpointError(f"weights file {path} cannot be read ({_reason(error)})") from error
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
    _load_strict(module, state, path)


# ------------------------------------------------------------------------------------------------------- saving


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
    """Write ``checkpoints/step_XXXXXXXX`` atomically (manifest last), point ``latest`` at it and prune older ones.

    Raises:
        CheckpointError: the write failed (e.g. the disk is full); the temporary folder is removed and the previous
            checkpoint is left intact.
    """
    ckpt_root = run_dir / "checkpoints"
    name = f"step_{step:08d}"
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp"
    try:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        files: dict[str, dict[str, Any]] = {}

        def put(filename: str, data: bytes) -> None:
            _write_new_file(tmp / filename, data)
            files[filename] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

        meta = {"step": str(step)}
        put(_NETWORKS, _safetensors_bytes(networks, meta))
        if ema_networks is not None:
            put(_EMA, _safetensors_bytes(ema_networks, meta))
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_state(),
            "extra": dict(extra or {}),
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        put(_STATE, buffer.getvalue())
        del buffer
        manifest = {"format": _MANIFEST_FORMAT, "step": step, "blindsr_version": __version__, "files": files}
        _write_new_file(tmp / MANIFEST_FILENAME, (json.dumps(manifest, indent=1) + "\n").encode())
        _fsync_folder(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_folder(ckpt_root)
        atomic_write_text(ckpt_root / "latest", name + "\n")
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit: clean up, then let it through
            raise
        previous = latest_checkpoint(run_dir)
        survivor = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        raise CheckpointError(f"could not write checkpoint {final} ({_reason(e)}); {survivor}") from e
    _prune(ckpt_root, keep_last=keep_last, protect=name)
    return final


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Make `dst` (e.g. ``best``) a copy of the checkpoint folder `src`, replacing the old one.

    Files are hard links where the filesystem allows (checkpoint files are never modified in place, so the copy
    costs no space), else copies. The new copy is built as ``.NAME.tmp``; the old one is renamed to ``.NAME.old``
    before the new one takes its name, so a crash between the two renames leaves both: :func:`recover_best` puts
    the right one back.

    Raises:
        CheckpointError: the copy could not be made (the old `dst` is left as it was).
    """
    tmp = dst.with_name(f".{dst.name}.tmp")
    old = dst.with_name(f".{dst.name}.old")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, copy_function=_link_or_copy)
        _fsync_folder(tmp)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"could not copy checkpoint {src} to {dst} ({_reason(e)}); {dst} is unchanged") from e
    try:
        shutil.rmtree(old, ignore_errors=True)
        if dst.exists():
            os.replace(dst, old)
        os.replace(tmp, dst)
    except OSError as e:
        raise CheckpointError(f"could not replace {dst} ({_reason(e)}); the next start restores it") from e
    _fsync_folder(dst.parent)
    shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: str, dst: str) -> object:
    try:
        os.link(src, dst)
        return dst
    except OSError:
        return shutil.copy2(src, dst)


def _prune(ckpt_root: Path, *, keep_last: int, protect: str) -> None:
    steps = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
    for old in steps[: max(0, len(steps) - max(1, keep_last))]:
        if old.name != protect:
            shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------ reading


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run (one with ``state.pt``; see :func:`verify_checkpoint`), or None."""
    ckpt_root = run_dir / "checkpoints"
    pointer = ckpt_root / "latest"
    if pointer.is_file():
        candidate = ckpt_root / pointer.read_text().strip()
        if (candidate / _STATE).is_file():
            return candidate
    steps = sorted(p for p in ckpt_root.glob("step_*") if (p / _STATE).is_file())
    return steps[-1] if steps else None


@dataclass(frozen=True, slots=True)
class _Contents:
    networks: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    state: dict[str, Any]


def _read_files(path: Path) -> dict[str, bytes]:
    """The files of checkpoint `path`, checked against its manifest when it has one."""
    manifest_path = path / MANIFEST_FILENAME
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint folder")
    if not manifest_path.exists():  # written before manifests existed: the files must at least parse
        if not (path / _STATE).is_file():
            raise CheckpointError(f"{path} is not a complete checkpoint (no {_STATE})")
        names = [n for n in (_NETWORKS, _EMA, _STATE) if (path / n).is_file()]
        return {name: _read_bytes(path / name) for name in names}
    try:
        manifest = json.loads(manifest_path.read_bytes())
        listed = {str(n): (int(e["size"]), str(e["sha256"])) for n, e in manifest["files"].items()}
    except Exception as error:
        raise CheckpointError(f"{path}: {MANIFEST_FILENAME} is damaged ({_reason(error)})") from error
    out = {}
    for name, (size, digest) in listed.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{path}: {name} is missing")
        data = _read_bytes(file)
        if len(data) != size:
            raise CheckpointError(f"{path}: {name} has {len(data)} bytes, the manifest says {size}")
        if hashlib.sha256(data).hexdigest() != digest:
            raise CheckpointError(f"{path}: {name} is corrupted (its SHA-256 differs from the manifest's)")
        out[name] = data
    return out


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{file} cannot be read ({_reason(error)})") from error


def _read_checkpoint(path: Path, *, ema: bool) -> _Contents:
    """Read, verify and parse a checkpoint without touching any model (so a damaged one changes nothing)."""
    from safetensors.torch import load

    files = _read_files(path)
    if _NETWORKS not in files:
        raise CheckpointError(f"{path}: {_NETWORKS} is missing")
    if _STATE not in files:
        raise CheckpointError(f"{path}: {_STATE} is missing")
    if ema and _EMA not in files:
        raise CheckpointError(f"{path} has no EMA weights but EMA is enabled (train.ema_decay > 0)")
    try:
        networks = load(files[_NETWORKS])
        ema_state = load(files[_EMA]) if ema else None
    except Exception as error:
        raise CheckpointError(f"{path}: the weights cannot be read ({_reason(error)})") from error
    try:
        state = torch.load(io.BytesIO(files[_STATE]), map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: {_STATE} cannot be read ({_reason(error)})") from error
    missing = [k for k in ("step", "optimizer", "scheduler", "rng") if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path}: {_STATE} lacks {', '.join(missing)}")
    return _Contents(networks=networks, ema=ema_state, state=dict(state))


def verify_checkpoint(path: Path, *, ema: bool = False) -> None:
    """Check that checkpoint `path` is intact: sizes and SHA-256 against its manifest, and every file parses.

    Raises:
        CheckpointError: one line naming what is wrong.
    """
    _read_checkpoint(path, ema=ema)


def checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint folder was saved at (manifest, else the weights' metadata), or None."""
    try:
        return int(json.loads((path / MANIFEST_FILENAME).read_bytes())["step"])
    except Exception:
        pass
    try:
        with (path / _NETWORKS).open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            return int(json.loads(file.read(length))["__metadata__"]["step"])
    except Exception:
        return None


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
    """Restore everything :func:`save_checkpoint` wrote (verified, strictly); returns the state (``step``, ``extra``).

    The checkpoint is read and verified completely before anything is restored, so a damaged one leaves the models
    as they were.

    Raises:
        CheckpointError: the checkpoint is damaged or incomplete, or does not match the networks.
    """
    contents = _read_checkpoint(path, ema=ema_networks is not None)
    return _restore(path, contents, networks, optimizer, scheduler, ema_networks, scaler, restore_rng=restore_rng)


def _restore(
    path: Path,
    contents: _Contents,
    networks: nn.ModuleDict,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema_networks: nn.ModuleDict | None,
    scaler: torch.amp.GradScaler | None,
    *,
    restore_rng: bool,
) -> dict[str, Any]:
    _load_strict(networks, contents.networks, path / _NETWORKS)
    if ema_networks is not None and contents.ema is not None:
        _load_strict(ema_networks, contents.ema, path / _EMA)
    state = contents.state
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if restore_rng:
        restore_rng_state(state["rng"])
    return state


def load_latest_checkpoint(
    run_dir: Path,
    *,
    networks: nn.ModuleDict,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema_networks: nn.ModuleDict | None = None,
    scaler: torch.amp.GradScaler | None = None,
    restore_rng: bool = True,
    note: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Restore the newest intact checkpoint of a run; damaged newer ones are moved aside and reported.

    Candidates are the ``step_*`` folders, newest first. One that fails verification (see :func:`verify_checkpoint`)
    is renamed to ``.damaged_step_XXXXXXXX`` (kept for inspection, ignored from then on) once an intact one is
    found, ``latest`` is pointed at the one used, and `note` receives one line per skipped checkpoint.

    Returns:
        The checkpoint used and its state (``step``, ``extra``...).

    Raises:
        CheckpointError: no checkpoint, or none intact (one line listing why each was refused), or the intact one
            does not match the networks.
    """
    ckpt_root = run_dir / "checkpoints"
    candidates = sorted((p for p in ckpt_root.glob("step_*") if p.is_dir()), reverse=True)
    if not candidates:
        raise CheckpointError(f"--resume: no checkpoint in {ckpt_root}")
    damaged: list[tuple[Path, str]] = []
    for path in candidates:
        try:
            contents = _read_checkpoint(path, ema=ema_networks is not None)
        except CheckpointError as error:
            damaged.append((path, str(error)))
            continue
        for bad, why in damaged:
            aside = bad.with_name(f".damaged_{bad.name}")
            try:
                shutil.rmtree(aside, ignore_errors=True)
                os.replace(bad, aside)
                moved = f"moved to {aside.name}"
            except OSError:
                moved = "left in place"
            if note is not None:
                note(f"checkpoint {bad.name} is damaged ({why}); {moved}; resuming from {path.name} instead")
        if damaged:
            with contextlib.suppress(Exception):  # `latest` is a hint; the folders decide
                atomic_write_text(ckpt_root / "latest", path.name + "\n")
        state = _restore(path, contents, networks, optimizer, scheduler, ema_networks, scaler, restore_rng=restore_rng)
        return path, state
    reasons = "; ".join(why for _, why in damaged)
    raise CheckpointError(f"--resume: no intact checkpoint in {ckpt_root} ({reasons}); start a new --run-dir")


def recover_best(ckpt_root: Path, *, best_step: int | None = None) -> str | None:
    """Repair ``best/`` after a crash inside :func:`copy_checkpoint`; returns a one-line note when it did something.

    With ``best/`` present, leftovers (``.best.tmp``, ``.best.old``) are removed, and a ``best/`` of another step
    than `best_step` is rebuilt from ``step_<best_step>`` when that is still kept. With ``best/`` missing, the kept
    copy that is intact and was saved at `best_step` (the run's recorded best) takes its place; without a match,
    the newer copy if intact, else the older one.
    """
    best = ckpt_root / _BEST
    tmp = ckpt_root / f".{_BEST}.tmp"
    old = ckpt_root / f".{_BEST}.old"
    if best.exists():
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)
        # killed while the new copy was being built: best/ is still the previous best; rebuild it from its step
        source = ckpt_root / f"step_{best_step:08d}" if best_step is not None else None
        if source is not None and checkpoint_step(best) != best_step and source.is_dir():
            copy_checkpoint(source, best)
            return f"updated {best} to step {best_step}, the run's recorded best, after an interrupted update"
        return None
    intact = []
    for copy in (tmp, old):
        if copy.is_dir():
            try:
                _read_files(copy)
            except CheckpointError:
                continue
            intact.append(copy)
    if not intact:
        return None
    chosen = intact[0]
    if best_step is not None:
        chosen = next((c for c in intact if checkpoint_step(c) == best_step), chosen)
    os.replace(chosen, best)
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    step = checkpoint_step(best)
    return f"restored {best} (step {step}) after an interrupted update"
