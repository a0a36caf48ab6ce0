"""How the analysis results write their raw data: atomically, and never over an existing file unless asked.

Every result object of :mod:`blindsr.analysis` (:class:`~blindsr.analysis.idr.IDRReport`,
:class:`~blindsr.analysis.rdam.RDAMReport`, :class:`~blindsr.analysis.adaptation.AdaptationReport`,
:class:`~blindsr.analysis.kernels.KernelReport`) saves through these writers. Each writes a temporary sibling and
renames it onto the target (:func:`blindsr.files.atomic_write`), so a reader sees the old file or the new one, never
half of one. An existing target is refused with an :class:`~blindsr.files.OutputError` unless ``overwrite=True``;
a folder is always refused.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from blindsr.files import OutputError, PathLike, atomic_write, atomic_write_json, atomic_write_text

__all__ = ["check_target", "write_csv", "write_json", "write_npz"]


def check_target(path: PathLike, *, overwrite: bool) -> Path:
    """`path` as a ``Path`` when it may be written: not a folder, and not an existing file unless `overwrite`.

    Raises:
        OutputError: one line naming the path.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target} is a folder; give a file name")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise OutputError(f"{target} exists; pass overwrite=True to replace it")
    return target


def write_npz(path: PathLike, arrays: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """``np.savez(path, **arrays)``, atomically (the keys in the order given); returns the path written."""
    import numpy as np

    target = check_target(path, overwrite=overwrite)
    atomic_write(target, lambda fh: np.savez(fh, **arrays))
    return target


def write_json(path: PathLike, record: Any, *, overwrite: bool = False) -> Path:
    """`record` as indented, strictly valid JSON (NaN and infinities become null), atomically; returns the path."""
    target = check_target(path, overwrite=overwrite)
    atomic_write_json(target, record)
    return target


def write_csv(path: PathLike, rows: Sequence[Sequence[object]], *, overwrite: bool = False) -> Path:
    """`rows` (the first one the header) as CSV (``csv.writer``'s default dialect), atomically; returns the path."""
    target = check_target(path, overwrite=overwrite)
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    atomic_write_text(target, buffer.getvalue())
    return target
