"""The web demo's work, without any HTTP: models on offer, one upscaling job, and the folder its files live in.

A job takes the uploaded bytes, checks them (decodable image, pixel limit), upscales them with an
:class:`UpscalerLike` (by default :class:`blindsr.inference.Upscaler`), and writes four PNGs into its own folder:

``result``   the super-resolved image, at ``outscale`` x the input size;
``bicubic``  the input enlarged to the same size with MATLAB bicubic (:func:`blindsr.ops.resize.imresize`);
``kernel``   the estimated blur kernel, enlarged (models that estimate one, e.g. DMSR);
``noise``    the estimated noise map (same).

Both images keep the input's kind as ``blindsr upscale`` does, at 8 bits: gray stays gray, and an input with
transparency (RGBA, gray+alpha, a palette's transparent colour) gives an RGBA (or gray+alpha) PNG whose alpha is
the input's alpha enlarged separately with MATLAB bicubic, the colour under it upscaled by the model as it is.

Every folder is inside one :class:`tempfile.TemporaryDirectory` per server (:class:`ResultStore`), created on the
first job, which keeps the last ``max_results`` jobs and deletes older ones; :meth:`ResultStore.close` removes the
lot. Nothing is written anywhere else.

Limits: a job is refused (413) beyond ``max_pixels`` input pixels, a decompression bomb (a small file declaring more
pixels than Pillow's limit) included, and beyond ``max_macs`` of estimated work (:func:`estimate_job_macs`: input
pixels x the model's multiply-accumulates per pixel, plus a charge per output pixel). A job can be cancelled (its
``cancel`` event, set by the HTTP layer when the client goes away): it then stops at the next tile, and with a
:class:`blindsr.inference.Upscaler` at the next layer of the network.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import torch

from blindsr.data.image_errors import ImageReadError
from blindsr.data.images import IMAGE_EXTENSIONS, image_size, write_image
from blindsr.data.user_images import LUMA_WEIGHTS, ImageMode, LoadedImage, read_image_any, write_pixels_like
from blindsr.ops.resize import imresize

if TYPE_CHECKING:  # pragma: no cover
    from blindsr.zoo import LoadedModel

__all__ = [
    "IMAGE_NAMES",
    "OUTPUT_PIXEL_MACS",
    "JobCancelledError",
    "JobError",
    "JobResult",
    "ModelEntry",
    "ResultStore",
    "UpscaleResultLike",
    "UpscalerFactory",
    "UpscalerLike",
    "default_upscaler_factory",
    "estimate_job_macs",
    "find_model",
    "macs_per_pixel",
    "resolve_models",
    "run_job",
    "summarize_degradation",
]

IMAGE_NAMES = ("result", "bicubic", "kernel", "noise")
"""The PNGs a job can produce, in display order; ``kernel`` and ``noise`` only for models that estimate them."""

KERNEL_DISPLAY_SIZE = 256
"""Side in pixels of the enlarged kernel image."""

OUTPUT_PIXEL_MACS = 3_000
"""Work charged per output pixel, in multiply-accumulate equivalents: the bicubic preview, the ``outscale`` resize
and the PNG encoding (measured at about 0.75 µs per output pixel on a CPU that runs DMSR at about 4 GMAC/s)."""


class JobError(Exception):
    """A request the server refuses, with the HTTP status to answer and a one-line message for the page.

    >>> str(JobError(400, "the uploaded file is empty"))
    'the uploaded file is empty'
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())  # one line, whatever the cause said


class JobCancelledError(JobError):
    """The job was cancelled (its client went away) before it finished; nothing is kept. Status 499."""

    def __init__(self, message: str = "cancelled: the client went away before the result was ready") -> None:
        super().__init__(499, message)


# ----------------------------------------------------------------------------------------------------------------
# models on offer


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model the page offers.

    Attributes:
        name: what the page shows and the form sends (a card name, or a release file's stem).
        source: what :func:`blindsr.zoo.load_model` takes: the card name or the file path.
        scale: the model's native upscaling factor.
        description: one line for the page.
    """

    name: str
    source: str
    scale: int
    description: str


def _looks_like_path(source: str | os.PathLike[str]) -> bool:
    if not isinstance(source, str):
        return True
    return source.endswith(".safetensors") or "/" in source or os.sep in source or Path(source).is_file()


def _entry(source: str | os.PathLike[str], name: str | None) -> ModelEntry:
    from blindsr.zoo import get_card, read_release_metadata, resolve_weights

    if _looks_like_path(source):
        path = Path(source)
        metadata = read_release_metadata(path)  # FileNotFoundError / WeightsError with a clear message
        card = metadata.get("card") or ""
        description = f"weights file {path.name}" + (f" (exported for {card})" if card else "")
        return ModelEntry(name or path.stem, str(path), int(metadata["scale"]), description)
    card_ = get_card(str(source))  # KeyError that suggests close names
    resolve_weights(card_)  # FileNotFoundError now rather than on the first upload
    return ModelEntry(name or card_.name, card_.name, card_.scale, card_.description)


def resolve_models(
    models: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]] | None = None,
) -> list[ModelEntry]:
    """The models to offer, checked now so that a typo fails at start-up rather than on the first upload.

    Args:
        models: None for every zoo card whose weights file is present (:func:`blindsr.zoo.list_models`); a list of
            card names and release-file paths (a file is shown by its stem); or a mapping of display name -> card
            name or path.

    Returns:
        One entry per model, names made unique (``name-2``, ...) in the order given.

    Raises:
        KeyError: an unknown card name (the message suggests close names).
        FileNotFoundError: a missing release file, or a card whose weights file is not installed.
        blindsr.zoo.WeightsError: a file that is not a blindsr release.
    """
    if models is None:
        from blindsr.zoo import list_models

        pairs: list[tuple[str | None, str | os.PathLike[str]]] = [
            (None, card["name"]) for card in list_models() if card["available"]
        ]
    elif isinstance(models, Mapping):
        pairs = [(str(name), source) for name, source in models.items()]
    else:
        pairs = [(None, source) for source in models]
    entries: list[ModelEntry] = []
    taken: set[str] = set()
    for name, source in pairs:
        entry = _entry(source, name)
        unique, n = entry.name, 1
        while unique in taken:
            n += 1
            unique = f"{entry.name}-{n}"
        taken.add(unique)
        entries.append(ModelEntry(unique, entry.source, entry.scale, entry.description))
    return entries


def find_model(entries: Sequence[ModelEntry], name: str) -> ModelEntry | None:
    """The offered entry a request's model name means: an entry's name, or any name the CLI accepts for a card.

    ``blindsr upscale -m`` accepts a card's full name (``dmsr-x4.lite``), its name without the tag (``dmsr-x4``)
    and the extra aliases of :data:`blindsr.zoo.cards.MODEL_ALIASES`; all of them select the entry serving that
    card. File paths are never looked up: a client can only pick among the offered models.

    Args:
        entries: the models on offer.
        name: what the request sent.

    Returns:
        The entry, or None when `name` means none of the offered models.

    >>> entries = [ModelEntry("dmsr-x4.lite", "dmsr-x4.lite", 4, "")]
    >>> find_model(entries, "dmsr-x4").name, find_model(entries, "dmsr-x3") is None
    ('dmsr-x4.lite', True)
    """
    for entry in entries:
        if entry.name == name:
            return entry
    if not name or len(name) > 200:
        return None
    from blindsr.zoo import get_card

    try:
        card = get_card(name)
    except KeyError:
        return None
    return next((entry for entry in entries if entry.source == card.name), None)


# ----------------------------------------------------------------------------------------------------------------
# upscalers


class UpscaleResultLike(Protocol):
    """What the server reads from :class:`blindsr.inference.UpscaleResult`."""

    @property
    def image(self) -> Any:
        """The result, the same kind as the input: here an (H, W, 3) uint8 array."""

    @property
    def kernel(self) -> np.ndarray | None:
        """The estimated (k, k) blur kernel, or None."""

    @property
    def noise(self) -> np.ndarray | None:
        """The estimated (h, w, 3) signed noise map in [0, 1] image units, or None."""

    @property
    def tile(self) -> Any:
        """The tile size used (None: the whole image at once)."""


class UpscalerLike(Protocol):
    """What the server needs of :class:`blindsr.inference.Upscaler`.

    Optional, and used when present: a keyword argument ``cancel`` of :meth:`upscale_with_degradation` (a
    :class:`threading.Event`; raise :class:`blindsr.inference.UpscaleCancelledError` soon after it is set), and a
    ``macs_per_pixel`` attribute (the work per input pixel, for the work cap; :func:`macs_per_pixel` measures
    :class:`~blindsr.inference.Upscaler` instances and counts 0 for other upscalers without it).
    """

    @property
    def scale(self) -> int:
        """The model's native factor."""

    def upscale_with_degradation(self, image: np.ndarray) -> UpscaleResultLike:
        """Upscale an (H, W, 3) uint8 image; also return the degradation the model estimated."""


UpscalerFactory = Callable[[str, float | None], UpscalerLike]
"""``factory(source, outscale)``: an upscaler for a :attr:`ModelEntry.source`; ``outscale`` None means native."""


def default_upscaler_factory(
    *,
    device: str = "auto",
    tile: int | Literal["auto"] | None = "auto",
    precision: Literal["fp32", "bf16", "fp16"] = "fp32",
) -> UpscalerFactory:
    """The real thing: :class:`blindsr.inference.Upscaler` over models loaded once and kept.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        tile: tile size, ``"auto"`` or None (whole image); passed to the Upscaler.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Returns:
        ``factory(source, outscale)``; the first call for a source loads its model (later calls reuse it).
    """
    loaded: dict[str, LoadedModel] = {}
    upscalers: dict[tuple[str, float | None], UpscalerLike] = {}
    lock = threading.Lock()

    def factory(source: str, outscale: float | None) -> UpscalerLike:
        from blindsr.inference import Upscaler
        from blindsr.zoo import load_model

        with lock:
            key = (source, outscale)
            if key not in upscalers:
                if source not in loaded:
                    loaded[source] = load_model(source)
                # one Upscaler per (model, outscale), sharing the network: its automatic tile size is measured once
                upscalers[key] = Upscaler(
                    loaded[source], tile=tile, device=device, precision=precision, outscale=outscale
                )
            return upscalers[key]

    return factory


# ----------------------------------------------------------------------------------------------------------------
# the work a job costs, and cancelling it

_COST_PROBE_SIDE = 16  # the probe image the work per pixel is counted on (DMSR's count is the same at 16 and 64)
_measured: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def macs_per_pixel(upscaler: UpscalerLike) -> float:
    """The multiply-accumulates an upscaler spends per input pixel (the shipped ``dmsr-x4`` about 1.15 million).

    A ``macs_per_pixel`` attribute is taken as it is. A :class:`blindsr.inference.Upscaler` is measured once (then
    remembered): a small probe image goes through it while forward hooks count the MACs of every convolution and
    linear layer of its network (functional convolutions, a few percent of MRDA's work, are not seen). Anything else
    counts 0.

    Args:
        upscaler: what the factory returned.

    Returns:
        MACs per input pixel (at the model's native scale; tiles' padding is not counted).
    """
    declared = getattr(upscaler, "macs_per_pixel", None)
    if declared is not None:
        return float(declared)
    from blindsr.inference import Upscaler

    if not isinstance(upscaler, Upscaler):
        return 0.0
    if upscaler in _measured:
        return _measured[upscaler]
    side = max(_COST_PROBE_SIDE, upscaler.min_side)
    probe = np.zeros((side, side, 3), np.uint8)
    # a first run, not counted: the Upscaler measures its network's memory on its own probe the first time it runs
    upscaler.upscale_with_degradation(probe)
    total = 0
    thread = threading.get_ident()

    def count(module: torch.nn.Module, args: Any, output: Any) -> None:
        nonlocal total
        if threading.get_ident() != thread or not isinstance(output, torch.Tensor):
            return
        if isinstance(module, torch.nn.modules.conv._ConvTransposeNd) and args:
            total += args[0].numel() * module.out_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            total += output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in upscaler.model.model.modules()]
    try:
        upscaler.upscale_with_degradation(probe)
    finally:
        for handle in handles:
            handle.remove()
    _measured[upscaler] = value = total / (side * side)
    return value


def estimate_job_macs(per_pixel: float, height: int, width: int, outscale: float) -> float:
    """A job's work in MACs: ``height x width x per_pixel`` + the output pixels x :data:`OUTPUT_PIXEL_MACS`.

    >>> estimate_job_macs(1e6, 100, 200, 4.0) / 1e9
    20.96
    """
    return height * width * (per_pixel + outscale * outscale * OUTPUT_PIXEL_MACS)


def _giga(value: float) -> str:
    value /= 1e9
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _pixels(value: float) -> str:
    if value < 10_000:
        return f"{value:,.0f} pixels"
    return f"{value / 1e6:,.0f} MP" if value >= 10e6 else f"{value / 1e6:.2f} MP"


@contextlib.contextmanager
def _stop_between_layers(upscaler: UpscalerLike, cancel: threading.Event) -> Iterator[None]:
    """While inside, a set `cancel` stops the upscaler's network at its next layer (in this thread only).

    The Upscaler checks `cancel` before each tile; an image that fits in one tile would otherwise run to its end.
    """
    network = getattr(getattr(upscaler, "model", None), "model", None)
    if not isinstance(network, torch.nn.Module):
        yield
        return
    from blindsr.inference import UpscaleCancelledError

    thread = threading.get_ident()

    def check(module: torch.nn.Module, args: Any) -> None:
        if cancel.is_set() and threading.get_ident() == thread:
            raise UpscaleCancelledError("upscaling cancelled")

    handles = [m.register_forward_pre_hook(check) for m in network.modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _takes_cancel(method: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "cancel" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _upscale(upscaler: UpscalerLike, image: np.ndarray, cancel: threading.Event | None) -> UpscaleResultLike:
    from blindsr.inference import MemoryLimitError

    try:
        return _upscale_cancellable(upscaler, image, cancel)
    except MemoryLimitError as e:  # the Upscaler's own estimate: more memory than this machine has
        raise JobError(413, str(e)) from None


def _upscale_cancellable(
    upscaler: UpscalerLike, image: np.ndarray, cancel: threading.Event | None
) -> UpscaleResultLike:
    if cancel is None:
        return upscaler.upscale_with_degradation(image)
    from blindsr.inference import UpscaleCancelledError

    method: Callable[..., UpscaleResultLike] = upscaler.upscale_with_degradation
    try:
        if not _takes_cancel(method):  # an upscaler without the hook runs to its end; the job stops after it
            return method(image)
        with _stop_between_layers(upscaler, cancel):
            return method(image, cancel=cancel)
    except UpscaleCancelledError:
        raise JobCancelledError() from None


# ----------------------------------------------------------------------------------------------------------------
# results and their folder


@dataclass(frozen=True, slots=True)
class JobResult:
    """A finished job: its id, its folder, its PNGs and what the page shows about it.

    Attributes:
        id: random hex id, the key in :class:`ResultStore` and in the result URLs.
        directory: the job's folder (inside the server's temporary directory).
        files: image name (one of :data:`IMAGE_NAMES`) -> PNG file, for the images this job has.
        download_name: file name offered for the result download (``<stem>_x<outscale>.png``).
        summary: JSON-ready facts: model, scales, sizes, seconds, tile, degradation estimate.
    """

    id: str
    directory: Path
    files: Mapping[str, Path]
    download_name: str
    summary: Mapping[str, Any]


class ResultStore:
    """The server's temporary directory and the last `max_results` finished jobs in it (thread-safe).

    The directory (``blindsr-serve-*`` in :func:`tempfile.gettempdir`) is created by the first
    :meth:`new_job_dir`, so an idle server writes nothing. Adding a result beyond `max_results` deletes the oldest
    job's folder; :meth:`close` deletes the whole directory (and the object can be used again afterwards).

    Args:
        max_results: finished jobs to keep (at least 1).
    """

    def __init__(self, max_results: int = 8) -> None:
        if max_results < 1:
            raise ValueError(f"max_results must be >= 1, got {max_results}")
        self.max_results = max_results
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._results: OrderedDict[str, JobResult] = OrderedDict()

    @property
    def root(self) -> Path | None:
        """The temporary directory, or None before the first job (and after :meth:`close`)."""
        return Path(self._tmp.name) if self._tmp is not None else None

    def new_job_dir(self) -> tuple[str, Path]:
        """A fresh job id and its (empty, new) folder."""
        with self._lock:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="blindsr-serve-")
            job_id = secrets.token_hex(8)
            directory = Path(self._tmp.name) / job_id
            directory.mkdir()
            return job_id, directory

    def add(self, result: JobResult) -> None:
        """Keep `result`; delete the oldest results beyond :attr:`max_results`."""
        with self._lock:
            self._results[result.id] = result
            while len(self._results) > self.max_results:
                _, old = self._results.popitem(last=False)
                shutil.rmtree(old.directory, ignore_errors=True)

    def get(self, job_id: str) -> JobResult | None:
        """The result with this id, or None (unknown, or already deleted)."""
        with self._lock:
            return self._results.get(job_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)

    def close(self) -> None:
        """Forget every result and delete the temporary directory."""
        with self._lock:
            self._results.clear()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None


# ----------------------------------------------------------------------------------------------------------------
# one job


def summarize_degradation(kernel: np.ndarray | None, noise: np.ndarray | None) -> dict[str, Any] | None:
    """The estimate in numbers: the kernel's size and width (σ, in LR pixels) and the noise level (σ, on 0-255).

    The width is the kernel's standard deviation about its centre of mass, per axis and on average
    (``sqrt((var_x + var_y) / 2)``), which equals σ for a Gaussian; the noise level is the standard deviation of
    the noise map times 255.

    Args:
        kernel: (k, k) non-negative kernel (normalised here), or None.
        noise: (h, w, C) signed noise in [0, 1] image units, or None.

    Returns:
        ``{"kernel_size", "kernel_sigma", "kernel_sigma_xy", "noise_sigma"}`` (absent parts are None), or None
        when there is neither.

    >>> y, x = np.mgrid[-7:8, -7:8]
    >>> k = np.exp(-(x**2 + y**2) / (2 * 1.5**2))
    >>> summarize_degradation(k, None)["kernel_sigma"]
    1.5
    """
    if kernel is None and noise is None:
        return None
    out: dict[str, Any] = {"kernel_size": None, "kernel_sigma": None, "kernel_sigma_xy": None, "noise_sigma": None}
    if kernel is not None:
        k = np.clip(np.asarray(kernel, dtype=np.float64), 0.0, None)
        total = k.sum()
        if k.ndim == 2 and total > 0:
            k = k / total
            ys, xs = np.mgrid[0 : k.shape[0], 0 : k.shape[1]]
            my, mx = (k * ys).sum(), (k * xs).sum()
            var_y, var_x = (k * (ys - my) ** 2).sum(), (k * (xs - mx) ** 2).sum()
            out["kernel_size"] = int(k.shape[0])
            out["kernel_sigma"] = round(math.sqrt((var_x + var_y) / 2), 2)
            out["kernel_sigma_xy"] = [round(math.sqrt(var_x), 2), round(math.sqrt(var_y), 2)]
    if noise is not None:
        out["noise_sigma"] = round(float(np.asarray(noise, dtype=np.float64).std()) * 255.0, 2)
    return out


_SAFE_STEM = re.compile(r"[^A-Za-z0-9._-]+")


def _download_name(filename: str, outscale: float) -> str:
    stem = _SAFE_STEM.sub("_", Path(filename).stem).strip("._")[:64] or "image"
    return f"{stem}_x{outscale:g}.png"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return str(value)


def _bicubic(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, *size) float in [0, 1], MATLAB bicubic."""
    lr = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    return imresize(lr, size=size).clamp_(0.0, 1.0)[0]


def _is_gray(image: np.ndarray) -> bool:
    """Whether an (H, W, 3) image has R = G = B everywhere (how a gray file reads as RGB)."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def _luma(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 BT.601 luma (Pillow's weights), rounded half up."""
    y = image.astype(np.float32) @ np.array(LUMA_WEIGHTS, dtype=np.float32)
    return np.floor(np.clip(y, 0.0, 255.0) + np.float32(0.5)).astype(np.uint8)


def _read_upload(path: Path, max_pixels: int) -> tuple[np.ndarray, torch.Tensor | None]:
    """The upload as (H, W, 3) uint8 RGB (gray replicated), and its (1, H, W) float32 alpha in [0, 1] or None.

    Read by :func:`blindsr.data.user_images.read_image_any`, as ``blindsr upscale`` reads its inputs: the EXIF
    orientation applied, the colour under transparent pixels kept as stored, the alpha channel (or a palette's
    transparent colour) alongside; deeper images are rounded to 8 bits (8-bit files give their stored values).
    """
    loaded = read_image_any(path, max_pixels=max_pixels)
    return _quantise(loaded.rgb), loaded.alpha


def _quantise(chw: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint8, ``floor(255 x + 0.5)`` (MATLAB rounding, as the writers do)."""
    pixels = chw.detach().to("cpu", torch.float32).permute(1, 2, 0).numpy()
    return np.floor(np.clip(pixels, 0.0, 1.0) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


def _upscale_alpha(alpha: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(1, h, w) float alpha -> (H, W, 1) uint8 at `size`: MATLAB bicubic, clamped, quantised, as
    :class:`blindsr.inference.Upscaler` upscales an image's alpha."""
    return _quantise(imresize(alpha.unsqueeze(0).float(), size=size)[0].clamp_(0.0, 1.0))


def _write_with_alpha(path: Path, colour: np.ndarray, alpha: np.ndarray) -> None:
    """(H, W) gray or (H, W, 3) RGB uint8 colour and (H, W, 1) uint8 alpha -> a gray+alpha or RGBA PNG."""
    colour = colour[:, :, None] if colour.ndim == 2 else colour
    mode: ImageMode = "gray_alpha" if colour.shape[2] == 1 else "rgba"
    like = LoadedImage(rgb=torch.zeros(3, 1, 1), alpha=None, mode=mode, bit_depth=8)
    write_pixels_like(path, np.concatenate([colour, alpha], axis=2), like=like)


def _stop_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise JobCancelledError()


def _unreadable(display: str, error: ImageReadError, max_pixels: int) -> JobError:
    """400 for a file Pillow cannot read; 413 for a decompression bomb (more pixels, or more decompressed metadata,
    than Pillow's limits)."""
    from blindsr.data.image_errors import is_decompression_bomb

    cause = error.__cause__
    if isinstance(cause, ValueError) and re.search(r"decompressed data too large|too much memory", str(cause), re.I):
        return JobError(
            413,
            f"{display} holds metadata that decompresses to more than this server reads (a possible decompression "
            "bomb)",
        )
    if not is_decompression_bomb(error):
        return JobError(400, f"cannot read {display}: {error.reason}")
    declared = re.search(r"\((\d+) pixels\)", str(cause))
    pillow = re.search(r"limit of (\d+) pixels", str(cause))
    limit = min(max_pixels, int(pillow.group(1))) if pillow else max_pixels  # Pillow's, if the server's is larger
    size = f"{int(declared.group(1)) / 1e6:,.0f} MP" if declared else "more pixels than Pillow's bomb limit"
    return JobError(
        413,
        f"{display} declares {size} (a possible decompression bomb); this server accepts at most "
        f"{limit / 1e6:g} MP ({limit:,} pixels)",
    )


def _check_work(
    display: str, entry: ModelEntry, outscale: float, height: int, width: int, per_pixel: float, max_macs: float
) -> None:
    """413 when the job's estimated work is over `max_macs`, saying how large an image would fit."""
    cost = estimate_job_macs(per_pixel, height, width, outscale)
    if cost <= max_macs:
        return
    fits = max_macs / max(estimate_job_macs(per_pixel, 1, 1, outscale), 1e-9)
    raise JobError(
        413,
        f"{display} is {width}x{height} = {height * width / 1e6:.2f} MP: about {_giga(cost)} GMAC of work with "
        f"{entry.name} at x{outscale:g}, over this server's cap of {_giga(max_macs)} GMAC per job (about "
        f"{_pixels(fits)} with this model); use a smaller image, or raise the cap with "
        "`blindsr serve --max-job-gmac N`",
    )


def run_job(
    *,
    upload: IO[bytes],
    filename: str,
    entry: ModelEntry,
    outscale: float | None,
    factory: UpscalerFactory,
    store: ResultStore,
    max_pixels: int,
    max_macs: float | None = None,
    cancel: threading.Event | None = None,
) -> JobResult:
    """Check, decode and upscale one uploaded image; write its PNGs into a new job folder and keep the result.

    Args:
        upload: the uploaded bytes (read from the current position).
        filename: the client's file name (for messages and the download name only; never a path here).
        entry: the model to use.
        outscale: the output scale, or None for the model's own.
        factory: makes the upscaler (see :data:`UpscalerFactory`).
        store: where the job folder goes and the result is kept.
        max_pixels: the largest input accepted, in pixels (H x W).
        max_macs: the most work accepted for one job, in MACs (:func:`estimate_job_macs`); None for no cap.
        cancel: set it (from another thread) to stop the job: it stops at the upscaler's next tile, or layer.

    Returns:
        The finished job, already in `store`.

    Raises:
        JobError: 400 (empty file, not a decodable image, too small), 413 (more pixels than `max_pixels`, a
            decompression bomb, more work than `max_macs`).
        JobCancelledError: `cancel` was set; the job's folder is gone.
    """
    display = Path(filename).name or "upload"
    suffix = Path(display).suffix.lower()
    job_id, directory = store.new_job_dir()
    try:
        # the suffix only helps Pillow guess; a foreign suffix (or .npy, which io.py would read as an array) is
        # replaced, and Pillow recognises the format from the data
        source = directory / ("input" + (suffix if suffix in IMAGE_EXTENSIONS else ".img"))
        with source.open("wb") as fh:
            shutil.copyfileobj(upload, fh)
        if source.stat().st_size == 0:
            raise JobError(400, f"{display} is empty")
        effective = float(outscale) if outscale is not None else float(entry.scale)
        try:
            height, width = image_size(source)
            if height * width > max_pixels:
                raise JobError(
                    413,
                    f"{display} is {width}x{height} = {height * width / 1e6:.2f} MP; this server accepts at most "
                    f"{max_pixels / 1e6:g} MP ({max_pixels:,} pixels)",
                )
            _stop_if_cancelled(cancel)
            start = time.perf_counter()
            upscaler = factory(entry.source, None if outscale is None or outscale == entry.scale else outscale)
            min_side = int(getattr(upscaler, "min_side", 1))
            if min(height, width) < min_side:
                raise JobError(
                    400, f"{display} is {width}x{height}; this model needs at least {min_side} pixels a side"
                )
            if max_macs is not None:
                _check_work(display, entry, effective, height, width, macs_per_pixel(upscaler), max_macs)
            image, alpha = _read_upload(source, max_pixels)
        except ImageReadError as error:
            raise _unreadable(display, error, max_pixels) from error
        finally:
            source.unlink(missing_ok=True)

        _stop_if_cancelled(cancel)
        result = _upscale(upscaler, image, cancel)
        seconds = time.perf_counter() - start
        _stop_if_cancelled(cancel)
        sr = np.asarray(result.image)
        if sr.dtype != np.uint8 or sr.ndim != 3 or sr.shape[2] != 3:
            raise TypeError(f"the upscaler returned {sr.dtype} {sr.shape}, expected (H, W, 3) uint8")
        files = {"result": directory / "result.png", "bicubic": directory / "bicubic.png"}
        bicubic = _bicubic(image, (sr.shape[0], sr.shape[1]))
        if _is_gray(image):  # gray in, gray out: the result as BT.601 luma, as `blindsr upscale` writes it
            sr, bicubic = _luma(sr), bicubic[:1]
        if alpha is None:
            write_image(files["result"], sr)
            write_image(files["bicubic"], bicubic)
        else:  # alpha kept, enlarged on its own (the same for both images, so the slider compares colour only)
            alpha_up = _upscale_alpha(alpha, (sr.shape[0], sr.shape[1]))
            _write_with_alpha(files["result"], sr, alpha_up)
            _write_with_alpha(files["bicubic"], _quantise(bicubic), alpha_up)
        if result.kernel is not None or result.noise is not None:
            from blindsr.inference import kernel_image, noise_image

            if result.kernel is not None:
                files["kernel"] = directory / "kernel.png"
                write_image(files["kernel"], kernel_image(result.kernel, size=KERNEL_DISPLAY_SIZE))
            if result.noise is not None:
                files["noise"] = directory / "noise.png"
                write_image(files["noise"], noise_image(result.noise))
        summary = {
            "model": entry.name,
            "scale": entry.scale,
            "outscale": effective,
            "input": {"width": width, "height": height},
            "output": {"width": int(sr.shape[1]), "height": int(sr.shape[0])},
            "seconds": round(seconds, 3),
            "tile": _jsonable(result.tile),
            "estimate": summarize_degradation(result.kernel, result.noise),
        }
        job = JobResult(job_id, directory, files, _download_name(display, effective), summary)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    store.add(job)
    return job
