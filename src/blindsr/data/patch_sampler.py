"""Step-deterministic HR patch batches for training: batch ``s`` is a pure function of ``(seed, s, rank)``.

Unlike :class:`blindsr.data.hr_patches.HRPatchDataset` (a ``Dataset`` whose stream depends on loader and worker
state), :class:`PatchSampler` has no state besides the decoded images: a resumed run asks for ``batch(step)`` and
gets exactly the batch the interrupted run would have drawn. The images are decoded once and kept as 8-bit pixels
on the target device, so with ``device="cuda"`` the whole training set lives on the GPU and a batch is cut there.

>>> import tempfile, torch
>>> from blindsr.data.images import write_image
>>> with tempfile.TemporaryDirectory() as tmp:
...     write_image(f"{tmp}/a.png", torch.rand(3, 20, 30))
...     sampler = PatchSampler(folders=[tmp], patch_size=8, batch_size=4, seed=1)
...     x = sampler.batch(0)
...     (tuple(x.shape), x.dtype, bool(torch.equal(x, sampler.batch(0))))
((4, 3, 8, 8), torch.float32, True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import torch
from torch import Tensor

from blindsr.data.hr_patches import collect_training_images
from blindsr.data.images import read_image_uint8
from blindsr.degradations.noise import derive_seed

__all__ = ["PatchSampler"]

PathLike = str | os.PathLike[str]

_SEED_TAG: Final = "patches"
# positions are drawn as 62-bit integers reduced modulo the range: exact integer arithmetic, bias < 2**-40
_POSITION_BITS: Final = 62


class PatchSampler:
    """Batches of random square HR crops, each batch determined by ``(seed, step, rank)`` alone.

    ``batch(step, rank=rank)`` seeds a fresh CPU ``torch.Generator`` with
    ``derive_seed("patches", seed, step, rank)`` and draws, for every sample, in this order: the image index
    (uniform over the images, with replacement), the top-left crop position (uniform over the valid positions of
    that image) and, with `augment`, one of the 8 symmetries of the square (uniform). All numbers are drawn on
    the CPU before any pixel is touched, so the draws, and the uint8 pixels of the batch, are the same on every
    device. The crops and transforms then run on `device`, and the stacked batch is converted to float32 / 255.

    Transform ``k`` (0-7): bit 0 flips horizontally, bit 1 flips vertically, bit 2 then transposes (swaps H and
    W); together they are the dihedral group of the square, ``k = 0`` being the identity.

    Images are read with :func:`blindsr.data.images.read_image_uint8` (gray becomes RGB, alpha is dropped, 16-bit
    files are rounded to 8 bits) and kept as a list of ``(3, H, W)`` uint8 tensors on `device`: about
    ``3 * H * W`` bytes per image (:attr:`nbytes`). Images smaller than the patch cannot be cropped: by default
    they are an error (listing up to 10 of them); ``skip_small=True`` drops them with a warning instead.

    Different ranks draw different batches for the same step; the global batch of a data-parallel step is the
    concatenation of the per-rank batches.

    Args:
        folders: folders of training images (top level only, see :func:`blindsr.data.images.list_images`); a single
            path is accepted too.
        patch_size: side P of the square HR patches, in pixels.
        batch_size: number B of patches per batch (per rank).
        augment: apply a random dihedral transform to each patch.
        device: where the decoded images are kept and the batches are produced.
        skip_small: drop images whose shorter side is below `patch_size` (with a warning) instead of failing.
        seed: run seed; any integer (it is hashed with the step and rank by
            :func:`blindsr.degradations.noise.derive_seed`).
        note: receives the one line about the images `skip_small` dropped, instead of a ``UserWarning``.

    Raises:
        FileNotFoundError: a folder does not exist or contains no images.
        ValueError: bad arguments, or images smaller than `patch_size` without `skip_small`.
        blindsr.data.image_errors.ImageReadError: an image cannot be decoded.
    """

    def __init__(
        self,
        *,
        folders: Sequence[PathLike] | PathLike,
        patch_size: int,
        batch_size: int,
        augment: bool = True,
        device: torch.device | str = "cpu",
        skip_small: bool = False,
        seed: int = 0,
        note: Callable[[str], None] | None = None,
    ) -> None:
        _check_positive_int("patch_size", patch_size)
        _check_positive_int("batch_size", batch_size)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        paths = collect_training_images(
            folders, patch_size=patch_size, skip_small=skip_small, owner="PatchSampler", note=note
        )

        self._device = torch.device(device)
        images: list[Tensor] = []
        for path in paths:
            image = read_image_uint8(path)
            if min(image.shape[-2:]) < patch_size:  # header and decoded size disagree: should not happen
                height, width = image.shape[-2:]
                raise ValueError(f"{path} ({width}×{height}) is smaller than patch_size={patch_size}")
            images.append(image.to(self._device))
        self._images = images
        self._paths = tuple(paths)
        # valid top-left positions per image, on the CPU, for the vectorised draws
        self._ranges = torch.tensor(
            [[image.shape[-2] - patch_size + 1, image.shape[-1] - patch_size + 1] for image in images],
            dtype=torch.int64,
        )
        self._patch_size = patch_size
        self._batch_size = batch_size
        self._augment = augment
        self._seed = seed

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
        """Side P of the square patches."""
        return self._patch_size

    @property
    def batch_size(self) -> int:
        """Patches per batch (per rank)."""
        return self._batch_size

    @property
    def device(self) -> torch.device:
        """Where the images are kept and batches are returned."""
        return self._device

    @property
    def augment(self) -> bool:
        """Whether random dihedral transforms are applied."""
        return self._augment

    @property
    def seed(self) -> int:
        """The run seed batches are derived from."""
        return self._seed

    @property
    def nbytes(self) -> int:
        """Memory held by the decoded images on :attr:`device`, in bytes."""
        return sum(image.numel() for image in self._images)

    def draws(self, step: int, *, rank: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The random choices behind ``batch(step, rank=rank)``, as CPU int64 tensors of shape (B,).

        Returns:
            ``(image_index, top, left, transform)``; `transform` is all zeros without `augment`.
        """
        _check_non_negative_int("step", step)
        _check_non_negative_int("rank", rank)
        generator = torch.Generator().manual_seed(derive_seed(_SEED_TAG, self._seed, step, rank))
        count = self._batch_size
        index = torch.randint(len(self._images), (count,), generator=generator)
        raw = torch.randint(1 << _POSITION_BITS, (count, 2), generator=generator)
        position = raw % self._ranges[index]
        if self._augment:
            transform = torch.randint(8, (count,), generator=generator)
        else:
            transform = torch.zeros(count, dtype=torch.int64)
        return index, position[:, 0], position[:, 1], transform

    def batch(self, step: int, *, rank: int = 0) -> Tensor:
        """The batch of `step` for `rank`: ``(batch_size, 3, P, P)`` float32 in [0, 1] on :attr:`device`.

        Identical calls give identical batches (on any device); another step or rank gives another batch.

        Args:
            step: training step, >= 0.
            rank: data-parallel rank, >= 0.

        Raises:
            ValueError: `step` or `rank` is negative or not an integer.
        """
        index, top, left, transform = (t.tolist() for t in self.draws(step, rank=rank))
        size = self._patch_size
        crops = []
        for i, t, s, k in zip(index, top, left, transform, strict=True):
            patch = self._images[i][:, t : t + size, s : s + size]
            flips = [dim for bit, dim in ((1, -1), (2, -2)) if k & bit]
            if flips:
                patch = patch.flip(flips)
            if k & 4:
                patch = patch.transpose(-2, -1)  # a view: stack makes it contiguous
            crops.append(patch)
        return torch.stack(crops).to(torch.float32).div_(255.0)

    def __repr__(self) -> str:
        return (
            f"PatchSampler(num_images={self.num_images}, patch_size={self._patch_size}, "
            f"batch_size={self._batch_size}, augment={self._augment}, device={str(self._device)!r}, "
            f"seed={self._seed})"
        )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_non_negative_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
