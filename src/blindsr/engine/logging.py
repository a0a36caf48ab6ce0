"""Run logging: a JSON-lines log in the run folder, a tqdm progress bar, and optional TensorBoard scalars.

Every record is one line of ``RUN_DIR/log.jsonl``, a JSON object with ``step``, ``kind`` and ``time`` (Unix time,
seconds) first, then the values; non-finite values are written as ``null`` so every line is strict JSON::

    {"step": 100, "kind": "train", "time": 1732280000.123, "loss": 0.0123, "lr": 0.0002}
    {"step": 100, "kind": "message", "time": 1732280000.456, "text": "saved checkpoint step_00000100"}

The file is opened for appending, so a resumed run continues the log of the interrupted one. On opening, a partial
last line (a crash in the middle of a write) is cut off, and so are the records of steps after `start_step`: the
interrupted run logged them after its last checkpoint, and the resumed run logs them again, so each step appears
once. Both cuts truncate the file in place (no extra space needed, even on a full disk).

>>> import json, tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     with RunLogger(run_dir=Path(tmp), total_steps=10, progress=False) as logger:
...         logger.log(1, {"loss": 0.5, "psnr": float("nan")})
...     record = json.loads((Path(tmp) / "log.jsonl").read_text())
>>> record["step"], record["kind"], record["loss"], record["psnr"]
(1, 'train', 0.5, None)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, SupportsFloat

from tqdm import tqdm

__all__ = ["LOG_FILENAME", "TENSORBOARD_DIRNAME", "RunLogger"]

LOG_FILENAME: Final = "log.jsonl"
"""Name of the JSON-lines log inside the run folder."""

TENSORBOARD_DIRNAME: Final = "tensorboard"
"""Sub-folder of the run folder that receives the TensorBoard event files."""

_RESERVED: Final = frozenset({"step", "kind", "time"})


class RunLogger:
    """Log a training run: JSON lines, a progress bar with it/s and ETA, and optionally TensorBoard.

    With ``enabled=False`` (the non-zero ranks of a data-parallel run) every method does nothing and no file or
    folder is created, so callers need no rank checks.

    TensorBoard is optional: ``torch.utils.tensorboard`` is imported only when `tensorboard` is set, and if it
    cannot be imported (the ``tensorboard`` package is not installed) or the writer cannot be created, one warning
    is printed and logged through :meth:`message` and the run continues without it. Scalars are written as
    ``"<kind>/<name>"`` into ``RUN_DIR/tensorboard``.

    Args:
        run_dir: the run folder; created if needed. The log is ``run_dir / "log.jsonl"``.
        total_steps: last step of the run (the bar's total).
        start_step: step the run starts or resumes from (the bar's initial position).
        enabled: log at all (False on non-zero ranks).
        tensorboard: also write TensorBoard scalars.
        progress: show a tqdm progress bar (on stderr).

    An existing log keeps its records up to `start_step` (see the module's notes); later ones are dropped.

    Raises:
        ValueError: `total_steps` or `start_step` is negative, or `start_step` > `total_steps`.
        OSError: the run folder or the log cannot be created.
    """

    def __init__(
        self,
        *,
        run_dir: Path,
        total_steps: int,
        start_step: int = 0,
        enabled: bool = True,
        tensorboard: bool = False,
        progress: bool = True,
    ) -> None:
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 0:
            raise ValueError(f"total_steps must be a non-negative integer, got {total_steps!r}")
        if isinstance(start_step, bool) or not isinstance(start_step, int) or not 0 <= start_step <= total_steps:
            raise ValueError(f"start_step must be an integer in [0, total_steps={total_steps}], got {start_step!r}")
        self._enabled = enabled
        self._run_dir = Path(run_dir)
        self._total_steps = total_steps
        self._step = start_step
        self._start_step = start_step
        self._closed = False
        self._progress = False
        self._file: IO[str] | None = None
        self._bar: tqdm[Any] | None = None
        self._writer: Any = None  # torch.utils.tensorboard.SummaryWriter, typed loosely: imported lazily
        if not enabled:
            return

        self._run_dir.mkdir(parents=True, exist_ok=True)
        self._file = _open_for_append(self._run_dir / LOG_FILENAME, keep_through=start_step)
        self._progress = progress  # the bar itself appears at the first update(), below the start messages
        if tensorboard:
            self._writer = self._open_tensorboard()

    @property
    def enabled(self) -> bool:
        """Whether this logger writes anything."""
        return self._enabled

    @property
    def run_dir(self) -> Path:
        """The run folder."""
        return self._run_dir

    @property
    def log_path(self) -> Path:
        """The JSON-lines log file."""
        return self._run_dir / LOG_FILENAME

    @property
    def tensorboard_active(self) -> bool:
        """Whether TensorBoard scalars are being written."""
        return self._writer is not None

    def log(self, step: int, values: Mapping[str, SupportsFloat], *, kind: str = "train") -> None:
        """Append one record ``{"step", "kind", "time", **values}`` to the log (flushed at once).

        Values are converted with ``float()`` (Python numbers, numpy scalars and one-element tensors all work);
        NaN and infinities are written as ``null``. With TensorBoard, each value also becomes the scalar
        ``"<kind>/<name>"`` at `step`.

        Args:
            step: training step the values belong to.
            values: name → number; names must not be ``step``, ``kind`` or ``time``.
            kind: record kind, e.g. ``"train"`` or ``"val"``.

        Raises:
            ValueError: a reserved name in `values`.
            TypeError: a value that ``float()`` cannot convert.
            RuntimeError: the logger is closed.
        """
        if not self._enabled:
            return
        self._check_open()
        numbers = _to_floats(values)
        self._step = step
        self._write({"step": step, "kind": kind, "time": _now(), **{k: _json_number(v) for k, v in numbers.items()}})
        if self._writer is not None:
            for name, value in numbers.items():
                self._writer.add_scalar(f"{kind}/{name}", value, step)

    def update(self, step: int, postfix: Mapping[str, SupportsFloat]) -> None:
        """Move the progress bar to `step` and show `postfix` (loss, learning rate, ...) next to it.

        Nothing is written to the log. Without a bar (``progress=False``) only the current step is remembered. The
        bar is created by the first call (so the messages of a run's start print above it) and closed when `step`
        reaches `total_steps` (so its final state is drawn once, and the closing messages print below it).

        Args:
            step: the step just completed.
            postfix: name → number shown on the bar (4 significant digits).

        Raises:
            TypeError: a value that ``float()`` cannot convert.
            RuntimeError: the logger is closed.
        """
        if not self._enabled:
            return
        self._check_open()
        numbers = _to_floats(postfix)
        self._step = step
        if not self._progress:
            return
        if self._bar is None:
            self._bar = tqdm(total=self._total_steps, initial=self._start_step, dynamic_ncols=True, leave=True)
        self._bar.set_postfix({name: f"{value:.4g}" for name, value in numbers.items()}, refresh=False)
        if step >= self._total_steps:  # the last step: the final state is drawn once, by close()
            self._bar.n = step
            self.end_progress()
        elif step >= self._bar.n:
            self._bar.update(step - self._bar.n)  # refreshes at most every `mininterval` seconds
        else:
            self._bar.n = step
            self._bar.refresh()

    def end_progress(self) -> None:
        """Close the progress bar (its last state stays on screen); later messages print below it, and no bar
        comes back. Called by :meth:`update` at `total_steps`, and by the loop before its closing messages."""
        self._progress = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def message(self, text: str) -> None:
        """Print `text` above the progress bar and append ``{"step", "kind": "message", "time", "text"}``.

        ``step`` is the last step given to :meth:`log` or :meth:`update` (or `start_step`).

        Raises:
            RuntimeError: the logger is closed.
        """
        if not self._enabled:
            return
        self._check_open()
        tqdm.write(text)
        self._write({"step": self._step, "kind": "message", "time": _now(), "text": text})

    def close(self) -> None:
        """Flush and close the log, the bar and the TensorBoard writer; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self.end_progress()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RunLogger(run_dir={str(self._run_dir)!r}, total_steps={self._total_steps}, step={self._step}, "
            f"enabled={self._enabled}, tensorboard={self.tensorboard_active}, closed={self._closed})"
        )

    # ------------------------------------------------------------------------------------------------------------

    def _open_tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter

            return SummaryWriter(log_dir=str(self._run_dir / TENSORBOARD_DIRNAME))
        except Exception as error:  # ImportError without the package; protobuf/version clashes raise others
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self.message(
                f"warning: TensorBoard logging disabled ({reason}); install the 'tensorboard' package to enable it"
            )
            return None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("RunLogger is closed")

    def _write(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        self._file.flush()


def _open_for_append(path: Path, *, keep_through: int | None = None) -> IO[str]:
    """Open the log for appending, after cutting off a partial last line and the records of steps > `keep_through`.

    The records are in step order, so the ones to drop are a tail: the file is read backwards (64 KiB at a time)
    only as far as the last record to keep, then truncated in place.
    """
    if path.exists():
        with path.open("r+b") as existing:
            end = existing.seek(0, 2)
            keep = _keep_length(existing, end, keep_through)
            if keep < end:
                existing.truncate(keep)
    return path.open("a", encoding="utf-8")


def _keep_length(file: IO[bytes], end: int, keep_through: int | None) -> int:
    """How many leading bytes of the log to keep: whole lines only, and no record of a step after `keep_through`."""
    buf_start, buf = end, b""  # buf holds the bytes [buf_start, end) read so far

    def newline_before(index: int) -> int:
        """Absolute position of the last newline before `index`, or -1."""
        nonlocal buf_start, buf
        while True:
            found = buf.rfind(b"\n", 0, max(0, index - buf_start))
            if found >= 0:
                return buf_start + found
            if buf_start == 0:
                return -1
            start = max(0, buf_start - 65536)
            file.seek(start)
            buf = file.read(buf_start - start) + buf
            buf_start = start

    keep = newline_before(end) + 1  # drops a partial last line; == end when the file ends with a newline
    if keep_through is None:
        return keep
    while keep > 0:
        line_start = newline_before(keep - 1) + 1
        if not _after(buf[line_start - buf_start : keep - buf_start], keep_through):
            return keep
        keep = line_start
    return 0


def _after(line: bytes, step: int) -> bool:
    """Whether a log line is a record of a step after `step` (an unreadable line is kept, not judged)."""
    try:
        value = json.loads(line).get("step")
    except (ValueError, AttributeError):
        return False
    return isinstance(value, int) and not isinstance(value, bool) and value > step


def _to_floats(values: Mapping[str, SupportsFloat]) -> dict[str, float]:
    numbers: dict[str, float] = {}
    for name, value in values.items():
        if name in _RESERVED:
            raise ValueError(f"{name!r} is a reserved log field; rename the value")
        try:
            numbers[name] = float(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"log value {name!r} is not a number: {value!r}") from error
    return numbers


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _now() -> float:
    return round(time.time(), 3)
