"""``Upscaler``: super-resolve images as users have them, tiled, with one degradation estimate per image.

Pipeline per image: decode to (1, 3, h, w) float on the CPU → plan tiles (:mod:`blindsr.ops.tiling`) → the
adapter estimates the degradation of the whole image (:mod:`blindsr.inference.adapters`) → each tile's window is
moved to the device, restored with that estimate, and its core pasted into a CPU canvas → optional resize to
``outscale`` (MATLAB bicubic) → clamp to [0, 1] → back to the input's kind (gray stays gray, alpha is upscaled with
bicubic, 16-bit stays 16-bit).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn

from blindsr.data.io import (
    LoadedImage,
    is_pil_image,
    loaded_from_array,
    loaded_from_pil,
    loaded_to_array,
    loaded_to_pil,
)
from blindsr.inference.adapters import InferenceAdapter, TiledImage, adapter_for
from blindsr.ops.resize import imresize
from blindsr.ops.tiling import paste_core, plan_tiles
from blindsr.zoo.weights import LoadedModel, load_model

__all__ = ["Precision", "UpscaleResult", "Upscaler", "available_memory", "resolve_device"]

Precision = Literal["fp32", "bf16", "fp16"]
_PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

ImageT = TypeVar("ImageT")

_MIN_TILE = 16  # smallest tile the automatic size or an out-of-memory retry goes down to
_TILE_MULTIPLE = 8  # automatic tile sizes are multiples of this
_PROBE_SIDE = 32  # side of the probe input the per-pixel memory model is measured on
_ACTIVATION_FACTOR = 3.0  # peak memory ≈ this × the largest single activation (input, output, skip connections)
_CUDA_FRACTION = 0.6  # of the free GPU memory, for activations (the rest: allocator fragmentation, workspaces)
_CPU_FRACTION = 0.5  # of the available RAM
_CPU_CAP = 8 << 30  # bytes: larger CPU tiles are no faster, and other programs need the memory too


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
    sr: Tensor  # (1, 3, H, W) float32 on the CPU, at the final size, clamped to [0, 1]
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
    ``os.sysconf``), capped at 8 GiB.
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


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


class Upscaler:
    """Super-resolve images with a blindsr model: tiled, with the degradation estimated once per image.

    Tiling: the image is cut into ``tile × tile`` cores, each run inside a window with `tile_pad` pixels of context,
    and only the core of each output is kept (no blending: see :mod:`blindsr.ops.tiling`). Blind-SR models
    estimate the degradation **once for the whole image**, and every tile is restored with that estimate (DMSR:
    the blur kernel and the RCAN body's channel statistics are pooled over all tiles, the noise map is local; see
    :class:`~blindsr.inference.adapters.DMSRAdapter`). The whole-image output is assembled on the CPU: only one
    window and its output are on the device at a time.

    Precision: the weights stay float32; ``bf16``/``fp16`` run the network under ``torch.autocast``. fp16 on the
    CPU falls back to fp32 with a warning.

    Args:
        model: a :class:`~blindsr.zoo.LoadedModel` (its network is moved to `device`, in float32), or a model name
            (``"dmsr-x4"``, see ``blindsr models``) or release file path for :func:`~blindsr.zoo.load_model`.
        tile: core side in LR pixels; None or 0 = the whole image in one piece; ``"auto"`` = the largest tile the
            device's free memory allows (a rough per-pixel memory model of the network measured on a small probe;
            images that fit run whole), halved and retried when the device still runs out of memory.
        tile_pad: context pixels around each core. The default 16 makes DMSR's blur estimate (receptive radius 7)
            and noise map (radius 6) equal their whole-image values; with the body's channel attention pooled over
            the whole image, tiled outputs of the shipped ``dmsr-x4`` stay within 1/255 of whole-image ones.
        device: ``"auto"`` (cuda, else mps, else cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        outscale: final scale (Real-ESRGAN's ``-s``): the network runs at its native scale, then its output is
            resized with MATLAB-exact bicubic to ``round(h·outscale) × round(w·outscale)``; None = native.

    Raises:
        ValueError: a bad device, precision, tile, tile_pad or outscale (one-line messages).
        KeyError, FileNotFoundError, WeightsError: from :func:`~blindsr.zoo.load_model`.

    >>> import blindsr, torch                                       # doctest: +SKIP
    >>> up = blindsr.Upscaler("dmsr-x4", tile="auto")               # doctest: +SKIP
    >>> up.upscale(torch.rand(3, 32, 32)).shape                     # doctest: +SKIP
    torch.Size([3, 128, 128])
    """

    min_side: ClassVar[int] = 8
    """Smallest input side accepted: below it an image carries too little context for a degradation estimate."""

    def __init__(
        self,
        model: LoadedModel | str | os.PathLike[str],
        *,
        tile: int | Literal["auto"] | None = None,
        tile_pad: int = 16,
        device: str = "auto",
        precision: Precision = "fp32",
        outscale: float | None = None,
    ) -> None:
        self._device = resolve_device(device)
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
    def tile(self) -> int | None:
        """The tile size in use: None = whole images; with ``"auto"``, the size chosen from the free memory (used
        for images larger than the memory allows in one piece; computed on first access)."""
        if self._auto:
            return self._auto_override or self._tile_for_pixels(self._auto_budget_pixels())
        return self._tile

    # ---------------------------------------------------------------------------------------------- public API

    def upscale(self, image: ImageT) -> ImageT:
        """Super-resolve one image (or a batch of tensors), returning the same kind.

        Args:
            image: a PIL image (L, LA, RGB, RGBA, P, I;16, ...: the mode is kept, palettes become RGB(A)); a numpy
                array (H, W) / (H, W, C) with C = 1..4, uint8, uint16 or float in [0, 1]; a float tensor (3, h, w)
                or (B, 3, h, w) in [0, 1] (any device; the output comes back there, in the same dtype); or a
                :class:`~blindsr.data.io.LoadedImage`. Alpha is upscaled separately with bicubic; gray runs as
                R = G = B and comes back as the BT.601 luma.

        Returns:
            The upscaled image, clamped to [0, 1] (or the integer range), ``outscale`` times larger.

        Raises:
            TypeError: an unsupported input type.
            ValueError: a wrong shape, a side below :attr:`min_side`, or NaN/infinite values.
            torch.OutOfMemoryError: the device ran out of memory with a fixed tile (``"auto"`` halves and retries).
        """
        if isinstance(image, Tensor):
            return cast(ImageT, self._upscale_tensor(image))
        return self.upscale_with_degradation(image).image

    def upscale_with_degradation(self, image: ImageT) -> UpscaleResult[ImageT]:
        """Like :meth:`upscale`, also returning the estimated degradation and the tile size used.

        Args:
            image: as for :meth:`upscale`; a tensor batch must hold one image.

        Returns:
            ``UpscaleResult(image, kernel, noise, idr, tile)``.
        """
        if isinstance(image, Tensor):
            batch = self._as_batch(image)
            if batch.shape[0] != 1:
                raise ValueError(f"upscale_with_degradation takes one image, got a batch of {batch.shape[0]}")
            raw = self._run(batch)
            out = raw.sr.to(device=image.device, dtype=image.dtype)
            return self._result(cast(ImageT, out if image.ndim == 4 else out[0]), raw)
        loaded: LoadedImage
        if isinstance(image, LoadedImage):
            loaded, restore = image, cast(Callable[[LoadedImage], ImageT], lambda x: x)
        elif is_pil_image(image):
            loaded, restore = loaded_from_pil(cast(Any, image)), cast(Callable[[LoadedImage], ImageT], loaded_to_pil)
        elif isinstance(image, np.ndarray):
            loaded = loaded_from_array(image)
            keep_axis = image.ndim == 3 and image.shape[2] == 1

            def restore(x: LoadedImage) -> ImageT:
                array = loaded_to_array(x)
                return cast(ImageT, array[:, :, None] if keep_axis else array)

        else:
            raise TypeError(
                f"cannot upscale a {type(image).__name__}: pass a PIL image, a numpy array, a (3, h, w) or "
                "(1, 3, h, w) float tensor, or a LoadedImage"
            )
        upscaled, raw = self._upscale_loaded(loaded)
        return self._result(restore(upscaled), raw)

    # ---------------------------------------------------------------------------------------------- internals

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
        outs = [self._run(batch[i : i + 1]).sr for i in range(batch.shape[0])]
        out = outs[0] if len(outs) == 1 else torch.cat(outs)  # no HR-sized copy for the usual single image
        out = out.to(device=image.device, dtype=image.dtype)
        return out if image.ndim == 4 else out[0]

    def _upscale_loaded(self, image: LoadedImage) -> tuple[LoadedImage, _Raw]:
        raw = self._run(image.rgb.unsqueeze(0))
        alpha = None
        if image.alpha is not None:
            size = (int(raw.sr.shape[-2]), int(raw.sr.shape[-1]))
            alpha = imresize(image.alpha.unsqueeze(0).float(), size=size)[0].clamp_(0.0, 1.0)
        return replace(image, rgb=raw.sr[0], alpha=alpha), raw

    def _output_size(self, h: int, w: int) -> tuple[int, int]:
        if self._outscale is None:
            return h * self.scale, w * self.scale
        return max(1, _round_half_up(h * self._outscale)), max(1, _round_half_up(w * self._outscale))

    def _run(self, lr: Tensor) -> _Raw:
        """One (1, 3, h, w) image → its output at the final size on the CPU, with the degradation estimate."""
        h, w = int(lr.shape[-2]), int(lr.shape[-1])
        if min(h, w) < self.min_side:
            raise ValueError(f"image is {w}x{h} px; the upscaler needs at least {self.min_side} px per side")
        if not bool(torch.isfinite(lr).all()):
            raise ValueError("image contains NaN or infinite values")
        while True:
            tile = self._tile_for_image(h, w)
            try:
                raw = self._run_tiles(lr, tile)
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
        size = self._output_size(h, w)
        if tuple(sr.shape[-2:]) != size:
            sr = imresize(sr, size=size)
        return _Raw(sr=sr.clamp_(0.0, 1.0), kernel=kernel, noise=noise, idr=idr, tile=tile)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = _PRECISIONS[self._precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self._device.type, dtype=dtype)

    def _run_tiles(self, lr: Tensor, tile: int | None) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """Estimate once, restore tile by tile into CPU canvases: (sr, kernel, noise, idr) at the native scale."""
        h, w = int(lr.shape[-2]), int(lr.shape[-1])
        s = self.scale
        image = TiledImage(image=lr.float(), tiles=plan_tiles(h, w, tile=tile, pad=self._tile_pad), device=self._device)
        sr = torch.empty(1, 3, h * s, w * s, dtype=torch.float32)
        noise: Tensor | None = None
        with torch.no_grad(), self._autocast():
            state = self._adapter.estimate(image)
            for t, window in image.windows():
                out = self._adapter.restore_tile(window, t, state)
                paste_core(sr, out.sr, t, scale=s)
                if out.noise is not None:
                    if noise is None:
                        noise = torch.zeros(1, 3, h, w, dtype=torch.float32)
                    paste_core(noise, out.noise, t)
            degradation = self._adapter.degradation(state)
        return sr, degradation.kernel, noise, degradation.idr

    # ---------------------------------------------------------------------------------------------- tile size

    def _tile_for_image(self, h: int, w: int) -> int | None:
        fixed = self._auto_override if self._auto else self._tile
        if not self._auto or fixed is not None:
            return fixed if fixed is not None and max(h, w) > fixed else None
        budget = self._auto_budget_pixels()
        return None if h * w <= budget else self._tile_for_pixels(budget)

    def _tile_for_pixels(self, budget: int) -> int:
        side = int(math.isqrt(max(budget, 1))) - 2 * self._tile_pad
        return max(_MIN_TILE, side // _TILE_MULTIPLE * _TILE_MULTIPLE)

    def _auto_budget_pixels(self) -> int:
        """Window area (LR pixels) that fits the memory budget: ``available_memory / bytes per pixel``."""
        if self._auto_pixels is None:
            self._auto_pixels = max(1, int(available_memory(self._device) / self._bytes_per_pixel()))
        return self._auto_pixels

    def _bytes_per_pixel(self) -> float:
        """Rough activation memory per LR pixel of a window: the largest activation of any module on a probe input,
        times a factor for what is alive next to it (input, skips), divided by the probe's pixels."""
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
