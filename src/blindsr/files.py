"""Where commands write: atomic writes, and the guards that keep a command from destroying data.

The rules every command follows (docs/guarantees.md lists them for users):

- a file is written to a temporary sibling and renamed onto its name, so a reader (or a crash) sees the old file or
  the new one, never half of one; the temporary file is removed on every error;
- an output is never an input: a target that is an input file is refused, and an output folder that is, contains or
  is inside an input folder is refused;
- an existing output is kept unless the user said ``--overwrite`` (batch commands skip it, single-file commands
  refuse); a file of another kind (an image where a JSON report would go) is refused even then;
- only the output file's own folder is created: ``-o /nonexistent/dir/m.json`` is refused rather than building a
  tree at the filesystem root;
- names and suffixes that become parts of file names may not contain path separators;
- every refusal is an :class:`OutputError` (a ``ValueError``) with a one-line message naming the path and the flag
  that changes the outcome, raised *before* the work starts.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "OutputError",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_name_part",
    "check_output_file",
    "check_output_folder",
    "make_parent",
    "same_file",
]

PathLike = str | os.PathLike[str]


class OutputError(ValueError):
    """An output the command refuses to write (it would destroy data, or it cannot be written); one line."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _temp_sibling(path: Path) -> tuple[Path, int]:
    """Create an exclusive temporary file next to `path`; returns its path and an open descriptor.

    ``os.open`` with mode 0o666 lets the umask decide the final permissions (``tempfile.mkstemp`` forces 0o600).
    """
    for _ in range(100):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path}")


def make_parent(path: PathLike) -> None:
    """Create the folder `path` goes into, but only that one: its own parent must exist.

    Raises:
        OutputError: when more than one level is missing, or a part of the path is a file.
    """
    parent = Path(path).parent
    if parent.is_dir():
        return
    if parent.exists():
        raise OutputError(f"cannot write {path}: {parent} is not a folder")
    if not parent.parent.is_dir():
        raise OutputError(
            f"cannot write {path}: its folder {parent} does not exist, nor does {parent.parent} "
            "(only the file's own folder is created)"
        )
    try:
        parent.mkdir(exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {parent}: {_first_line(error)}") from error


def atomic_write(path: PathLike, save: Callable[[BinaryIO], None], *, create_parent: bool = True) -> None:
    """Run ``save(file)`` on a temporary sibling of `path`, then rename it onto `path`; never leave it behind.

    Args:
        path: the target file.
        save: writes the content to the open binary file it is given.
        create_parent: create the target's own folder when it is missing (see :func:`make_parent`).

    Raises:
        OutputError: the folder cannot be made or written (full disk, read-only, not a folder); the original
            exception is chained. Errors raised by `save` itself other than ``OSError`` propagate unchanged.
    """
    target = Path(path)
    if create_parent:
        make_parent(target)
    try:
        temp, fd = _temp_sibling(target)
    except OSError as error:
        raise OutputError(f"cannot write {target}: {_first_line(error)}") from error
    try:
        with os.fdopen(fd, "wb") as file:
            save(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException as error:
        temp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OutputError(f"cannot write {target}: {_first_line(error)}") from error
        raise


def atomic_write_bytes(path: PathLike, data: bytes, *, create_parent: bool = True) -> None:
    """Write `data` to `path` atomically (see :func:`atomic_write`)."""

    def save(file: BinaryIO) -> None:
        file.write(data)

    atomic_write(path, save, create_parent=create_parent)


def atomic_write_text(path: PathLike, text: str, *, create_parent: bool = True) -> None:
    """Write `text` (UTF-8) to `path` atomically (see :func:`atomic_write`)."""
    atomic_write_bytes(path, text.encode("utf-8"), create_parent=create_parent)


def _strict_json(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    return value


def atomic_write_json(path: PathLike, obj: Any, *, create_parent: bool = True) -> None:
    """Write `obj` as indented, strictly valid JSON (NaN and infinities become null), atomically."""
    text = json.dumps(_strict_json(obj), indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text, create_parent=create_parent)


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether `a` and `b` are the same existing file or folder (device and inode: also through hard links, and
    names that differ only in case on case-insensitive filesystems); False when either does not exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _resolved(paths: Iterable[PathLike]) -> list[Path]:
    return [Path(p).resolve() for p in paths]


def check_output_file(
    path: PathLike,
    *,
    inputs: Iterable[PathLike] = (),
    overwrite: bool = False,
    suffixes: tuple[str, ...] | None = None,
    flag: str = "-o",
) -> Path:
    """Check, before any work, that `path` may be written as a single output file; returns it as a ``Path``.

    Args:
        path: the target file, as the user gave it.
        inputs: the files the command reads; the target may be none of them.
        overwrite: the user said ``--overwrite``: an existing target of the right kind may be replaced.
        suffixes: the extensions (lower case, with the dot) the target may have when it *exists*; an existing file
            of another kind is refused even with `overwrite` (an image is never replaced by a JSON report).
        flag: the option that named the target, for the messages.

    Raises:
        OutputError: with one line that says why and what to do.
    """
    raw = os.fspath(path)
    target = Path(raw)
    if raw.endswith(("/", os.sep)) or target.is_dir():
        raise OutputError(f"{flag} {raw} is a folder; give a file name (e.g. {target / 'out'}...)")
    resolved = target.resolve()
    for source in _resolved(inputs):
        if resolved == source or same_file(target, source):
            raise OutputError(f"{flag} {raw} is an input; refusing to overwrite it")
    if target.exists() or target.is_symlink():
        if suffixes is not None and target.suffix.lower() not in suffixes:
            raise OutputError(
                f"{flag} {raw} exists and is not a {'/'.join(suffixes)} file; refusing to replace it (even with "
                "--overwrite)"
            )
        if not overwrite:
            raise OutputError(f"{flag} {raw} exists; use --overwrite to replace it")
    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"cannot write {raw}: {parent} is not a folder")
    if not parent.exists() and not parent.parent.is_dir():
        raise OutputError(
            f"cannot write {raw}: its folder {parent} does not exist, nor does {parent.parent} "
            "(only the file's own folder is created)"
        )
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {raw}: the folder {parent} is not writable")
    return target


def check_output_folder(out: PathLike, *, inputs: Iterable[PathLike], flag: str = "-o") -> Path:
    """Check that the output folder `out` is not, does not contain and is not inside any input folder or file.

    Raises:
        OutputError: when it is, or when `out` exists and is not a folder.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {out} exists and is not a folder")
    resolved = folder.resolve()
    for source in _resolved(inputs):
        if resolved == source or same_file(folder, source):
            raise OutputError(f"{flag} {out} is the input {source}; write the outputs to another folder")
        if resolved.is_relative_to(source):
            raise OutputError(f"{flag} {out} is inside the input {source}; write the outputs elsewhere")
        if source.is_relative_to(resolved):
            raise OutputError(f"{flag} {out} contains the input {source}; write the outputs elsewhere")
    return folder


def check_name_part(value: str, *, flag: str) -> str:
    """`value` (a suffix or name that becomes part of a file name) when it has no path separator; else an error."""
    bad = [c for c in ("/", "\\", os.sep, os.altsep or "/", "\0") if c in value]
    if bad or value in (".", ".."):
        raise OutputError(f"{flag} {value!r} may not contain a path separator (it becomes part of a file name)")
    return value
