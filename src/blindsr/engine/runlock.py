"""One training process per run folder: an exclusive ``flock`` on ``RUN_DIR/.lock``, held for the whole training.

A second process that tries to train into the same folder gets a one-line :class:`CheckpointError` naming the
folder (and the pid and host written into the lock file by the holder). The kernel releases the lock when the holder
exits, however it exits (``kill -9`` included), so a stale lock file never blocks a resume; the file itself stays.

Within one process the lock is re-entrant (``blindsr train`` takes it before writing ``config.yaml``, and
:func:`blindsr.engine.loop.fit` takes it again). Under DDP only rank 0 locks: it alone writes the folder.
Where ``fcntl`` does not exist (Windows), or the filesystem refuses locks, training runs unlocked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from blindsr.engine.checkpoint import CheckpointError

__all__ = ["LOCK_FILENAME", "lock_run_folder"]

LOCK_FILENAME: Final = ".lock"
"""Name of the lock file inside the run folder."""

_held: dict[str, list[int]] = {}  # lock path -> [descriptor, depth]
_guard = threading.Lock()
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


def _acquire(run_dir: Path, path: Path) -> int:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return -1
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise CheckpointError(f"cannot create the lock file {path} ({error.strerror or error})") from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in _UNSUPPORTED:
            return fd  # a filesystem without locks: proceed unlocked
        try:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip()
        except OSError:
            holder = ""
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            who = f" ({holder})" if holder else ""
            raise CheckpointError(
                f"run folder {run_dir} is in use by another training process{who}; wait for it to finish, "
                "or train into another --run-dir"
            ) from error
        raise CheckpointError(f"cannot lock {path} ({error.strerror or error})") from error
    with contextlib.suppress(OSError):  # who holds it, for the message of a second process (best effort)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    return fd


@contextlib.contextmanager
def lock_run_folder(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock (creating the folder's ``.lock``; the folder must exist) while the block runs.

    Raises:
        CheckpointError: another process holds it, or the lock file cannot be created.
    """
    path = Path(run_dir) / LOCK_FILENAME
    key = os.path.realpath(path)
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
        else:
            _held[key] = entry = [_acquire(Path(run_dir), path), 1]
    try:
        yield
    finally:
        with _guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                if entry[0] >= 0:
                    os.close(entry[0])  # releases the lock
