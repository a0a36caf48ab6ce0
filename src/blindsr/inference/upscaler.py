"""``Upscaler``: super-resolve images as users have them, tiled, with one degradation estimate per image.

Pipeline per image: decode to (1, 3, h, w) float on the CPU → plan tiles (:mod:`blindsr.ops.tiling`) → the
adapter estimates the degradation of the whole image (:func:`blindsr.archs.adapter_for`) → each tile's window is
moved to the device, restored with that estimate, and its core pasted into a CPU canvas → optional resize to
``outscale`` (MATLAB bicubic) → clamp to [0, 1] → back to the input's kind (gray stays gray, alpha is upscaled with
bicubic, 16-bit stays 16-bit).

Memory: before any output buffer is allocated, the memory a job needs (output buffers at their real dtype, the
input and its degradation maps, the per-tile working set on the CPU) is estimated and compared with a limit
(``max_memory``, default 75 % of the available RAM); a job above it is refused with a one-line
:class:`MemoryLimitError`. Numpy and PIL outputs are assembled tile by tile straight into their uint8 / uint16
array (no full-size float32 canvas unless ``outscale`` needs one to resize).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn

from blindsr.archs import InferenceAdapter, TiledImage, adapter_for
from blindsr.data.user_images import (
    LUMA_WEIGHTS,
    ImageMode,
    LoadedImage,
    is_pil_image,
    loaded_from_array,
    loaded_from_pil,
    loaded_to_array,
)
from blindsr.ops.resize import imresize
from blindsr.ops.tiling import balanced_tile, crop_core, paste_core, plan_tiles
from blindsr.zoo.weights import LoadedModel, load_model

__all__ = [
    "CancelCheck",
    "MemoryEstimate",
    "MemoryLimitError",
    "Precision",
    "ProgressCallback",
    "UpscaleCancelledError",
    "UpscaleResult",
    "Upscaler",
    "available_memory",
    "default_memory_limit",
    "format_bytes",
    "parse_memory_size",
    "resolve_device",
]

Precision = Literal["fp32", "bf16", "fp16"]
_PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

ImageT = TypeVar("ImageT")

_MIN_TILE = 16  # smallest tile the automatic size or an out-of-memory retry goes down to
_TILE_MULTIPLE = 8  # automatic tile sizes are multiples of this
_PROBE_SIDE = 32  # side of the probe input the per-pixel memory model is measured on
_ACTIVATION_FACTOR = 3.0  # peak memory ≈ this × the largest single activation (input, output, skip connections)
_CUDA_FRACTION = 0.6  # of the free GPU memory, for activations (the rest: allocator fragmentation, workspaces)
_CPU_FRACTION = 0.5  # of the available RAM
# bytes of (modelled) activations: larger CPU tiles are no faster (dmsr-x4, 500x500: tile 128 ran 3x faster than
# 408), and the model overestimates (the real peak is about 2/3), so this bounds a CPU tile's working set to ~1 GB
_CPU_CAP = 3 << 29
_CPU_TILE_SHARE = 0.25  # on the CPU, the automatic tile's working set stays within this share of max_memory
_HOST_FRACTION = 0.75  # of the available RAM: the default memory limit of one job
# bytes per LR pixel: the float32 RGB input the network reads (with its checks' temporaries), and the degradation
# maps kept at LR size (noise canvas, per-window noise maps, the result's copy). Decoding peaks at 38 B/px (8-bit
# RGB PNG, measured), but before any of the rest exists
_INPUT_BYTES = 16
_MAPS_BYTES = 40
_STRIP_ROWS = 256  # rows per piece when a full-size float image (resized output, alpha) is quantised


@dataclass(frozen=True, eq=False)
class UpscaleResult(Generic[ImageT]):
    """An upscaled image with the degradation that was estimated for it.

    Attributes:
        image: the output, of the same kind as the input (PIL image, numpy array, tensor or ``LoadedImage``).
        kernel: (k, k) float32 estimated blur kernel, summing to 1 (DMSR), else None.
        noise: (h, w, 3) float32 signed noise map at the input's size, in [0, 1] units (DMSR), else None.
        idr: (d,) float32 implicit degradation representation (MRDA; None until its adapter exists).
        tile: the tile size used for this image, or None when it ran in one piece.
    """

    image: ImageT
    kernel: np.ndarray | None
    noise: np.ndarray | None
    idr: np.ndarray | None
    tile: int | None


@dataclass(frozen=True, eq=False)
class _Raw:
    sr: Tensor | None  # (1, 3, H, W) float32 on the CPU, final size, clamped to [0, 1]; None: went to a _Pixels
    kernel: Tensor | None
    noise: Tensor | None  # (1, 3, h, w)
    idr: Tensor | None
    tile: int | None


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → cuda if available, else mps if available, else cpu; other names are checked.

    Raises:
        ValueError: an unknown device name, or a device this machine does not have (one line).

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device.strip().lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from e
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but CUDA is not available (torch {torch.__version__}; a CPU-only "
                "build, or no GPU); use --device cpu or auto"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r} requested but MPS is not available on this machine")
    elif resolved.type != "cpu":
        raise ValueError(f"unsupported device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    return resolved


def _resolve_precision(precision: str, device: torch.device) -> Precision:
    if precision not in _PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(_PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        warnings.warn("fp16 is not supported on the CPU (slow or missing half kernels); using fp32", stacklevel=3)
        return "fp32"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        warnings.warn("this GPU does not support bf16; using fp32", stacklevel=3)
        return "fp32"
    return cast(Precision, precision)


def available_memory(device: torch.device) -> int:
    """Bytes the automatic tile size may plan for on `device`.

    CUDA: 60 % of the free memory (``torch.cuda.mem_get_info``). MPS: 60 % of Metal's recommended working set minus
    what the driver holds. CPU: 50 % of the available RAM (``MemAvailable`` in /proc/meminfo, else
    ``os.sysconf``), capped at 1.5 GiB (larger CPU tiles are no faster; with ``max_memory`` the
    :class:`Upscaler` also keeps it within a quarter of that limit).
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * _CUDA_FRACTION)
    if device.type == "mps":
        with contextlib.suppress(Exception):
            recommended = torch.mps.recommended_max_memory()
            return int(max(recommended - torch.mps.driver_allocated_memory(), 0) * _CUDA_FRACTION)
    return int(min(_system_available_ram() * _CPU_FRACTION, _CPU_CAP))


def _system_available_ram() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    return 4 << 30


# ---------------------------------------------------------------------------------------------------- memory limit

_SIZE_UNITS: dict[str, int] = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_SIZE_UNITS.update({f"{unit}i": 1 << (10 * power) for power, unit in enumerate("kmgt", start=1)})


def parse_memory_size(value: str | int) -> int:
    """A memory size in bytes: ``"8G"``, ``"1.5GB"``, ``"512M"``, ``"2GiB"`` or a number of bytes.

    K, M, G and T are powers of 1000 (KiB, MiB, GiB, TiB: of 1024); a trailing ``B`` is optional.

    Raises:
        ValueError: not a size, or not positive (one line).

    >>> parse_memory_size("8G"), parse_memory_size("512MiB"), parse_memory_size(1000)
    (8000000000, 536870912, 1000)
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a memory size such as 8G, 512M or 2GiB, got {value!r}")
    if isinstance(value, int):
        number = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]i?)?b?\s*", value.lower())
        if match is None:
            raise ValueError(f"expected a memory size such as 8G, 512M or 2GiB, got {value!r}")
        number = float(match[1]) * _SIZE_UNITS[match[2] or ""]
    if not (math.isfinite(number) and number >= 1):
        raise ValueError(f"a memory size must be positive, got {value!r}")
    return int(number)


def format_bytes(count: float) -> str:
    """``12.4 GB``, ``512.0 MB``, ...: powers of 1000, as :func:`parse_memory_size` reads them.

    >>> format_bytes(12_345_678_901), format_bytes(999)
    ('12.3 GB', '999 B')
    """
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


def default_memory_limit() -> int:
    """The memory one job may need when no ``max_memory`` is given: 75 % of the available RAM (``MemAvailable``)."""
    return int(_system_available_ram() * _HOST_FRACTION)


@dataclass(frozen=True)
class MemoryEstimate:
    """The memory one image needs, in bytes, by part (host memory: on a GPU the tiles' activations live there).

    Attributes:
        input_size, output_size: (height, width) of the input and of the output.
        scale: the final scale.
        output: the output buffers at their real dtype, and the float buffers a resize or an alpha channel needs.
        input: the input as the network gets it (with the decoder's copies) and the degradation maps.
        tiles: the working set of one tile (its activations on the CPU; its output copy when on a GPU).
        extra: what the caller adds per job (``blindsr upscale``: writing the file), named `extra_label`.
    """

    input_size: tuple[int, int]
    output_size: tuple[int, int]
    scale: float
    output: int
    input: int
    tiles: int
    extra: int = 0
    extra_label: str = "writing"

    @property
    def total(self) -> int:
        """All parts together."""
        return self.output + self.input + self.tiles + self.extra

    def parts(self) -> list[tuple[str, int]]:
        """(name, bytes) of the non-empty parts, in a fixed order."""
        parts = [("output", self.output), (self.extra_label, self.extra), ("input", self.input), ("tiles", self.tiles)]
        return [(name, size) for name, size in parts if size > 0]

    def describe(self) -> str:
        """``8000x8000 px at x4 = 32000x32000: output 12.3 GB, writing 36.9 GB, input 5.1 GB, tiles 1.0 GB``."""
        (h, w), (oh, ow) = self.input_size, self.output_size
        parts = ", ".join(f"{name} {format_bytes(size)}" for name, size in self.parts())
        return f"{w}x{h} px at x{self.scale:g} = {ow}x{oh}: {parts}"


class MemoryLimitError(ValueError):
    """An image whose job would need more memory than the limit; one line: how much, the limit, what to change.

    Attributes:
        estimate: the :class:`MemoryEstimate`.
        limit: the limit in bytes.
    """

    def __init__(
        self, estimate: MemoryEstimate, limit: int, *, flags: tuple[str, str, str] = ("max_memory", "outscale", "tile")
    ) -> None:
        self.estimate = estimate
        self.limit = limit
        limit_flag, outscale_flag, tile_flag = flags
        largest = max(estimate.parts(), key=lambda part: part[1])[0]
        # a smaller tile shrinks the tiles' part; a smaller outscale all the others (output, writing, input's share)
        hint = f"use a smaller {tile_flag if largest == 'tiles' else outscale_flag}"
        super().__init__(
            f"needs about {format_bytes(estimate.total)} ({estimate.describe()}), above the limit of "
            f"{format_bytes(limit)}; raise it with {limit_flag} or {hint}"
        )


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


class Upscaler:
    """Super-resolve images with a blindsr model: tiled, with the degradation estimated once per image.

    Tiling: the image is cut into ``tile × tile`` cores, each run inside a window with `tile_pad` pixels of context,
    and only the core of each output is kept (no blending: see :mod:`blindsr.ops.tiling`). Blind-SR models
    estimate the degradation **once for the whole image**, and every tile is restored with that estimate (DMSR:
    the blur kernel and the RCAN body's channel statistics are pooled over all tiles, the noise map is local; see
    :class:`~blindsr.archs.dmsr.DMSRAdapter`). The whole-image output is assembled on the CPU: only one
    window and its output are on the device at a time.

    Precision: the weights stay float32; ``bf16``/``fp16`` run the network under ``torch.autocast``. fp16 on the
    CPU falls back to fp32 with a warning.

    Args:
        model: a :class:`~blindsr.zoo.LoadedModel` (its network is moved to `device`, in float32), or a model name
            (``"dmsr-x4"``, see ``blindsr models``) or release file path for :func:`~blindsr.zoo.load_model`.
        tile: core side in LR pixels; None or 0 = the whole image in one piece; ``"auto"`` (the default, as for
            ``blindsr upscale``) = the largest tile the device's free memory allows (a rough per-pixel memory model
            of the network measured on a small probe; images that fit run whole; on the CPU at most ~1 GB of
            activations, and a quarter of `max_memory`),
            spread evenly over the image (:func:`~blindsr.ops.tiling.balanced_tile`), halved and retried when the
            device still runs out of memory. An image that fits runs whole either way, so ``"auto"`` and None give
            the same output for it; a larger one is tiled (for the shipped models within 1/255 of whole-image, see
            `tile_pad`) instead of allocating the whole image's activations at once.
        tile_pad: context pixels around each core. The default 16 makes DMSR's blur estimate (receptive radius 7)
            and noise map (radius 6) equal their whole-image values; with the body's channel attention pooled over
            the whole image, tiled outputs of the shipped ``dmsr-x4`` stay within 1/255 of whole-image ones.
        device: ``"auto"`` (cuda, else mps, else cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        outscale: final scale (Real-ESRGAN's ``-s``): the network runs at its native scale, then its output is
            resized with MATLAB-exact bicubic to ``round(h·outscale) × round(w·outscale)``; None = native.
        max_memory: the most memory (bytes, or a size such as ``"8G"``: :func:`parse_memory_size`) one image may
            need on the host (see :meth:`memory_estimate`); an image above it is refused with
            :class:`MemoryLimitError` before its output is allocated. None = :func:`default_memory_limit` (75 % of
            the available RAM, read at each image).

    Raises:
        ValueError: a bad device, precision, tile, tile_pad, outscale or max_memory (one-line messages).
        KeyError, FileNotFoundError, WeightsError: from :func:`~blindsr.zoo.load_model`.

    >>> import blindsr, torch
    >>> up = blindsr.Upscaler("dmsr-x4", tile="auto")
    >>> up.upscale(torch.rand(3, 32, 32)).shape
    torch.Size([3, 128, 128])
    """

    min_side: ClassVar[int] = 8
    """Smallest input side accepted: below it an image carries too little context for a degradation estimate."""

    def __init__(
        self,
        model: LoadedModel | str | os.PathLike[str],
        *,
        tile: int | Literal["auto"] | None = "auto",
        tile_pad: int = 16,
        device: str = "auto",
        precision: Precision = "fp32",
        outscale: float | None = None,
        max_memory: int | str | None = None,
    ) -> None:
        self._device = resolve_device(device)
        self._max_memory = None if max_memory is None else parse_memory_size(max_memory)
        self._precision = _resolve_precision(precision, self._device)
        if isinstance(tile, bool) or not (tile is None or tile == "auto" or isinstance(tile, int)):
            raise ValueError(f"tile must be a positive integer, 0/None (whole image) or 'auto', got {tile!r}")
        if isinstance(tile, int) and tile < 0:
            raise ValueError(f"tile must be a positive integer, 0/None (whole image) or 'auto', got {tile}")
        if isinstance(tile, int) and 0 < tile < self.min_side:
            raise ValueError(f"tile must be at least {self.min_side} pixels, got {tile}")
        if isinstance(tile_pad, bool) or not isinstance(tile_pad, int) or tile_pad < 0:
            raise ValueError(f"tile_pad must be an integer >= 0, got {tile_pad!r}")
        if outscale is not None and not (
            isinstance(outscale, (int, float)) and math.isfinite(outscale) and 0 < outscale <= 16
        ):
            raise ValueError(f"outscale must be in (0, 16], got {outscale!r}")
        if isinstance(model, LoadedModel):
            model.model.to(device=self._device, dtype=torch.float32).eval()
            self._model = model
        else:
            self._model = load_model(model, device=self._device)
        self._adapter: InferenceAdapter[Any] = adapter_for(self._model.arch, self._model.model)
        self._auto = tile == "auto"
        self._tile: int | None = None if tile == "auto" or not tile else int(tile)
        self._auto_pixels: int | None = None  # the window area the memory budget allows (auto)
        self._auto_override: int | None = None  # the tile after an out-of-memory retry (auto)
        self._bytes_per_pixel_cache: float | None = None
        self._tile_pad = tile_pad
        self._outscale = float(outscale) if outscale is not None else None

    # ---------------------------------------------------------------------------------------------- properties

    @property
    def scale(self) -> int:
        """The network's native scale."""
        return self._model.scale

    @property
    def outscale(self) -> float:
        """The final scale of the outputs (the native scale unless ``outscale`` was given)."""
        return self._outscale if self._outscale is not None else float(self.scale)

    @property
    def model(self) -> LoadedModel:
        """The loaded model (network, architecture, card, weights file)."""
        return self._model

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return self._device

    @property
    def precision(self) -> Precision:
        """The precision in effect (after the CPU fp16 → fp32 fallback)."""
        return self._precision

    @property
    def tile_pad(self) -> int:
        """Context pixels around each tile's core."""
        return self._tile_pad

    @property
    def auto_tile(self) -> bool:
        """Whether the tile size is chosen from the free memory."""
        return self._auto

    @property
    def max_memory(self) -> int:
        """The memory limit of one image in bytes: ``max_memory``, else :func:`default_memory_limit` (read now)."""
        return self._max_memory if self._max_memory is not None else default_memory_limit()

    @property
    def max_memory_is_default(self) -> bool:
        """Whether :attr:`max_memory` follows the available RAM (no ``max_memory`` was given)."""
        return self._max_memory is None

    @property
    def tile(self) -> int | None:
        """The tile size in use: None = whole images; with ``"auto"``, the largest tile the free memory allows
        (used for images larger than the memory allows in one piece, spread evenly over each image, so an image's
        :attr:`UpscaleResult.tile` can be smaller; computed on first access). The first access (or the first image)
        also measures the network's activations on a 32x32 probe, for the tile size and the memory estimate."""
        if self._auto:
            return self._auto_override or self._tile_for_pixels(self._auto_budget_pixels())
        if self._device.type == "cpu":
            self._bytes_per_pixel()  # measured now rather than inside the first image's run
        return self._tile

    # ---------------------------------------------------------------------------------------------- public API

    def upscale(self, image: ImageT) -> ImageT:
        """Super-resolve one image (or a batch of tensors), returning the same kind.

        Args:
            image: a PIL image (L, LA, RGB, RGBA, P, I;16, ...: the mode is kept, palettes become RGB(A)); a numpy
                array (H, W) / (H, W, C) with C = 1..4, uint8, uint16 or float in [0, 1]; a float tensor (3, h, w)
                or (B, 3, h, w) in [0, 1] (any device; the output comes back there, in the same dtype); or a
                :class:`~blindsr.data.user_images.LoadedImage`. Alpha is upscaled separately with bicubic; gray runs as
                R = G = B and comes back as the BT.601 luma.

        Returns:
            The upscaled image, clamped to [0, 1] (or the integer range), ``outscale`` times larger.

        Raises:
            TypeError: an unsupported input type.
            ValueError: a wrong shape, a side below :attr:`min_side`, or NaN/infinite values.
            MemoryLimitError: the image would need more than :attr:`max_memory` (a ``ValueError``; checked before
                the output is allocated).
            torch.OutOfMemoryError: the device ran out of memory with a fixed tile (``"auto"`` halves and retries).
        """
        if isinstance(image, Tensor):
            return cast(ImageT, self._upscale_tensor(image))
        return self.upscale_with_degradation(image).image

    def upscale_with_degradation(
        self, image: ImageT, *, cancel: CancelCheck | None = None, progress: ProgressCallback | None = None
    ) -> UpscaleResult[ImageT]:
        """Like :meth:`upscale`, also returning the estimated degradation and the tile size used.

        Args:
            image: as for :meth:`upscale`; a tensor batch must hold one image.
            cancel: a :class:`threading.Event` or a zero-argument callable returning True to stop; checked before
                the degradation estimate and before each tile (a server sets it when its client goes away).
            progress: a callable ``progress(done, total)`` told how many of the image's tiles are restored:
                ``(0, total)`` once the degradation is estimated, then ``(i, total)`` after the i-th tile
                (``blindsr upscale`` draws a per-tile bar with it). An out-of-memory retry with smaller tiles
                starts again at ``(0, new_total)``. It does not change the output.

        Returns:
            ``UpscaleResult(image, kernel, noise, idr, tile)``.

        Raises:
            UpscaleCancelledError: `cancel` was set before the work was done.
        """
        if progress is not None:
            if not callable(progress):
                raise TypeError(f"progress must be a callable (done, total), got {type(progress).__name__}")
            with _progress_scope(progress):
                return self.upscale_with_degradation(image, cancel=cancel)
        if cancel is not None:
            with _cancel_scope(cancel):
                return self.upscale_with_degradation(image)
        if isinstance(image, Tensor):
            batch = self._as_batch(image)
            if batch.shape[0] != 1:
                raise ValueError(f"upscale_with_degradation takes one image, got a batch of {batch.shape[0]}")
            self._check_tensor(batch)
            raw = self._run(batch)
            assert raw.sr is not None
            out = raw.sr.to(device=image.device, dtype=image.dtype)
            return self._result(cast(ImageT, out if image.ndim == 4 else out[0]), raw)
        if isinstance(image, LoadedImage):
            self.check_memory(image.height, image.width, mode=image.mode, bit_depth=image.bit_depth)
            upscaled, raw = self._upscale_loaded(image)
            return self._result(cast(ImageT, upscaled), raw)
        if is_pil_image(image):
            loaded = loaded_from_pil(cast(Any, image))
            self.check_memory(loaded.height, loaded.width, mode=loaded.mode, bit_depth=loaded.bit_depth, output="pil")
            pixels, raw = self._upscale_pixels(loaded, bit_depth=_pil_bit_depth(loaded.mode, loaded.bit_depth))
            return self._result(cast(ImageT, _pixels_to_pil(pixels, loaded)), raw)
        if isinstance(image, np.ndarray):
            loaded = loaded_from_array(image)
            self.check_memory(loaded.height, loaded.width, mode=loaded.mode, bit_depth=loaded.bit_depth, output="array")
            pixels, raw = self._upscale_pixels(loaded, bit_depth=loaded.bit_depth)
            keep_axis = image.ndim == 3 and image.shape[2] == 1
            return self._result(cast(ImageT, pixels[:, :, None] if keep_axis else pixels), raw)
        raise TypeError(
            f"cannot upscale a {type(image).__name__}: pass a PIL image, a numpy array, a (3, h, w) or "
            "(1, 3, h, w) float tensor, or a LoadedImage"
        )

    def memory_estimate(
        self,
        height: int,
        width: int,
        *,
        mode: ImageMode = "rgb",
        bit_depth: int = 8,
        output: Literal["loaded", "array", "pil", "tensor"] = "loaded",
        extra_per_pixel: float = 0.0,
        extra_label: str = "writing",
    ) -> MemoryEstimate:
        """About how much host memory upscaling one ``height × width`` image needs, by part (no work is done, but
        the first call measures the network's activations on a small probe).

        Args:
            height, width: the input size.
            mode, bit_depth: the input's kind, as in :class:`~blindsr.data.user_images.LoadedImage`.
            output: what comes back: ``"loaded"`` (a LoadedImage: float32 RGB) or ``"tensor"`` (float32), or
                ``"array"`` / ``"pil"`` (assembled straight into their uint8 / uint16 / float32 pixels).
            extra_per_pixel: bytes per output pixel the caller needs on top (``blindsr upscale``: to encode the
                file), reported as `extra_label`.

        Returns:
            A :class:`MemoryEstimate`; its ``total`` is what :meth:`check_memory` compares with the limit.
        """
        s = self.scale
        oh, ow = self._output_size(height, width)
        lr, native, out = height * width, height * width * s * s, oh * ow
        gray = mode in ("gray", "gray_alpha")
        alpha = mode in ("gray_alpha", "rgba")
        resized = (oh, ow) != (height * s, width * s)
        if output in ("array", "pil"):
            depth = _pil_bit_depth(mode, bit_depth) if output == "pil" else bit_depth
            item = 1 if depth <= 8 else 2 if depth <= 16 else 4
            channels = (1 if gray else 3) + int(alpha)
            buffers = out * channels * item + (out * item if gray else 0)  # gray: two candidates (see _Pixels)
            if output == "pil":
                buffers += out * (4 if channels > 1 else item)  # Pillow's own copy: RGB, LA and RGBA take 4 bytes
            buffers += (12 * out if resized else 0) + (16 * out if alpha else 0)  # floats: resized RGB; alpha
        else:
            buffers = 12 * out + (16 * out if alpha else 0)  # float32 RGB; alpha and its resize temporaries
        if resized:  # the native float canvas, imresize's intermediate and its per-tap temporaries
            buffers += 12 * native + 12 * max(native, out) + 24 * out
        tile = self._tile_for_image(height, width)
        side = tile + 2 * self._tile_pad if tile is not None else max(height, width)
        window = min(side, height) * min(side, width)
        # on a GPU the activations live there, and the host only receives each window's output
        tiles = int(window * self._bytes_per_pixel()) if self._device.type == "cpu" else window * s * s * 12 * 2
        return MemoryEstimate(
            input_size=(height, width),
            output_size=(oh, ow),
            scale=self.outscale,
            output=int(buffers),
            input=lr * (_INPUT_BYTES + _MAPS_BYTES + (4 if alpha else 0)),
            tiles=tiles,
            extra=int(out * extra_per_pixel),
            extra_label=extra_label,
        )

    def check_memory(
        self,
        height: int,
        width: int,
        *,
        mode: ImageMode = "rgb",
        bit_depth: int = 8,
        output: Literal["loaded", "array", "pil", "tensor"] = "loaded",
        extra_per_pixel: float = 0.0,
        extra_label: str = "writing",
        flags: tuple[str, str, str] = ("max_memory", "outscale", "tile"),
    ) -> MemoryEstimate:
        """:meth:`memory_estimate`, refused when above :attr:`max_memory`.

        Args:
            height, width, mode, bit_depth, output, extra_per_pixel, extra_label: as for :meth:`memory_estimate`.
            flags: how the message names the limit, the outscale and the tile (``blindsr upscale``:
                ``("--max-memory", "--outscale", "--tile")``).

        Returns:
            The estimate, when within the limit.

        Raises:
            MemoryLimitError: above the limit (one line: how much, the limit, what to change).
        """
        estimate = self.memory_estimate(
            height,
            width,
            mode=mode,
            bit_depth=bit_depth,
            output=output,
            extra_per_pixel=extra_per_pixel,
            extra_label=extra_label,
        )
        limit = self.max_memory
        if estimate.total > limit:
            raise MemoryLimitError(estimate, limit, flags=flags)
        return estimate

    # ---------------------------------------------------------------------------------------------- internals

    def _check_tensor(self, batch: Tensor) -> None:
        estimate = self.memory_estimate(int(batch.shape[-2]), int(batch.shape[-1]), output="tensor")
        if batch.shape[0] > 1:  # every output is kept, then concatenated
            estimate = replace(estimate, output=estimate.output * 2 * int(batch.shape[0]))
        limit = self.max_memory
        if estimate.total > limit:
            raise MemoryLimitError(estimate, limit)

    def _result(self, image: ImageT, raw: _Raw) -> UpscaleResult[ImageT]:
        def numpy(x: Tensor | None) -> np.ndarray | None:
            return None if x is None else np.ascontiguousarray(x.detach().float().cpu().numpy())

        noise = numpy(raw.noise[0].permute(1, 2, 0)) if raw.noise is not None else None
        return UpscaleResult(image=image, kernel=numpy(raw.kernel), noise=noise, idr=numpy(raw.idr), tile=raw.tile)

    def _as_batch(self, image: Tensor) -> Tensor:
        if not image.is_floating_point():
            raise TypeError(f"image tensors must be floating point in [0, 1], got {image.dtype}")
        batch = image.unsqueeze(0) if image.ndim == 3 else image
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"image tensors must be (3, h, w) or (B, 3, h, w), got shape {tuple(image.shape)}")
        return batch

    def _upscale_tensor(self, image: Tensor) -> Tensor:
        batch = self._as_batch(image)
        self._check_tensor(batch)
        outs: list[Tensor] = []
        for i in range(batch.shape[0]):
            sr = self._run(batch[i : i + 1]).sr
            assert sr is not None
            outs.append(sr)
        out = outs[0] if len(outs) == 1 else torch.cat(outs)  # no HR-sized copy for the usual single image
        out = out.to(device=image.device, dtype=image.dtype)
        return out if image.ndim == 4 else out[0]

    def _upscale_loaded(self, image: LoadedImage) -> tuple[LoadedImage, _Raw]:
        raw = self._run(image.rgb.unsqueeze(0))
        assert raw.sr is not None
        alpha = None
        if image.alpha is not None:
            size = (int(raw.sr.shape[-2]), int(raw.sr.shape[-1]))
            alpha = imresize(image.alpha.unsqueeze(0).float(), size=size)[0].clamp_(0.0, 1.0)
        return replace(image, rgb=raw.sr[0], alpha=alpha), raw

    def _upscale_pixels(self, image: LoadedImage, *, bit_depth: int) -> tuple[np.ndarray, _Raw]:
        """`image` upscaled straight into the pixels ``loaded_to_array`` gives at `bit_depth` (same values, without a
        full-size float canvas unless ``outscale`` resizes; the alpha channel is resized in float, then quantised)."""
        size = self._output_size(image.height, image.width)
        pixels = _Pixels(size[0], size[1], image.mode, bit_depth)
        raw = self._run(image.rgb.unsqueeze(0), pixels=pixels)
        if pixels.has_alpha:
            if image.alpha is None:
                pixels.fill_alpha()
            else:
                pixels.paste_alpha(imresize(image.alpha.unsqueeze(0).float(), size=size)[0].clamp_(0.0, 1.0))
        return pixels.result(), raw

    def _output_size(self, h: int, w: int) -> tuple[int, int]:
        if self._outscale is None:
            return h * self.scale, w * self.scale
        return max(1, _round_half_up(h * self._outscale)), max(1, _round_half_up(w * self._outscale))

    def _run(self, lr: Tensor, *, pixels: _Pixels | None = None) -> _Raw:
        """One (1, 3, h, w) image → its output at the final size on the CPU, with the degradation estimate; with
        `pixels`, the output goes there (tile by tile when no resize is needed) and ``sr`` is None."""
        h, w = int(lr.shape[-2]), int(lr.shape[-1])
        if min(h, w) < self.min_side:
            raise ValueError(f"image is {w}x{h} px; the upscaler needs at least {self.min_side} px per side")
        if not bool(torch.isfinite(lr).all()):
            raise ValueError("image contains NaN or infinite values")
        size = self._output_size(h, w)
        direct = pixels if pixels is not None and size == (h * self.scale, w * self.scale) else None
        while True:
            tile = self._tile_for_image(h, w)
            try:
                if direct is not None:
                    direct.reset()
                raw = self._run_tiles(lr, tile, pixels=direct)
                break
            except torch.OutOfMemoryError:
                if not self._auto:
                    raise
                current = tile if tile is not None else max(h, w)
                if current <= _MIN_TILE:
                    raise
                smaller = max(_MIN_TILE, current // 2)
                self._auto_override = smaller  # from now on, for every image
                warnings.warn(f"out of memory with tile {current}; retrying with tile {smaller}", stacklevel=2)
                if self._device.type == "cuda":
                    torch.cuda.empty_cache()
        sr, kernel, noise, idr = raw
        if sr is not None:
            if tuple(sr.shape[-2:]) != size:
                sr = imresize(sr, size=size)
            sr = sr.clamp_(0.0, 1.0)
            if pixels is not None:  # resized: quantised piece by piece, then the float image is dropped
                for top in range(0, size[0], _STRIP_ROWS):
                    pixels.paste(sr[0, :, top : top + _STRIP_ROWS], top, 0)
                sr = None
        return _Raw(sr=sr, kernel=kernel, noise=noise, idr=idr, tile=tile)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = _PRECISIONS[self._precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self._device.type, dtype=dtype)

    def _run_tiles(
        self, lr: Tensor, tile: int | None, *, pixels: _Pixels | None = None
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
        """Estimate once, restore tile by tile into CPU canvases: (sr, kernel, noise, idr) at the native scale; with
        `pixels`, each core is clamped and quantised into it instead (sr is None)."""
        h, w = int(lr.shape[-2]), int(lr.shape[-1])
        s = self.scale
        image = TiledImage(image=lr.float(), tiles=plan_tiles(h, w, tile=tile, pad=self._tile_pad), device=self._device)
        sr = torch.empty(1, 3, h * s, w * s, dtype=torch.float32) if pixels is None else None
        noise: Tensor | None = None
        with torch.no_grad(), self._autocast():
            _raise_if_cancelled()
            state = self._adapter.estimate(image)
            total = len(image.tiles)
            _report_progress(0, total)
            for done, (t, window) in enumerate(image.windows(), start=1):
                _raise_if_cancelled()
                out = self._adapter.restore_tile(window, t, state)
                if sr is not None:
                    paste_core(sr, out.sr, t, scale=s)
                else:
                    assert pixels is not None
                    core = crop_core(out.sr, t, scale=s)[0].to("cpu", torch.float32).clamp(0.0, 1.0)
                    pixels.paste(core, t.top * s, t.left * s)
                if out.noise is not None:
                    if noise is None:
                        noise = torch.zeros(1, 3, h, w, dtype=torch.float32)
                    paste_core(noise, out.noise, t)
                _report_progress(done, total)
            degradation = self._adapter.degradation(state)
        return sr, degradation.kernel, noise, degradation.idr

    # ---------------------------------------------------------------------------------------------- tile size

    def _tile_for_image(self, h: int, w: int) -> int | None:
        if not self._auto:
            return self._tile if self._tile is not None and max(h, w) > self._tile else None
        if self._auto_override is not None:  # after an out-of-memory retry
            largest = self._auto_override
            if max(h, w) <= largest:
                return None
        else:
            budget = self._auto_budget_pixels()
            if h * w <= budget:
                return None
            largest = self._tile_for_pixels(budget)
        # as many tiles as the largest tile needs, spread evenly: smaller windows, less context computed twice
        return balanced_tile(h, w, max_tile=largest, multiple=_TILE_MULTIPLE)

    def _tile_for_pixels(self, budget: int) -> int:
        side = int(math.isqrt(max(budget, 1))) - 2 * self._tile_pad
        return max(_MIN_TILE, side // _TILE_MULTIPLE * _TILE_MULTIPLE)

    def _auto_budget_pixels(self) -> int:
        """Window area (LR pixels) that fits the memory budget: ``available_memory / bytes per pixel``; on the CPU
        also within :data:`_CPU_TILE_SHARE` of ``max_memory`` when one was given."""
        if self._auto_pixels is None:
            budget = available_memory(self._device)
            if self._device.type == "cpu" and self._max_memory is not None:
                budget = min(budget, int(self._max_memory * _CPU_TILE_SHARE))
            self._auto_pixels = max(1, int(budget / self._bytes_per_pixel()))
        return self._auto_pixels

    def _bytes_per_pixel(self) -> float:
        """Rough activation memory per LR pixel of a window: the largest activation of any module on a probe input,
        times a factor for what is alive next to it (input, skips), divided by the probe's pixels (measured once)."""
        if self._bytes_per_pixel_cache is None:
            self._bytes_per_pixel_cache = self._measure_bytes_per_pixel()
        return self._bytes_per_pixel_cache

    def _measure_bytes_per_pixel(self) -> float:
        largest = 0
        thread = threading.get_ident()

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            nonlocal largest
            if threading.get_ident() != thread:  # another thread using a shared network
                return
            for t in _tensors(output):
                largest = max(largest, t.numel() * t.element_size())

        model = self._model.model
        handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
        try:
            probe = torch.rand(1, 3, _PROBE_SIDE, _PROBE_SIDE, generator=torch.Generator().manual_seed(0))
            with _progress_scope(None):  # the probe is not one of the caller's tiles
                self._run_tiles(probe, None)
        finally:
            for handle in handles:
                handle.remove()
        return max(largest, 1) * _ACTIVATION_FACTOR / (_PROBE_SIDE * _PROBE_SIDE)


def _tensors(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)


# ---------------------------------------------------------------------------------------------------------- pixels

_LUMA = LUMA_WEIGHTS  # as blindsr.data.user_images computes gray


def _pil_bit_depth(mode: ImageMode, bit_depth: int) -> int:
    """The bit depth of a Pillow output (``loaded_to_pil``): float ``F`` and 16-bit ``I;16`` for gray, else 8."""
    if mode == "gray" and bit_depth > 8:
        return 32 if bit_depth == 32 else 16
    return 8


def _pixels_to_pil(pixels: np.ndarray, like: LoadedImage) -> Any:
    """Pixels of :class:`_Pixels` as the Pillow image ``loaded_to_pil`` makes, with `like`'s EXIF and ICC profile."""
    from blindsr.data.user_images import pixels_to_pil

    return pixels_to_pil(pixels, like)


class _Pixels:
    """An output assembled piece by piece into the numpy pixels :func:`~blindsr.data.user_images.loaded_to_array`
    gives for a mode and bit depth (uint8 / uint16 / float32, (H, W) or (H, W, C)).

    Each piece (a tile's core, or a strip of a resized image) is quantised by ``loaded_to_array`` itself, so the
    result is bit for bit what quantising the whole float image gives, without a full-size float buffer. Gray: the
    io module writes the one channel when the *whole* image has R = G = B, else the BT.601 luma; both candidates
    are kept while every piece so far has R = G = B, and the second is dropped at the first piece that has not.
    """

    def __init__(self, height: int, width: int, mode: ImageMode, bit_depth: int) -> None:
        self.bit_depth = bit_depth
        self.gray = mode in ("gray", "gray_alpha")
        self.has_alpha = mode in ("gray_alpha", "rgba")
        alpha = torch.zeros(1, 1, 1) if self.has_alpha else None
        probe = loaded_to_array(LoadedImage(rgb=torch.zeros(3, 1, 1), alpha=alpha, mode=mode, bit_depth=bit_depth))
        channels = 1 if probe.ndim == 2 else int(probe.shape[2])
        self.array = np.empty((height, width, channels), dtype=probe.dtype)
        self._first: np.ndarray | None = None  # gray: the one-channel candidate, while every piece has R = G = B
        self.reset()

    def reset(self) -> None:
        """Start again (a retry with other tiles pastes every piece again)."""
        self._first = np.empty(self.array.shape[:2], dtype=self.array.dtype) if self.gray else None

    def _quantised(self, rgb: Tensor) -> np.ndarray:
        """(3, h, w) float → (h, w, 3): each channel quantised as the io module quantises any channel."""
        return loaded_to_array(LoadedImage(rgb=rgb, alpha=None, mode="rgb", bit_depth=self.bit_depth))

    def _gray(self, rgb: Tensor) -> np.ndarray:
        """(3, h, w) float → (h, w): the io module's gray of the piece."""
        return loaded_to_array(LoadedImage(rgb=rgb, alpha=None, mode="gray", bit_depth=self.bit_depth))

    def paste(self, rgb: Tensor, top: int, left: int) -> None:
        """Quantise (3, h, w) float RGB in [0, 1], the output at rows ``top:top+h``, columns ``left:left+w``."""
        h, w = int(rgb.shape[-2]), int(rgb.shape[-1])
        target = self.array[top : top + h, left : left + w]
        if not self.gray:
            target[:, :, :3] = self._quantised(rgb)
        elif torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[1], rgb[2]):
            luma = _LUMA[0] * rgb[0] + _LUMA[1] * rgb[1] + _LUMA[2] * rgb[2]  # if another piece is not gray
            target[:, :, 0] = self._quantised(luma.expand(3, -1, -1))[:, :, 0]
            if self._first is not None:
                self._first[top : top + h, left : left + w] = self._gray(rgb)
        else:
            target[:, :, 0] = self._gray(rgb)
            self._first = None

    def paste_alpha(self, alpha: Tensor) -> None:
        """Quantise the (1, H, W) float alpha in [0, 1] into the last channel, a strip at a time."""
        for top in range(0, int(alpha.shape[-2]), _STRIP_ROWS):
            strip = alpha[0, top : top + _STRIP_ROWS]
            self.array[top : top + int(strip.shape[0]), :, -1] = self._quantised(strip.expand(3, -1, -1))[:, :, 0]

    def fill_alpha(self) -> None:
        """An opaque alpha channel (an alpha mode without alpha data)."""
        self.array[:, :, -1] = self._quantised(torch.ones(3, 1, 1))[0, 0, 0]

    def result(self) -> np.ndarray:
        """The pixels: (H, W) for one channel, else (H, W, C)."""
        if self._first is not None:
            self.array[:, :, 0] = self._first
            self._first = None
        return self.array[:, :, 0] if self.array.shape[2] == 1 else self.array


# ---------------------------------------------------------------------------------------------------------- cancel

CancelCheck = threading.Event | Callable[[], bool]
"""What ``upscale_with_degradation(cancel=...)`` takes: an event, or a callable that returns True to stop."""


class UpscaleCancelledError(Exception):
    """The `cancel` check of :meth:`Upscaler.upscale_with_degradation` fired: the image was not finished."""


_cancel_state = threading.local()  # .check: the innermost active cancel check of this thread, or absent


@contextlib.contextmanager
def _cancel_scope(cancel: CancelCheck) -> Iterator[None]:
    check = cancel.is_set if isinstance(cancel, threading.Event) else cancel
    if not callable(check):
        raise TypeError(f"cancel must be a threading.Event or a callable returning bool, got {type(cancel).__name__}")
    previous = getattr(_cancel_state, "check", None)
    _cancel_state.check = check
    try:
        yield
    finally:
        _cancel_state.check = previous


def _raise_if_cancelled() -> None:
    check = getattr(_cancel_state, "check", None)
    if check is not None and check():
        raise UpscaleCancelledError("upscaling cancelled")


# -------------------------------------------------------------------------------------------------------- progress

ProgressCallback = Callable[[int, int], object]
"""What ``upscale_with_degradation(progress=...)`` takes: called with (tiles done, tiles in the image)."""

_progress_state = threading.local()  # .callback: the innermost active progress callback of this thread, or absent


@contextlib.contextmanager
def _progress_scope(callback: ProgressCallback | None) -> Iterator[None]:
    previous = getattr(_progress_state, "callback", None)
    _progress_state.callback = callback
    try:
        yield
    finally:
        _progress_state.callback = previous


def _report_progress(done: int, total: int) -> None:
    callback = getattr(_progress_state, "callback", None)
    if callback is not None:
        callback(done, total)
