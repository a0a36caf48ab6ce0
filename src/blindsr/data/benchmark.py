"""Benchmark test sets with ground truth (Set5, Set14, B100, Urban100, Manga109, ...): HR images, modcropped.

A benchmark root holds one folder per set, each with its ground truth in ``HR/``::

    ROOT/Set5/HR/baby.png ...
    ROOT/Set14/HR/bridge.png ...      (gray "L" images are returned as RGB)
    ROOT/RealSRSet/LR/...             (no ground truth: not a benchmark set, ignored here)

:class:`BenchmarkSet` finds a set by name (case-insensitively), lists its images and loads each one lazily as a
``(3, H, W)`` float32 RGB tensor cropped at the top-left to multiples of the scale (MATLAB ``modcrop``), which is
the HR side of the standard synthetic-degradation protocol. Degrading it to LR is not this module's job.

>>> import tempfile, torch
>>> from blindsr.data.images import write_image
>>> with tempfile.TemporaryDirectory() as root:
...     write_image(f"{root}/Set5/HR/baby.png", torch.rand(3, 10, 13))
...     bench = BenchmarkSet(root=root, name="set5", scale=4)
...     (bench.dataset_name, len(bench), bench[0].name, tuple(bench[0].hr.shape))
('Set5', 1, 'baby', (3, 8, 12))
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from blindsr.data.images import IMAGE_EXTENSIONS, list_images, read_image
from blindsr.ops.crop import modcrop

__all__ = ["BenchmarkImage", "BenchmarkSet", "find_benchmark_sets"]

PathLike = str | os.PathLike[str]

_HR_FOLDER = "HR"
_LR_FOLDER = "LR"


@dataclass(frozen=True, slots=True, eq=False)
class BenchmarkImage:
    """One ground-truth image of a benchmark set.

    Equality is identity (``eq=False``): comparing tensors element-wise is not a meaningful ``==``.

    Attributes:
        name: file stem, e.g. ``"baby"``; unique within its set.
        path: the file it was read from.
        hr: ``(3, H, W)`` float32 RGB in [0, 1], H and W multiples of the set's scale.
    """

    name: str
    path: Path
    hr: Tensor


class BenchmarkSet:
    """The HR images of one benchmark set, modcropped to `scale`, loaded lazily.

    Where the images are looked for:

    - ``name`` given: the folder ``root/<name>`` (exact name first, else the one folder whose name matches
      case-insensitively, so ``"set5"`` finds ``Set5``; else `root` itself when its own name matches); inside
      it, ``HR/`` (also matched case-insensitively), or the folder itself if it has no ``HR/`` but directly
      contains images.
    - ``name=None``: `root` is the set folder itself (``.../Set5``, using its ``HR/`` or its own images as above)
      or directly its ``HR`` folder (``.../Set5/HR``).

    Only the top level of the image folder is listed (no recursion); hidden files are skipped. Every image is read
    with :func:`blindsr.data.images.read_image` (gray becomes RGB, alpha is dropped) when it is accessed; nothing is
    cached.

    Args:
        root: folder holding the sets, or the set folder itself when `name` is None.
        name: set name, matched case-insensitively against the folders in `root`.
        scale: positive integer; H and W of every image are cropped to multiples of it.

    Raises:
        FileNotFoundError: `root` or the set does not exist (the message lists the sets found under `root`), or
            the set has no images (e.g. a real-world set with only ``LR/``).
        ValueError: two images share a stem (``a.png`` and ``a.jpg``), several folders match `name`
            case-insensitively, or `scale` is not a positive integer.

    >>> import tempfile, torch
    >>> from blindsr.data.images import write_image
    >>> with tempfile.TemporaryDirectory() as root:
    ...     write_image(f"{root}/Set14/HR/comic.png", torch.rand(361, 250))   # gray, odd size
    ...     bench = BenchmarkSet(root=f"{root}/Set14", name=None, scale=4)
    ...     comic = bench["comic"]
    >>> bench.dataset_name, tuple(comic.hr.shape)
    ('Set14', (3, 360, 248))
    """

    def __init__(self, *, root: PathLike, name: str | None = None, scale: int) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"benchmark root not found: {root}")

        if name is None:
            if root.name.upper() == _HR_FOLDER and root.parent != root:
                set_dir, folder = root.parent, root
            else:
                set_dir, folder = root, _image_folder(root)
        else:
            set_dir = _find_set_dir(root, name)
            folder = _image_folder(set_dir)

        paths = list_images(folder)
        if not paths:
            raise FileNotFoundError(f"benchmark set {set_dir.name!r} has no images ({_extensions()}) in {folder}")
        _check_unique_stems(paths, folder)

        self._dataset_name = set_dir.name
        self._folder = folder
        self._scale = scale
        self._paths = tuple(paths)
        self._index = {path.stem: i for i, path in enumerate(paths)}

    @property
    def dataset_name(self) -> str:
        """Canonical set name: the set folder's name as spelled on disk (``"Set5"``); use it for seeds and reports."""
        return self._dataset_name

    @property
    def folder(self) -> Path:
        """The folder the images are read from (usually ``root/<Set>/HR``)."""
        return self._folder

    @property
    def scale(self) -> int:
        """The modcrop factor."""
        return self._scale

    @property
    def names(self) -> tuple[str, ...]:
        """Image names (file stems), in sorted file order."""
        return tuple(path.stem for path in self._paths)

    @property
    def paths(self) -> tuple[Path, ...]:
        """Image files, in sorted order."""
        return self._paths

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, key: int | str) -> BenchmarkImage:
        """Load one image by position (negative allowed) or by name (file stem)."""
        if isinstance(key, str):
            if key not in self._index:
                close = difflib.get_close_matches(key, self._index, n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise KeyError(f"no image named {key!r} in {self._dataset_name}{hint}")
            return self._load(self._paths[self._index[key]])
        return self._load(self._paths[key])

    def __iter__(self) -> Iterator[BenchmarkImage]:
        for path in self._paths:
            yield self._load(path)

    def __repr__(self) -> str:
        return f"BenchmarkSet(name={self._dataset_name!r}, folder='{self._folder}', scale={self._scale}, n={len(self)})"

    def _load(self, path: Path) -> BenchmarkImage:
        hr = modcrop(read_image(path), self._scale)
        if hr.shape[-2] == 0 or hr.shape[-1] == 0:
            raise ValueError(f"image {path} is smaller than the scale {self._scale}")
        return BenchmarkImage(name=path.stem, path=path, hr=hr.contiguous())


def find_benchmark_sets(root: PathLike) -> list[str]:
    """Names of the benchmark sets under `root`: folders with images in ``HR/`` or directly inside.

    Hidden folders, folders named ``HR``/``LR``, and folders without ground-truth images (e.g. ``RealSRSet/`` with
    only ``LR/``, or ``train/`` holding sub-folders) are left out. The names are sorted case-insensitively.

    Args:
        root: folder holding one sub-folder per set.

    Returns:
        Folder names, usable as ``BenchmarkSet(root=root, name=...)``.

    Raises:
        FileNotFoundError: `root` does not exist.

    >>> import tempfile, torch
    >>> from blindsr.data.images import write_image
    >>> with tempfile.TemporaryDirectory() as root:
    ...     write_image(f"{root}/Set5/HR/a.png", torch.rand(3, 4, 4))
    ...     write_image(f"{root}/B100/b.png", torch.rand(3, 4, 4))
    ...     write_image(f"{root}/RealSRSet/LR/c.png", torch.rand(3, 4, 4))
    ...     find_benchmark_sets(root)
    ['B100', 'Set5']
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"benchmark root not found: {root}")
    sets = []
    for child in root.iterdir():
        if child.name.startswith(".") or child.name.upper() in (_HR_FOLDER, _LR_FOLDER) or not child.is_dir():
            continue
        hr = _child_dir(child, _HR_FOLDER)
        if list_images(hr if hr is not None else child):
            sets.append(child.name)
    return sorted(sets, key=lambda name: (name.lower(), name))


def _find_set_dir(root: Path, name: str) -> Path:
    exact = root / name
    if exact.is_dir():
        return exact
    if root.name.lower() == name.lower():  # root already is the set folder
        return root
    matches = [child for child in root.iterdir() if child.is_dir() and child.name.lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        spelled = ", ".join(sorted(child.name for child in matches))
        raise ValueError(f"benchmark set name {name!r} is ambiguous under {root}: {spelled}; use the exact spelling")
    available = find_benchmark_sets(root)
    listing = (
        f"sets found there: {', '.join(available)}"
        if available
        else f"no sets found there (expected {root}/<Set>/{_HR_FOLDER}/*.png)"
    )
    raise FileNotFoundError(f"benchmark set {name!r} not found: {exact} does not exist; {listing}")


def _image_folder(set_dir: Path) -> Path:
    hr = _child_dir(set_dir, _HR_FOLDER)
    if hr is not None:
        return hr
    if list_images(set_dir):
        return set_dir
    if _child_dir(set_dir, _LR_FOLDER) is not None:
        raise FileNotFoundError(
            f"benchmark set {set_dir.name!r} has no ground truth: {set_dir} has {_LR_FOLDER}/ but no {_HR_FOLDER}/"
        )
    raise FileNotFoundError(f"benchmark set {set_dir.name!r} has no {_HR_FOLDER}/ folder and no images in {set_dir}")


def _child_dir(parent: Path, name: str) -> Path | None:
    """``parent/name`` if it is a folder, else the one sub-folder whose name matches case-insensitively."""
    exact = parent / name
    if exact.is_dir():
        return exact
    matches = [child for child in parent.iterdir() if child.is_dir() and child.name.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def _check_unique_stems(paths: list[Path], folder: Path) -> None:
    by_stem: dict[str, list[str]] = {}
    for path in paths:
        by_stem.setdefault(path.stem, []).append(path.name)
    duplicated = [files for files in by_stem.values() if len(files) > 1]
    if duplicated:
        listing = "; ".join(" and ".join(files) for files in duplicated[:10])
        raise ValueError(
            f"{folder} has several files with the same name and different extensions ({listing}); "
            "image names must be unique, so keep one file per name"
        )


def _extensions() -> str:
    return ", ".join(f"*{suffix}" for suffix in IMAGE_EXTENSIONS)
