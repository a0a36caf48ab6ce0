"""Tests for blindsr.engine.logging: JSON lines, disabled ranks, resume, non-finite values, optional TensorBoard."""

from __future__ import annotations

import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from blindsr.engine.logging import RunLogger


def _records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line, parse_constant=_reject) for line in lines]


def _reject(name: str) -> None:
    raise AssertionError(f"non-standard JSON constant {name}")


def test_log_writes_one_valid_json_line_per_call(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunLogger(run_dir=run, total_steps=100, progress=False) as logger:
        logger.log(1, {"loss": 0.25, "lr": 2e-4})
        assert len(_records(run)) == 1  # flushed at once, before close
        logger.log(2, {"loss": np.float32(0.5), "grad": torch.tensor(3.0)}, kind="val")
    first, second = _records(run)
    assert list(first) == ["step", "kind", "time", "loss", "lr"]
    assert first["step"] == 1 and first["kind"] == "train" and first["loss"] == 0.25 and first["lr"] == 2e-4
    assert isinstance(first["time"], float) and first["time"] > 1.6e9
    assert second == {"step": 2, "kind": "val", "time": second["time"], "loss": 0.5, "grad": 3.0}


def test_non_finite_values_become_null(tmp_path: Path) -> None:
    with RunLogger(run_dir=tmp_path, total_steps=10, progress=False) as logger:
        logger.log(3, {"a": float("nan"), "b": math.inf, "c": -math.inf, "d": 1.0})
    text = (tmp_path / "log.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    (record,) = _records(tmp_path)
    assert record["a"] is None and record["b"] is None and record["c"] is None and record["d"] == 1.0


def test_bad_values_are_rejected(tmp_path: Path) -> None:
    with RunLogger(run_dir=tmp_path, total_steps=10, progress=False) as logger:
        with pytest.raises(ValueError, match="reserved"):
            logger.log(1, {"step": 1.0})
        with pytest.raises(TypeError, match="'loss'"):
            logger.log(1, {"loss": "high"})  # type: ignore[dict-item]
    with pytest.raises(RuntimeError, match="closed"):
        logger.log(2, {"loss": 1.0})
    logger.close()  # idempotent
    with pytest.raises(ValueError, match="start_step"):
        RunLogger(run_dir=tmp_path, total_steps=10, start_step=11)


def test_message_prints_and_is_logged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with RunLogger(run_dir=tmp_path, total_steps=10, start_step=4, progress=False) as logger:
        logger.message("starting")
        logger.update(6, {"loss": 0.1})
        logger.message("saved checkpoint")
    assert "starting" in capsys.readouterr().out
    records = _records(tmp_path)
    assert [(r["step"], r["kind"], r["text"]) for r in records] == [
        (4, "message", "starting"),
        (6, "message", "saved checkpoint"),
    ]


def test_progress_bar_shows_rate_and_postfix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with RunLogger(run_dir=tmp_path, total_steps=50, start_step=10) as logger:
        for step in range(11, 21):
            logger.update(step, {"loss": 0.123456})
        logger.update(20, {"loss": 0.5})
    err = capsys.readouterr().err
    assert "20/50" in err and "it/s" in err and "loss=0.5" in err
    assert not (tmp_path / "log.jsonl").read_text()  # update() does not write the log


def test_disabled_logger_is_a_no_op(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "rank1"
    with RunLogger(run_dir=run, total_steps=10, enabled=False, tensorboard=True) as logger:
        logger.log(1, {"loss": 1.0})
        logger.update(1, {"loss": 1.0})
        logger.message("hello")
    assert not run.exists() and not logger.enabled
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_resume_appends_to_the_existing_log(tmp_path: Path) -> None:
    with RunLogger(run_dir=tmp_path, total_steps=10, progress=False) as logger:
        logger.log(1, {"loss": 1.0})
        logger.log(2, {"loss": 0.9})
    with (tmp_path / "log.jsonl").open("a") as file:
        file.write('{"step": 3, "kind": "tr')  # a crash in the middle of a write
    with RunLogger(run_dir=tmp_path, total_steps=10, start_step=2, progress=False) as logger:
        logger.log(3, {"loss": 0.8})
    assert [(r["step"], r["loss"]) for r in _records(tmp_path)] == [(1, 1.0), (2, 0.9), (3, 0.8)]


def test_resume_drops_the_records_of_steps_after_the_start_step(tmp_path: Path) -> None:
    with RunLogger(run_dir=tmp_path, total_steps=10, progress=False) as logger:
        for step in range(1, 6):
            logger.log(step, {"loss": float(step)})
        logger.message("killed after this")  # step 5
    with RunLogger(run_dir=tmp_path, total_steps=10, start_step=3, progress=False) as logger:
        logger.message("resumed")
        logger.log(4, {"loss": 0.4})
    assert [(r["step"], r["kind"]) for r in _records(tmp_path)] == [
        (1, "train"),
        (2, "train"),
        (3, "train"),
        (3, "message"),
        (4, "train"),
    ]


def test_missing_tensorboard_warns_once_and_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with RunLogger(run_dir=tmp_path, total_steps=10, tensorboard=True, progress=False) as logger:
        assert not logger.tensorboard_active
        logger.log(1, {"loss": 1.0})
        logger.log(2, {"loss": 0.5})
    records = _records(tmp_path)
    warnings = [r for r in records if r["kind"] == "message"]
    assert len(warnings) == 1 and "TensorBoard" in warnings[0]["text"] and "tensorboard" in warnings[0]["text"]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2]
    assert capsys.readouterr().out.count("TensorBoard") == 1


def test_tensorboard_scalars_are_named_kind_slash_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, float, int]] = []

    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            assert log_dir == str(tmp_path / "tensorboard")

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            calls.append((tag, value, step))

        def close(self) -> None:
            calls.append(("closed", 0.0, 0))

    fake = type(sys)("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    with RunLogger(run_dir=tmp_path, total_steps=10, tensorboard=True, progress=False) as logger:
        assert logger.tensorboard_active
        logger.log(5, {"loss": 0.5}, kind="val")
    assert calls == [("val/loss", 0.5, 5), ("closed", 0.0, 0)]


def test_real_tensorboard_events_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with RunLogger(run_dir=tmp_path, total_steps=2, tensorboard=True, progress=False) as logger:
        logger.log(1, {"loss": 0.5})
        logger.log(2, {"psnr": 30.0}, kind="val")
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    assert {"train/loss", "val/psnr"} <= set(acc.Tags()["scalars"])


def test_the_bar_starts_below_the_start_messages_and_ends_once_above_the_closing_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages (stdout) and the bar (stderr) into one stream, as a terminal or a captured log shows them."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", stream)
    with RunLogger(run_dir=tmp_path, total_steps=5) as logger:
        logger.message("header")
        for step in range(1, 6):
            logger.update(step, {"loss": 0.5})
        logger.message("done")
    pieces = [p.strip() for p in re.split(r"[\r\n]", stream.getvalue()) if p.strip()]
    assert pieces[0] == "header", pieces  # no bar before the start message
    assert sum("5/5" in p for p in pieces) == 1, pieces  # the final state of the bar, once
    assert pieces[-1] == "done" and "5/5" in pieces[-2], pieces  # the closing message below the finished bar
