"""Training faults, for real: a full disk, damaged checkpoints, a kill -9, two processes, a killed ``best/`` swap.

Nothing here mocks the failure itself: the disk is a small tmpfs (when the test may mount one) or a file-size limit
(``RLIMIT_FSIZE`` in a forked child), the kill is a real ``SIGKILL``, the second process a real forked one.
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from blindsr.cli.main import main
from blindsr.cli.train import train_method
from blindsr.config import from_dict
from blindsr.config.schema import ExperimentConfig
from blindsr.engine.checkpoint import copy_checkpoint
from blindsr.engine.loop import TrainingInterrupted
from blindsr.methods import build_method
from blindsr.types import StepOutput

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX faults (fork, rlimit, flock)")

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "configs" / "toy" / "x2.yaml"
FAST = [
    *("--set", "train.total_steps=6"),
    *("--set", "checkpoint.every=3"),
    *("--set", "validation.every=0"),
    *("--set", "log.every=2"),
    *("--set", "log.progress=false"),
    *("--set", "method.options.n_feats=4"),
    *("--set", "data.batch_size=2"),
    *("--set", "data.patch_size=32"),
    *("--set", "train.device=cpu"),
]


def _train(run: Path, *extra: str, resume: bool = False) -> int:
    return main(["train", str(TOY), *FAST, *extra, "--resume" if resume else "--run-dir", str(run)])


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def _leftovers(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob(".*tmp"))


def _assert_same_final(a: Path, b: Path) -> None:
    for name in ("networks", "ema"):
        x, y = load_file(str(a / "final" / f"{name}.safetensors")), load_file(str(b / "final" / f"{name}.safetensors"))
        assert x.keys() == y.keys()
        assert all(torch.equal(x[k], y[k]) for k in x), f"{name} differs"


def _fork(body: Callable[[], int]) -> int:
    """Run `body` in a forked child (torch already imported: no start-up cost); returns the child's pid."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 99
        try:
            torch.set_num_threads(1)
            code = body()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def _wait(pid: int, *, timeout: float = 120.0) -> int:
    """The child's exit status, or minus the signal that killed it."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child process hung")
        time.sleep(0.02)


def _in_child(body: Callable[[], int]) -> int:
    return _wait(_fork(body))


def _redirect(out: Path) -> None:
    """In a child: send Python's stdout and stderr to files (pytest's capture is not ours to write to)."""
    sys.stdout = (out.with_suffix(".out")).open("w")
    sys.stderr = (out.with_suffix(".err")).open("w")


# -------------------------------------------------------------------------------------------------- full disk


def test_a_real_full_disk_on_a_tmpfs_is_one_line_and_leaves_no_temporary_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()[:120]}")
    try:
        run = disk / "run"
        assert _train(run, "--stop-after", "3") == 0
        fs = os.statvfs(disk)
        block = fs.f_frsize
        assert os.path.getsize(run / "checkpoints" / "step_00000003" / "networks.safetensors") > block
        with (disk / "filler").open("wb") as filler:  # fill the disk, leaving one block free
            filler.write(b"\0" * ((fs.f_bavail - 1) * block))
        capsys.readouterr()
        assert _train(run, resume=True) == 2
        line = _error_line(capsys.readouterr().err)
        assert "could not write checkpoint" in line and "No space left on device" in line, line
        assert "step_00000003 is intact" in line, line
        assert _leftovers(run) == []
        assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000003"
        (disk / "filler").unlink()  # space again: the kept checkpoint resumes
        assert _train(run, resume=True) == 0
        assert (run / "final" / "networks.safetensors").is_file()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.parametrize("failing", ["weights", "state"])
def test_a_file_size_limit_during_a_checkpoint_is_one_line(tmp_path: Path, failing: str) -> None:
    """RLIMIT_FSIZE makes writes past the limit fail (EFBIG): in safetensors' writer, or in torch's."""
    run = tmp_path / "run"
    assert _train(run, "--stop-after", "3") == 0
    first = run / "checkpoints" / "step_00000003"
    weights, state = (os.path.getsize(first / n) for n in ("networks.safetensors", "state.pt"))
    limit = weights // 2 if failing == "weights" else (weights + state) // 2
    assert os.path.getsize(run / "log.jsonl") + 1500 < limit  # the log and config.yaml stay under it

    def body() -> int:
        _redirect(tmp_path / "child")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        return _train(run, resume=True)

    code = _in_child(body)
    err = (tmp_path / "child.err").read_text()
    assert code == 2, err
    line = _error_line(err)
    assert "could not write checkpoint" in line and "File too large" in line and "step_00000003 is intact" in line
    assert _leftovers(run) == []
    assert _train(run, resume=True) == 0  # without the limit, the kept checkpoint resumes


# ------------------------------------------------------------------------------------------ damaged checkpoints


def _damage(file: Path, how: str) -> None:
    if how == "empty":
        file.write_bytes(b"")
    else:  # flip the last byte: the high byte of the last float of the last tensor
        data = bytearray(file.read_bytes())
        data[-1] ^= 0x40
        file.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "how"), [("state.pt", "empty"), ("networks.safetensors", "empty"), ("networks.safetensors", "flip")]
)
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, how: str
) -> None:
    every = ("--set", "checkpoint.every=2")
    assert _train(tmp_path / "full", *every) == 0
    run = tmp_path / "run"
    assert _train(run, *every, "--stop-after", "5") == 0  # checkpoints 4 and 5 are kept
    _damage(run / "checkpoints" / "step_00000005" / name, how)
    capsys.readouterr()
    assert _train(run, *every, resume=True) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if " is damaged " in line]
    assert len(notes) == 1 and "step_00000005" in notes[0] and "resuming from step_00000004" in notes[0], out
    _assert_same_final(tmp_path / "full", run)  # resumed from step 4: still bit for bit
    assert not (run / "checkpoints" / "step_00000005").exists()  # moved aside, not deleted
    assert any(p.name.startswith(".damaged_") for p in (run / "checkpoints").iterdir())


def test_no_intact_checkpoint_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert _train(run, "--stop-after", "4") == 0  # checkpoints 3 and 4
    for step in (3, 4):
        _damage(run / "checkpoints" / f"step_{step:08d}" / "state.pt", "empty")
    capsys.readouterr()
    assert _train(run, resume=True) == 2
    line = _error_line(capsys.readouterr().err)
    assert "no intact checkpoint" in line and "step_00000004" in line and "step_00000003" in line, line


def test_checkpoints_without_a_manifest_still_resume_bit_for_bit(tmp_path: Path) -> None:
    """Checkpoints written before manifests existed: nothing to compare, but the files parse, so they load."""
    assert _train(tmp_path / "full") == 0
    run = tmp_path / "run"
    assert _train(run, "--stop-after", "4") == 0
    for manifest in (run / "checkpoints").glob("step_*/manifest.json"):
        manifest.unlink()
    assert _train(run, resume=True) == 0
    _assert_same_final(tmp_path / "full", run)


# ------------------------------------------------------------------------------ kill -9, the log, a second process


def _images(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = (rng.random((9, 11, 3)) * 255).astype(np.uint8)
        Image.fromarray(base).resize((44, 36), Image.Resampling.BICUBIC).save(folder / f"{i}.png")
    return folder


def _cfg(tmp_path: Path) -> ExperimentConfig:
    raw: dict[str, Any] = {
        "experiment": "t",
        "method": {"name": "toy", "scale": 2, "options": {"n_feats": 4, "n_blocks": 1}},
        "data": {"train": [str(_images(tmp_path / "hr"))], "patch_size": 16, "batch_size": 2},
        "train": {"total_steps": 8, "device": "cpu", "ema_decay": 0.9, "optimizer": {"lr": 1e-3}},
        "checkpoint": {"every": 3, "keep_last": 2},
        "log": {"every": 1, "progress": False},
    }
    return from_dict(ExperimentConfig, raw)


class _Hook:
    """Wraps the toy method; calls `hook` once when the loop reaches a given step."""

    def __init__(self, inner: Any, at: int, hook: Callable[[], None]) -> None:
        self.inner, self.at, self.hook = inner, at, hook
        self.networks = inner.networks

    def training_step(
        self, hr: torch.Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        if step == self.at:
            self.hook()
        return self.inner.training_step(hr, step=step, generator=generator, nets=nets)

    def inference(self, nets: Mapping[str, nn.Module]) -> Any:
        return self.inner.inference(nets)

    def release(self) -> Any:
        return self.inner.release()


def _train_steps(run: Path) -> list[int]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if r["kind"] == "train"]


@pytest.fixture
def one_thread() -> Any:
    """The forked children train with 1 thread; bit-for-bit comparisons need the parent to do the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_after_a_kill_9_the_log_has_each_step_once_and_resume_is_exact(tmp_path: Path, one_thread: None) -> None:
    cfg = _cfg(tmp_path)
    train_method(cfg, build_method(cfg), run_dir=tmp_path / "full")
    run = tmp_path / "run"

    def body() -> int:
        _redirect(tmp_path / "child")
        method = _Hook(build_method(cfg), 5, lambda: os.kill(os.getpid(), signal.SIGKILL))
        train_method(cfg, method, run_dir=run)
        return 0

    assert _in_child(body) == -signal.SIGKILL
    assert _train_steps(run) == [1, 2, 3, 4, 5]  # logged up to the kill; the checkpoint is at step 3
    train_method(cfg, build_method(cfg), run_dir=run, resume=True)  # the kernel released the dead process's lock
    assert _train_steps(run) == _train_steps(tmp_path / "full") == list(range(1, 9))
    _assert_same_final(tmp_path / "full", run)


def test_a_second_process_cannot_train_into_a_run_folder_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _cfg(tmp_path)
    run = tmp_path / "run"
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def wait_for_the_parent() -> None:
        os.write(ready_w, b"r")
        os.read(go_r, 1)

    def body() -> int:
        _redirect(tmp_path / "child")
        train_method(cfg, _Hook(build_method(cfg), 1, wait_for_the_parent), run_dir=run)
        return 0

    pid = _fork(body)
    try:
        readable, _, _ = select.select([ready_r], [], [], 120)
        assert readable, "the first training process did not start"
        os.read(ready_r, 1)
        capsys.readouterr()
        assert _train(run) == 2  # the first process is training into `run` right now
        line = _error_line(capsys.readouterr().err)
        assert f"run folder {run} is in use by another training process" in line, line
        assert not (run / "config.yaml").exists()  # refused before writing anything
    finally:
        os.write(go_w, b"g")
        code = _wait(pid)
        for fd in (ready_r, ready_w, go_r, go_w):
            os.close(fd)
    assert code == 0, (tmp_path / "child.err").read_text()
    assert (run / "final" / "networks.safetensors").is_file()  # the first process finished undisturbed


# ------------------------------------------------------------------------------------- best/, a finished run


class _Killed(BaseException):
    """Stands for the process dying at that point."""


def test_a_kill_between_the_renames_of_best_is_repaired_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert _train(run, "--set", "validation.every=3") == 0
    best_step = int(capsys.readouterr().out.rsplit("at step ", 1)[1].split(";")[0])
    ckpts = run / "checkpoints"
    other = ckpts / ("step_00000003" if best_step == 6 else "step_00000006")
    real_replace = os.replace

    def dies_before_the_second_rename(src: Any, dst: Any) -> None:
        if Path(dst).name == "best":
            raise _Killed
        real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", dies_before_the_second_rename)
        with pytest.raises(_Killed):
            copy_checkpoint(other, ckpts / "best")  # a new best being put in place when the process dies
    assert not (ckpts / "best").exists()
    assert _train(run, "--set", "validation.every=3", resume=True) == 0
    best = load_file(str(ckpts / "best" / "networks.safetensors"))
    kept = load_file(str(ckpts / f"step_{best_step:08d}" / "networks.safetensors"))
    assert all(torch.equal(best[k], kept[k]) for k in kept)  # the run's recorded best, not the half-made one
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".best")]


def test_resuming_a_finished_run_reports_its_last_loss_and_rewrites_no_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert _train(run) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("6 steps, last loss ")
    state = run / "checkpoints" / "step_00000006" / "state.pt"
    before = state.stat().st_mtime_ns
    assert _train(run, resume=True) == 0
    again = capsys.readouterr().out.strip().splitlines()[-1]
    assert again == summary and "nan" not in again
    assert state.stat().st_mtime_ns == before


def test_a_kill_while_the_new_best_copy_was_built_rebuilds_best(tmp_path: Path) -> None:
    """best/ still holds the previous best (the kill came before the renames): the recorded best step wins."""
    from blindsr.engine.checkpoint import checkpoint_step, recover_best

    root = tmp_path / "checkpoints"
    for name, step in (("step_00000004", 4), ("best", 2), (".best.tmp", 4)):
        (root / name).mkdir(parents=True)
        (root / name / "manifest.json").write_text(json.dumps({"step": step}))
    note = recover_best(root, best_step=4)
    assert note is not None and "step 4" in note
    assert checkpoint_step(root / "best") == 4 and not (root / ".best.tmp").exists()
    assert recover_best(root, best_step=4) is None  # nothing more to do


# ------------------------------------------------------------------------------------------------------ Ctrl-C


def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def test_a_keyboard_interrupt_checkpoints_the_last_completed_step_and_resume_is_exact(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    train_method(cfg, build_method(cfg), run_dir=tmp_path / "full")
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as interrupted:  # raised inside step index 4: 4 steps are complete
        train_method(cfg, _Hook(build_method(cfg), 4, _raise_keyboard_interrupt), run_dir=run)
    assert interrupted.value.step == 4 and interrupted.value.checkpoint == run / "checkpoints" / "step_00000004"
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000004"  # not only step 3 (the grid)
    messages = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any(m.get("text") == "interrupted at step 4; saved checkpoint step_00000004" for m in messages)
    train_method(cfg, build_method(cfg), run_dir=run, resume=True)
    assert _train_steps(run) == _train_steps(tmp_path / "full") == list(range(1, 9))
    _assert_same_final(tmp_path / "full", run)


def test_ctrl_c_finishes_the_step_checkpoints_it_and_prints_the_resume_command(
    tmp_path: Path, one_thread: None
) -> None:
    assert _train(tmp_path / "full") == 0
    run = tmp_path / "run"

    def body() -> int:
        _redirect(tmp_path / "child")
        import blindsr.methods

        build = blindsr.methods.build_method

        def interrupted_at_4(cfg: ExperimentConfig) -> Any:  # a real SIGINT, as Ctrl-C sends, inside step index 4
            return _Hook(build(cfg), 4, lambda: os.kill(os.getpid(), signal.SIGINT))

        blindsr.methods.build_method = interrupted_at_4  # type: ignore[assignment]
        return _train(run)

    assert _in_child(body) == 130
    err = (tmp_path / "child.err").read_text()
    assert f"interrupted at step 5; resume with: blindsr train {TOY} --resume {run}" in err, err
    assert "Traceback" not in err
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000005"  # step index 4 was finished
    assert _train(run, resume=True) == 0
    assert _train_steps(run) == _train_steps(tmp_path / "full")
    _assert_same_final(tmp_path / "full", run)
