"""Random HR training patches; the LR side is synthesised later, on the fly, by the degradation engine.

>>> import tempfile, torch
>>> from blindsr.data.images import write_image
>>> with tempfile.TemporaryDirectory() as tmp:
...     write_image(f"{tmp}/a.png", torch.rand(3, 20, 30))
...     data = HRPatchDataset(folders=[tmp], patch_size=8, repeat=4, generator=torch.Generator().manual_seed(0))
...     (len(data), tuple(data[0].shape), data[0].dtype)
(4, (3, 8, 8), torch.float32)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from blindsr.data.images import IMAGE_EXTENSIONS, image_size, list_images, read_image_uint8

__all__ = ["HRPatchDataset"]

PathLike = str | os.PathLike[str]

_MAX_LISTED: Final = 10
# mixed into the DataLoader worker seed so the dataset's stream differs from the worker's global RNG stream
_WORKER_SEED_OFFSET: Final = 0x9E3779B97F4A7C15


class HRPatchDataset(Dataset[Tensor]):
    """Random square crops of HR images with random dihedral augmentation.

    Each item is one ``(3, P, P)`` float32 RGB patch in [0, 1], cut at a uniformly random position from image
    ``index % num_images``; with `augment`, one of the 8 symmetries of the square (identity, flips, rotations by
    multiples of 90°, transposes) is applied, each with probability 1/8. Images are read with
    :func:`blindsr.data.images.read_image_uint8` (gray becomes RGB, alpha is dropped; 16-bit files are rounded to 8
    bits) and held as 8-bit pixels, so patches are multiples of 1/255 whether or not `cache` is set.

    Randomness: with ``generator=None`` every draw uses torch's global RNG, which ``DataLoader`` seeds per worker
    (so ``DataLoader(generator=...)`` or ``torch.manual_seed`` makes a run reproducible). With an explicit CPU
    `generator`, draws in the main process use it. Inside a ``DataLoader`` worker the dataset copy re-seeds its
    generator from the worker's seed (``get_worker_info().seed``, which the loader derives from its own generator)
    so workers never replay the same stream and each epoch gets new crops.

    Images smaller than the patch cannot be cropped: by default they are an error (listing up to 10 of them);
    ``skip_small=True`` drops them with a warning instead.

    Args:
        folders: folders of training images (top level only, see :func:`blindsr.data.images.list_images`); a single
            path is accepted too.
        patch_size: side P of the square HR patch, in pixels.
        augment: apply a random dihedral transform to each patch.
        repeat: virtual dataset length multiplier; ``len(dataset) == num_images * repeat`` (fewer, larger epochs).
        cache: decode every image once, at construction, and keep the 8-bit pixels in memory (about
            ``3 * H * W`` bytes per image; shared copy-on-write with forked workers). Otherwise each item decodes
            its file.
        skip_small: drop images whose shorter side is below `patch_size` (with a warning) instead of failing.
        generator: optional CPU ``torch.Generator`` for the crop positions and transforms.

    Raises:
        FileNotFoundError: a folder does not exist or contains no images.
        ValueError: bad arguments, or images smaller than `patch_size` without `skip_small`.
    """

    def __init__(
        self,
        *,
        folders: Sequence[PathLike] | PathLike,
        patch_size: int,
        augment: bool = True,
        repeat: int = 1,
        cache: bool = True,
        skip_small: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"patch_size must be a positive integer, got {patch_size!r}")
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be a positive integer, got {repeat!r}")
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")
        paths = collect_training_images(folders, patch_size=patch_size, skip_small=skip_small, owner="HRPatchDataset")

        self._paths = tuple(paths)
        self._patch_size = patch_size
        self._augment = augment
        self._repeat = repeat
        self._generator = generator
        self._worker_seed: int | None = None
        self._cache: tuple[Tensor, ...] | None = tuple(read_image_uint8(path) for path in paths) if cache else None

    @property
    def paths(self) -> tuple[Path, ...]:
        """The images patches are drawn from, in order (folder by folder, sorted within each)."""
        return self._paths

    @property
    def num_images(self) -> int:
        """Number of usable images (after `skip_small`)."""
        return len(self._paths)

    @property
    def patch_size(self) -> int:
        """Side of the square patches."""
        return self._patch_size

    def __len__(self) -> int:
        return len(self._paths) * self._repeat

    def __getitem__(self, index: int) -> Tensor:
        """Draw a random patch of image ``index % num_images``: (3, P, P) float32 in [0, 1]."""
        length = len(self)
        if not -length <= index < length:
            raise IndexError(f"index {index} out of range for a dataset of length {length}")
        image_index = (index % length) % len(self._paths)
        image = self._cache[image_index] if self._cache is not None else read_image_uint8(self._paths[image_index])

        size = self._patch_size
        height, width = image.shape[-2:]
        if height < size or width < size:  # only if the file changed since construction
            raise ValueError(f"{self._paths[image_index]} ({width}×{height}) is smaller than patch_size={size}")
        generator = self._rng()
        top = int(torch.randint(height - size + 1, (1,), generator=generator))
        left = int(torch.randint(width - size + 1, (1,), generator=generator))
        patch = image[:, top : top + size, left : left + size]

        if self._augment:
            transform = int(torch.randint(8, (1,), generator=generator))
            if transform & 1:
                patch = patch.flip(-1)  # horizontal flip
            if transform & 2:
                patch = patch.flip(-2)  # vertical flip
            if transform & 4:
                patch = patch.rot90(1, dims=(-2, -1))
        return patch.to(torch.float32).div_(255.0).contiguous()

    def __repr__(self) -> str:
        return (
            f"HRPatchDataset(num_images={self.num_images}, patch_size={self._patch_size}, augment={self._augment}, "
            f"repeat={self._repeat}, cache={self._cache is not None})"
        )

    def _rng(self) -> torch.Generator | None:
        if self._generator is None:
            return None
        info = get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            # this is the worker's own copy of the dataset: give it a stream of its own
            self._generator = torch.Generator().manual_seed((info.seed + _WORKER_SEED_OFFSET) % 2**64)
            self._worker_seed = info.seed
        return self._generator


def collect_training_images(
    folders: PathLike | Sequence[PathLike],
    *,
    patch_size: int,
    skip_small: bool,
    owner: str = "training data",
    note: Callable[[str], None] | None = None,
) -> list[Path]:
    """The image files of the training folders, checked for size against the patch.

    Args:
        folders: one folder or several (each must exist and hold at least one image).
        patch_size: HR patch side; images with a smaller side are an error, or dropped with `skip_small`.
        skip_small: drop too-small images with a warning instead of failing.
        owner: who is asking (prefix of the warning).
        note: receives the line about the dropped images instead of a ``UserWarning`` (``blindsr train`` prints
            it once, as a message of the run).

    Returns:
        The usable image paths, folder by folder, sorted within each.

    Raises:
        FileNotFoundError: a folder is missing or holds no images.
        ValueError: no folders, or images smaller than the patch (listed, up to 10) without `skip_small`.
    """
    folder_list = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    if not folder_list:
        raise ValueError("folders is empty: give at least one folder of training images")
    paths: list[Path] = []
    for folder in folder_list:
        found = list_images(folder)
        if not found:
            extensions = ", ".join(f"*{suffix}" for suffix in IMAGE_EXTENSIONS)
            raise FileNotFoundError(f"no training images ({extensions}) in {folder}")
        paths.extend(found)
    sizes = [image_size(path) for path in paths]  # header only: cheap
    small = [(path, h, w) for path, (h, w) in zip(paths, sizes, strict=True) if min(h, w) < patch_size]
    if not small:
        return paths
    listing = ", ".join(f"{path} ({w}×{h})" for path, h, w in small[:_MAX_LISTED])
    if len(small) > _MAX_LISTED:
        listing += f", ... ({len(small) - _MAX_LISTED} more)"
    what = f"{len(small)} of {len(paths)} training images smaller than patch_size={patch_size}: {listing}"
    if not skip_small:
        smallest = min(min(h, w) for _, h, w in small)
        raise ValueError(
            f"found {what}. Lower patch_size (the smallest side is {smallest}) or pass skip_small=True to drop them."
        )
    if len(small) == len(paths):
        raise ValueError(f"found {what}; skip_small=True would leave no images. Lower patch_size.")
    if note is not None:
        note(f"note: dropping {what} (data.skip_small)")
    else:
        warnings.warn(f"{owner}: dropping {what}", UserWarning, stacklevel=3)
    return [path for path, (h, w) in zip(paths, sizes, strict=True) if min(h, w) >= patch_size]
