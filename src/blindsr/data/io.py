"""Image files ↔ tensors: the only module of the package that touches PIL, uint8 pixels or HWC arrays.

Everywhere else, an image is a ``(3, H, W)`` (or batched ``(B, 3, H, W)``) float32 RGB tensor in ``[0, 1]``.
This module converts at the file boundary:

- :func:`read_image` decodes any common image file (and ``.npy`` float arrays) to ``(3, H, W)`` float32 RGB;
  :func:`read_image_uint8` gives the same pixels as uint8, for compact caches.
- :func:`write_image` writes a float tensor atomically, quantising 8-bit formats with MATLAB rounding.
- :func:`float_to_uint8` / :func:`to_uint8` are that rounding, for metrics and caches.
- :func:`list_images` / :func:`image_size` find images and read their sizes without decoding them.
- :func:`read_image_any` / :func:`write_image_like` keep what users expect back from a tool that upscales their
  images: the mode (gray, alpha), 16 bits (including 16-bit colour PNGs, which Pillow cannot hold), the EXIF and ICC
  profile, with an explicit pixel limit (:data:`DEFAULT_MAX_PIXELS`). :class:`LoadedImage` carries them;
  :func:`loaded_from_pil` / :func:`loaded_to_pil` and :func:`loaded_from_array` / :func:`loaded_to_array` convert
  in-memory images the same way.

PIL is imported inside the functions that use it, so ``import blindsr.data.io`` pulls in torch and numpy only.

>>> import tempfile, torch
>>> with tempfile.TemporaryDirectory() as tmp:
...     write_image(f"{tmp}/out/a.png", torch.full((3, 4, 5), 0.5))
...     read_image(f"{tmp}/out/a.png").shape
torch.Size([3, 4, 5])
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageMode",
    "ImageReadError",
    "ImageWriteError",
    "LUMA_WEIGHTS",
    "LoadedImage",
    "float_to_uint8",
    "format_can_hold",
    "image_size",
    "is_decompression_bomb",
    "is_pil_image",
    "list_images",
    "loaded_from_array",
    "loaded_from_pil",
    "loaded_to_array",
    "loaded_to_pil",
    "pixels_to_pil",
    "read_image",
    "read_image_any",
    "read_image_uint8",
    "to_uint8",
    "write_image",
    "write_image_like",
    "write_pixels_like",
]

PathLike = str | os.PathLike[str]

IMAGE_EXTENSIONS: Final[tuple[str, ...]] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Suffixes (lower case) recognised as image files by :func:`list_images`; matching is case-insensitive."""

NPY_EXTENSION: Final = ".npy"

# suffix -> PIL format name for writing; ".npy" is handled separately
_WRITE_FORMATS: Final[dict[str, str]] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}

_UINT16_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ORIENTATION_TAG: Final = 0x0112  # EXIF Orientation; values 5-8 swap width and height

# What decoders (Pillow's plugins, numpy, zlib, struct, the 16-bit PNG decoder below) raise for bad data; each
# reader turns these into one-line ImageReadErrors, so a bad file never stops a batch
_DECODE_ERRORS: Final[tuple[type[Exception], ...]] = (
    OSError,
    SyntaxError,
    EOFError,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    struct.error,
    zlib.error,
)


class _ReasonError(ValueError):
    """Bad data found by this module's own checks; its message is the whole one-line reason of the ImageReadError."""


class ImageReadError(Exception):
    """An image file exists but cannot be decoded (not an image, truncated, empty, too large, ...).

    The message is one line, ``cannot read image <path>: <reason>``; ``path`` and ``reason`` are attributes.

    >>> str(ImageReadError("a.png", "empty file"))
    'cannot read image a.png: empty file'
    """

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(os.fspath(path), reason)  # both in args, so the exception pickles (DataLoader workers)
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot read image {self.path}: {self.reason}"


class ImageWriteError(Exception):
    """An image cannot be written (unknown extension, unsupported data for the format, I/O failure).

    The message is one line, ``cannot write image <path>: <reason>``; ``path`` and ``reason`` are attributes.

    >>> str(ImageWriteError("a.gif", "unknown extension '.gif'"))
    "cannot write image a.gif: unknown extension '.gif'"
    """

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(os.fspath(path), reason)
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot write image {self.path}: {self.reason}"


# ----------------------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------------------


def read_image(path: PathLike) -> Tensor:
    """Read an image file as a ``(3, H, W)`` float32 RGB tensor in ``[0, 1]``.

    This reader serves benchmarks, metrics and training, so it always returns three colour channels:

    - gray (``L``, ``1``, 16-bit ``I;16``/``I;16B``, 32-bit ``I`` and ``F``) is replicated to R = G = B;
    - alpha (``LA``, ``PA``, ``RGBA``, palette transparency) is **dropped**, not composited: the colour values under
      transparent pixels are kept as stored;
    - palette (``P``), ``CMYK`` and other modes are converted to RGB by Pillow;
    - 8-bit data is divided by 255, 16-bit gray by 65535. Pillow itself opens 16-bit *colour* PNGs as 8-bit, so
      those lose their low byte;
    - 32-bit integer gray (``I``, e.g. a 32-bit integer TIFF) is divided by 65535 when all its values lie in
      [0, 65535] (16-bit data in a 32-bit container, also how Pillow opens 16-bit PGM); any other range has no
      known scale and is refused;
    - 32-bit **float** gray (``F``, a one-channel float TIFF) is taken as values in [0, 1]: values outside are
      clipped to [0, 1], NaN is refused. Float TIFFs with more than one channel, or 16/64-bit floats, cannot be
      opened by Pillow and are refused with a reason naming the TIFF's sample format;
    - the EXIF orientation tag is applied (``PIL.ImageOps.exif_transpose``), so H and W are as displayed;
    - multi-frame files (GIF, APNG, TIFF) give their first frame.

    ``.npy`` files hold float arrays of shape (H, W, 3), (H, W, 1) or (H, W); they are returned as float32
    ``(3, H, W)`` exactly as stored, without clipping (the lossless counterpart of :func:`write_image`).

    The file is fully decoded here, so truncated or corrupt files fail in this call rather than later. Pillow's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) stays in force.

    Args:
        path: image file (any format Pillow reads) or ``.npy`` file.

    Returns:
        ``(3, H, W)`` float32 contiguous tensor on the CPU.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageReadError: the file is empty, not an image, truncated/corrupt, too large, or of an unsupported kind.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_image(f"{tmp}/gray.png", torch.linspace(0, 1, 6).reshape(2, 3))
    ...     x = read_image(f"{tmp}/gray.png")
    >>> x.shape, x.dtype, bool((x[0] == x[2]).all())
    (torch.Size([3, 2, 3]), torch.float32, True)
    """
    return _pixels_to_float(_read_pixels(path))


def read_image_uint8(path: PathLike) -> Tensor:
    """Read an image file as a ``(3, H, W)`` uint8 RGB tensor: the compact form for in-memory caches.

    Same decoding rules as :func:`read_image` (gray → RGB, alpha dropped, EXIF orientation applied). 8-bit files
    give their stored pixels without any float round trip; 16-bit and float files and ``.npy`` arrays are quantised
    with :func:`float_to_uint8` (MATLAB rounding, ``.npy`` values clipped to [0, 1]). For 8-bit files,
    ``read_image_uint8(p).float() / 255`` equals ``read_image(p)`` exactly.

    Args:
        path: image file or ``.npy`` file.

    Returns:
        ``(3, H, W)`` uint8 contiguous tensor on the CPU.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageReadError: as for :func:`read_image`.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_image(f"{tmp}/a.png", torch.full((3, 2, 2), 0.5))
    ...     read_image_uint8(f"{tmp}/a.png")[:, 0, 0]
    tensor([128, 128, 128], dtype=torch.uint8)
    """
    pixels = _read_pixels(path)
    if pixels.dtype == np.uint8:
        return torch.from_numpy(_chw3(pixels))
    return float_to_uint8(_pixels_to_float(pixels))


def _read_pixels(path: PathLike) -> np.ndarray:
    """Decode to uint8 or float32 pixels, (H, W) gray or (H, W, 3) RGB."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file")
    if path.suffix.lower() == NPY_EXTENSION:
        return _read_npy(path)
    return _read_pil(path)


def _chw3(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) → contiguous (3, H, W), gray replicated."""
    if pixels.ndim == 2:
        return np.ascontiguousarray(np.broadcast_to(pixels, (3, *pixels.shape)))
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _pixels_to_float(pixels: np.ndarray) -> Tensor:
    chw = _chw3(pixels)
    if chw.dtype == np.uint8:
        # numpy, not torch: same IEEE result, and no intra-op thread wake-ups for this tiny amount of work
        chw = chw.astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(chw)


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ImageReadError(path, f"not a valid .npy array file ({_first_line(error)})") from error
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
        raise ImageReadError(path, f"expected a float array in the .npy file, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ImageReadError(path, f"expected an (H, W, 3), (H, W, 1) or (H, W) array, got shape {array.shape}")
    return array.astype(np.float32, copy=False)


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()  # full decode: truncated data fails here, not later
            ImageOps.exif_transpose(img, in_place=True)
            return _pil_to_pixels(img)
    except UnidentifiedImageError as error:
        raise ImageReadError(path, _unidentified_reason(path)) from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, _too_large_reason(error)) from error
    except _ReasonError as error:
        raise ImageReadError(path, str(error)) from error
    except _DECODE_ERRORS as error:
        raise ImageReadError(path, _decode_reason(error)) from error


def _decode_reason(error: Exception) -> str:
    # Pillow reports bad data with any of _DECODE_ERRORS, depending on the plugin
    message = _first_line(error)
    reason = "truncated" if "truncated" in message.lower() else "corrupt or unsupported image data"
    return f"{reason} ({message})"


_TIFF_SAMPLE_FORMATS: Final = {1: "unsigned integer", 2: "signed integer", 3: "float"}


def _unidentified_reason(path: Path) -> str:
    """Why Pillow recognised no format: for a TIFF it names the sample format Pillow has no mode for."""
    generic = "not an image (format not recognised)"
    from PIL import TiffImagePlugin

    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            if head[:4] not in (b"II*\0", b"MM\0*"):
                return generic
            ifd = TiffImagePlugin.ImageFileDirectory_v2(head)
            fh.seek(ifd.next)
            ifd.load(fh)
        samples = int(_first_value(ifd.get(277, 1)))
        bits = sorted({int(b) for b in np.atleast_1d(ifd.get(258, 1))})
        sample_format = int(_first_value(ifd.get(339, 1)))
    except _DECODE_ERRORS:
        return "corrupt or unsupported TIFF (Pillow cannot open it)"
    kind = _TIFF_SAMPLE_FORMATS.get(sample_format, f"sample format {sample_format}")
    depth = "/".join(str(b) for b in bits)
    reason = f"unsupported TIFF pixel format: {samples} channel(s) of {depth}-bit {kind} (Pillow cannot open it)"
    if sample_format == 3:
        reason += "; float TIFFs are read with one 32-bit channel only: save it as such, as a 16-bit PNG, or as .npy"
    return reason


def _first_value(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def _deep_gray(img: PILImage.Image) -> tuple[np.ndarray, int] | None:
    """(H, W) float32 in [0, 1] and its bit depth for the gray modes deeper than 8 bits; None for other modes.

    ``I;16*`` → /65535 (16); ``I`` → /65535 if all values are in [0, 65535], else refused (16); ``F`` → clipped
    to [0, 1], NaN refused (32).
    """
    mode = img.mode
    if mode in _UINT16_MODES:
        return np.array(img, dtype=np.float32) / np.float32(65535.0), 16
    if mode == "I":
        values = np.array(img, dtype=np.int64)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > 65535:
            raise _ReasonError(
                f"32-bit integer pixels range over {low}..{high}, outside 0..65535, so their scale is unknown; "
                "convert the image to 16 bits, or to 32-bit float in [0, 1]"
            )
        return values.astype(np.float32) / np.float32(65535.0), 16
    if mode == "F":
        values = np.array(img, dtype=np.float32)
        if np.isnan(values).any():
            raise _ReasonError("float pixels contain NaN values")
        return np.clip(values, np.float32(0.0), np.float32(1.0)), 32
    return None


def _pil_to_pixels(img: PILImage.Image) -> np.ndarray:
    """uint8 (H, W) / (H, W, 3), or float32 (H, W) in [0, 1] for 16-bit, 32-bit integer and float gray."""
    mode = img.mode
    deep = _deep_gray(img)
    if deep is not None:
        return deep[0]
    if mode == "1":
        return np.array(img, dtype=np.uint8) * np.uint8(255)
    if mode in ("L", "LA", "La"):
        return np.array(img.getchannel(0), dtype=np.uint8)
    if mode != "RGB":
        # RGBA/PA/P/CMYK/YCbCr/...: Pillow's conversion; alpha is discarded (see read_image)
        img = img.convert("RGBA" if mode == "PA" else "RGB")
    return np.array(img, dtype=np.uint8)[:, :, :3]


def _too_large_reason(error: Exception) -> str:
    numbers = re.findall(r"\((\d+) pixels\).*?limit of (\d+) pixels", str(error))
    if numbers:
        pixels, limit = numbers[0]
        detail = f"{int(pixels):,} pixels > limit of {int(limit):,}"
    else:
        detail = _first_line(error)
    return f"too large ({detail}; raise PIL.Image.MAX_IMAGE_PIXELS if the file is trusted)"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def image_size(path: PathLike) -> tuple[int, int]:
    """Return ``(H, W)`` of an image as :func:`read_image` would return it, reading only the header.

    The EXIF orientation is taken into account (orientations 5-8 swap H and W). For ``.npy`` files the array header
    is read (memory-mapped), not the data.

    Args:
        path: image or ``.npy`` file.

    Returns:
        ``(height, width)``.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageReadError: the header cannot be parsed.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_image(f"{tmp}/a.png", torch.zeros(3, 4, 6))
    ...     image_size(f"{tmp}/a.png")
    (4, 6)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file")
    if path.suffix.lower() == NPY_EXTENSION:
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (ValueError, OSError, EOFError) as error:
            raise ImageReadError(path, f"not a valid .npy array file ({_first_line(error)})") from error
        if len(shape) not in (2, 3):
            raise ImageReadError(path, f"expected an (H, W, 3), (H, W, 1) or (H, W) array, got shape {shape}")
        return int(shape[0]), int(shape[1])

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = _header_orientation(img)
    except UnidentifiedImageError as error:
        raise ImageReadError(path, _unidentified_reason(path)) from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, _too_large_reason(error)) from error
    except _DECODE_ERRORS as error:
        raise ImageReadError(path, f"corrupt image header ({_first_line(error)})") from error
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def _header_orientation(img: PILImage.Image) -> int:
    """EXIF orientation (1-8) without decoding pixels; Pillow's PNG ``getexif`` would decode the whole image."""
    from PIL import Image

    if img.format == "PNG":
        raw = img.info.get("exif")  # an eXIf chunk before the image data; later ones are not seen here
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
    else:
        exif = img.getexif()
    orientation = exif.get(_ORIENTATION_TAG, 1)
    return orientation if isinstance(orientation, int) else 1


def list_images(folder: PathLike, *, recursive: bool = False, include_npy: bool = False) -> list[Path]:
    """List the image files in `folder`, sorted by their path relative to `folder`.

    Files are matched by suffix against :data:`IMAGE_EXTENSIONS` (case-insensitive), plus ``.npy`` when
    `include_npy` is set. Hidden entries (a name starting with ``"."``, including the temporary files of
    :func:`write_image` and, when recursive, anything under hidden folders) are skipped.

    Args:
        folder: directory to list.
        recursive: also descend into sub-folders.
        include_npy: also return ``.npy`` files.

    Returns:
        Sorted list of paths (``folder / relative``); empty when nothing matches.

    Raises:
        FileNotFoundError: `folder` does not exist.
        NotADirectoryError: `folder` is not a directory.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("b.PNG", "a.jpg", ".hidden.png", "notes.txt"):
    ...         _ = (Path(tmp) / name).write_bytes(b"")
    ...     [p.name for p in list_images(tmp)]
    ['a.jpg', 'b.PNG']
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"folder not found: {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    suffixes = {*IMAGE_EXTENSIONS, NPY_EXTENSION} if include_npy else set(IMAGE_EXTENSIONS)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found = []
    for path in candidates:
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in suffixes and path.is_file():
            found.append(relative)
    return [folder / relative for relative in sorted(found, key=lambda p: p.as_posix())]


# ----------------------------------------------------------------------------------------------------------------
# quantisation
# ----------------------------------------------------------------------------------------------------------------


def float_to_uint8(image: Tensor) -> Tensor:
    """Quantise a float image in ``[0, 1]`` to uint8 with MATLAB rounding, keeping shape and device.

    Computes ``floor(255 * clamp(x, 0, 1) + 0.5)``, i.e. round half away from zero as MATLAB's ``im2uint8`` does
    (``torch.round`` rounds half to even, which differs on exact ``.5`` values). The arithmetic runs in the input's
    dtype (float32 stays float32; half and bfloat16 are promoted to float32).

    Args:
        image: floating tensor of any shape, nominally in ``[0, 1]``; values outside are clipped.

    Returns:
        uint8 tensor of the same shape, on the same device.

    Raises:
        TypeError: `image` is not a floating-point tensor.
        ValueError: `image` contains NaN.

    >>> float_to_uint8(torch.tensor([-0.5, 0.0, 2.5 / 255, 3.5 / 255, 1.0, 7.0]))
    tensor([  0,   0,   3,   4, 255, 255], dtype=torch.uint8)
    """
    if not isinstance(image, Tensor) or not image.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {_describe(image)}")
    if image.dtype in (torch.float16, torch.bfloat16):
        image = image.float()
    if torch.isnan(image).any():
        raise ValueError("image contains NaN values; cannot quantise to uint8")
    return image.clamp(0.0, 1.0).mul(255.0).add_(0.5).floor_().to(torch.uint8)


def to_uint8(image: Tensor) -> np.ndarray:
    """Convert a ``(C, H, W)`` or ``(H, W)`` float image in ``[0, 1]`` to a uint8 HWC numpy array.

    Uses the MATLAB rounding of :func:`float_to_uint8`. The tensor may live on any device.

    Args:
        image: ``(C, H, W)`` (usually C = 3) or ``(H, W)`` floating tensor.

    Returns:
        ``(H, W, C)`` uint8 array for 3-D input, ``(H, W)`` for 2-D input.

    >>> to_uint8(torch.full((3, 2, 4), 0.5)).shape
    (2, 4, 3)
    >>> int(to_uint8(torch.full((3, 2, 4), 0.5))[0, 0, 0])
    128
    """
    if not isinstance(image, Tensor) or image.ndim not in (2, 3):
        raise ValueError(f"expected a (C, H, W) or (H, W) tensor, got {_describe(image)}")
    quantised = float_to_uint8(image.detach()).cpu()
    if quantised.ndim == 3:
        quantised = quantised.permute(1, 2, 0)
    return np.ascontiguousarray(quantised.numpy())


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__


# ----------------------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------------------


def write_image(path: PathLike, image: Tensor | np.ndarray, *, quality: int = 95) -> None:
    """Write an image atomically; the extension of `path` chooses the format.

    Formats:

    - ``.png .jpg .jpeg .webp .bmp .tif .tiff``: 8 bits per channel, ``floor(255 * clamp(x, 0, 1) + 0.5)``
      (MATLAB rounding). One-channel images are written as gray (mode ``L``).
    - ``.npy``: float32 (H, W, 3) RGB, neither clipped nor quantised (one channel is replicated to three), so
      :func:`read_image` gives back exactly the tensor written.

    A numpy array is taken as already-quantised pixels: uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) is written
    as is; uint16 (H, W) or (H, W, 1) gray is written as 16-bit to ``.png``/``.tif``/``.tiff``. For ``.npy`` such
    arrays are scaled by 1/255 or 1/65535.

    The data goes to a hidden temporary file in the destination folder, which then replaces `path`
    (``os.replace``), so readers never see a half-written file and an existing file survives a failed write. On
    any failure the temporary file is removed. Missing parent folders are created.

    Args:
        path: destination file.
        image: ``(3, H, W)``, ``(1, H, W)`` or ``(H, W)`` floating tensor in ``[0, 1]``, on any device, or a numpy
            uint8/uint16 HWC array (see above).
        quality: JPEG/WebP quality, 1-100; ignored by the other formats.

    Raises:
        ImageWriteError: unknown extension, data the format cannot hold, or an I/O failure.
        TypeError, ValueError: `image` has an unsupported type, dtype or shape, or contains NaN.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     x = torch.rand(3, 5, 7) * 2 - 0.5
    ...     write_image(f"{tmp}/x.npy", x)
    ...     bool(torch.equal(read_image(f"{tmp}/x.npy"), x))
    True
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != NPY_EXTENSION and suffix not in _WRITE_FORMATS:
        known = ", ".join([*_WRITE_FORMATS, NPY_EXTENSION])
        raise ImageWriteError(path, f"unknown extension {path.suffix or '(none)'!r}; use one of {known}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")

    if suffix == NPY_EXTENSION:
        array = _as_float_hwc3(image)

        def save(file: BinaryIO) -> None:
            np.save(file, array, allow_pickle=False)

    else:
        pixels = _as_pixels(path, image, suffix)
        pil_format = _WRITE_FORMATS[suffix]

        def save(file: BinaryIO) -> None:
            _save_pil(pixels, file, pil_format=pil_format, quality=quality)

    _atomic_write(path, save)


def _as_float_hwc3(image: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(image, np.ndarray):
        hwc = _check_numpy_pixels(image)
        scale = 255.0 if hwc.dtype == np.uint8 else 65535.0
        array = hwc[:, :, :3].astype(np.float32) / np.float32(scale)
    else:
        chw = _check_float_tensor(image).detach().to("cpu", torch.float32)
        array = chw.permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array, dtype=np.float32)


def _as_pixels(path: Path, image: Tensor | np.ndarray, suffix: str) -> np.ndarray:
    if isinstance(image, np.ndarray):
        hwc = _check_numpy_pixels(image)
        if hwc.dtype == np.uint16 and (hwc.shape[2] != 1 or suffix not in (".png", ".tif", ".tiff")):
            raise ImageWriteError(path, "16-bit data can only be written as one-channel .png, .tif or .tiff")
    else:
        hwc = to_uint8(_check_float_tensor(image))
    return hwc[:, :, 0] if hwc.ndim == 3 and hwc.shape[2] == 1 else hwc


def _check_float_tensor(image: Tensor) -> Tensor:
    if not isinstance(image, Tensor):
        raise TypeError(f"expected a float tensor or a uint8/uint16 numpy array, got {_describe(image)}")
    if not image.is_floating_point():
        raise TypeError(f"expected a floating-point tensor in [0, 1], got {_describe(image)}")
    if image.ndim == 2:
        image = image.unsqueeze(0)
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W), (1, H, W) or (H, W) tensor, got {_describe(image)}")
    if torch.isnan(image).any():
        raise ValueError("image contains NaN values")
    return image


def _check_numpy_pixels(image: np.ndarray) -> np.ndarray:
    if image.dtype not in (np.uint8, np.uint16):
        raise TypeError(
            f"numpy input must be uint8 or uint16 pixels, got {_describe(image)}; pass float data as a (C, H, W) tensor"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, got {_describe(image)}")
    return np.ascontiguousarray(image)


def _save_pil(pixels: np.ndarray, file: BinaryIO, *, pil_format: str, quality: int) -> None:
    from PIL import Image

    # uint16 (H, W) opens as "I;16", uint8 as "L", "RGB" or "RGBA"
    pil_image = Image.fromarray(pixels.astype("<u2") if pixels.dtype == np.uint16 else pixels)
    options: dict[str, Any] = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {}
    pil_image.save(file, format=pil_format, **options)


def _atomic_write(path: Path, save: Callable[[BinaryIO], None]) -> None:
    """Run ``save(file)`` on a temporary sibling of `path`, then rename it onto `path` (:func:`blindsr.files.
    atomic_write`); the folders above `path` are created. Every failure is an :class:`ImageWriteError`."""
    from blindsr.files import OutputError, atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImageWriteError(path, _first_line(error)) from error
    try:
        atomic_write(path, save, create_parent=False)
    except OutputError as error:  # the OS refused (full disk, read-only, ...): its own words
        raise ImageWriteError(path, _first_line(error.__cause__ or error)) from error
    except (ValueError, KeyError) as error:  # what Pillow and numpy raise for data they cannot write
        raise ImageWriteError(path, _first_line(error)) from error


# ----------------------------------------------------------------------------------------------------------------
# images as users have them: mode, bit depth and metadata kept from input to output
# ----------------------------------------------------------------------------------------------------------------

ImageMode = Literal["gray", "gray_alpha", "rgb", "rgba"]

DEFAULT_MAX_PIXELS: Final = 8192 * 8192
"""Largest image :func:`read_image_any` decodes by default (67,108,864 pixels, e.g. 8192×8192). Upscaled ×4 in
float32 such an input needs 12.9 GB for its output alone; larger files are refused before decoding, which also
stops decompression bombs (a few KB of PNG that inflate to gigabytes)."""

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG16_CHANNELS: Final = {2: 3, 4: 2, 6: 4}  # PNG colour type -> channels, for the 16-bit kinds Pillow reads as 8-bit
_CHANNEL_MODES: Final[dict[int, ImageMode]] = {1: "gray", 2: "gray_alpha", 3: "rgb", 4: "rgba"}
LUMA_WEIGHTS: Final = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights (R, G, B), those of Pillow's ``convert("L")``: how colour becomes gray here."""
_LUMA: Final = LUMA_WEIGHTS


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An image with what is needed to give it back in its own kind: mode, bit depth, metadata.

    Attributes:
        rgb: (3, H, W) float32 in [0, 1] (gray images are replicated to R = G = B); what a model consumes.
        alpha: (1, H, W) float32 in [0, 1], or None.
        mode: ``"gray"``, ``"gray_alpha"``, ``"rgb"`` or ``"rgba"``: what an output of this image is written as.
        bit_depth: 8 or 16 for integer pixels; 32 for float pixels (float TIFFs, Pillow ``F`` images, float arrays
            from :func:`loaded_from_array`).
        format: the source file's format as Pillow names it (``"PNG"``, ``"JPEG"``, ...), or None.
        exif: raw EXIF data to write with the output (orientation already applied and removed), or None.
        icc_profile: the ICC colour profile to write with the output, or None.
    """

    rgb: Tensor
    alpha: Tensor | None
    mode: ImageMode
    bit_depth: int
    format: str | None = None
    exif: bytes | None = None
    icc_profile: bytes | None = None

    @property
    def height(self) -> int:
        """H."""
        return int(self.rgb.shape[-2])

    @property
    def width(self) -> int:
        """W."""
        return int(self.rgb.shape[-1])


def read_image_any(path: PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = 1) -> LoadedImage:
    """Read an image file keeping its mode (gray, alpha), bit depth (8/16) and metadata (EXIF, ICC profile).

    The counterpart of :func:`write_image_like`, for tools that give users back the kind of image they gave:

    - ``1``, ``L``, ``I;16*``, ``I``, ``F`` → ``"gray"`` (16-bit for the ``I`` modes, 32 for ``F``); ``LA`` →
      ``"gray_alpha"``; ``RGBA``, ``PA`` and palette or RGB images with a transparent colour → ``"rgba"``;
      everything else (``RGB``, palette, CMYK, YCbCr, ...) → ``"rgb"``.
    - Values as in :func:`read_image`: 32-bit integer gray (``I``) must lie in [0, 65535] and is read as 16-bit;
      32-bit float gray (``F``, one-channel float TIFFs) is read as values in [0, 1], clipped to [0, 1], and gives
      ``bit_depth`` 32, which :func:`write_image_like` writes back as a float TIFF (or 16-bit PNG).
    - 16-bit colour and gray+alpha PNGs (which Pillow opens as 8-bit) are decoded here with numpy, keeping all 16
      bits (non-interlaced files; Adam7-interlaced ones fall back to Pillow's 8-bit decoding). This decoder is
      plain Python for PNG's Average and Paeth row filters: about 1 s per megapixel. It checks every chunk's CRC,
      inflates no more image data than the header implies, refuses an ICC profile (``iCCP``) that is corrupt or
      inflates beyond Pillow's limit for such chunks (``PIL.PngImagePlugin.MAX_TEXT_CHUNK``, 1 MiB), and reports
      any malformed data as an :class:`ImageReadError`.
    - The EXIF orientation is applied to the pixels and removed from the kept EXIF.

    Args:
        path: an image file (PNG, JPEG, WebP, BMP, TIFF, or anything else Pillow reads; first frame only).
        max_pixels: larger images are refused from their header, before decoding (default
            :data:`DEFAULT_MAX_PIXELS`; Pillow's own decompression-bomb limit also applies).
        min_side: smaller images (either side) are refused, e.g. below what a model needs.

    Returns:
        The image, on the CPU.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageReadError: empty, not an image, truncated or corrupt, too large or too small.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_image(f"{tmp}/g.png", torch.full((1, 4, 6), 0.5))
    ...     img = read_image_any(f"{tmp}/g.png")
    >>> img.mode, img.bit_depth, tuple(img.rgb.shape), img.alpha
    ('gray', 8, (3, 4, 6), None)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            _check_pixel_count(path, img.size, max_pixels)
            png16 = _png16_header(path) if img.format == "PNG" else None
            if png16 is not None:
                loaded = _read_png16(path)
            else:
                img.load()
                loaded = _loaded_from_pil(img, transpose=True)
    except UnidentifiedImageError as error:
        raise ImageReadError(path, _unidentified_reason(path)) from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, _too_large_reason(error)) from error
    except _ReasonError as error:
        raise ImageReadError(path, str(error)) from error
    except _DECODE_ERRORS as error:
        raise ImageReadError(path, _decode_reason(error)) from error
    if min(loaded.height, loaded.width) < min_side:
        raise ImageReadError(
            path, f"too small ({loaded.width}x{loaded.height} px; at least {min_side} px per side are needed)"
        )
    return loaded


def _check_pixel_count(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageReadError(
            path, f"too large ({width}x{height} = {width * height:,} pixels > limit of {max_pixels:,})"
        )


def _loaded_from_pil(img: PILImage.Image, *, transpose: bool) -> LoadedImage:
    """Pixels and metadata of a decoded Pillow image; `transpose` applies (and drops) the EXIF orientation."""
    from PIL import ImageOps

    fmt = img.format
    if transpose:
        transposed = ImageOps.exif_transpose(img)
        img = transposed if transposed is not None else img
    exif = _exif_bytes(img)
    icc = img.info.get("icc_profile") or None
    mode = img.mode
    has_transparency = "transparency" in img.info
    deep = _deep_gray(img)
    if deep is not None:
        return _loaded(deep[0][:, :, None], "gray", deep[1], fmt, exif, icc)
    if mode == "1":
        img = img.convert("L")
    elif mode in ("P", "PA"):
        img = img.convert("RGBA" if mode == "PA" or has_transparency else "RGB")
    elif mode == "La":
        img = img.convert("LA")
    elif mode == "RGBa":
        img = img.convert("RGBA")
    elif mode in ("L", "RGB") and has_transparency:
        img = img.convert("LA" if mode == "L" else "RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGB")
    array = np.array(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    pixels = array.astype(np.float32) / np.float32(255.0)
    return _loaded(pixels, _CHANNEL_MODES[pixels.shape[2]], 8, fmt, exif, icc)


def _loaded(
    pixels: np.ndarray, mode: ImageMode, bit_depth: int, fmt: str | None, exif: bytes | None, icc: bytes | None
) -> LoadedImage:
    """(H, W, C) float32 in [0, 1] with C = 1..4 → LoadedImage."""
    chw = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32))
    colour = chw[:1].expand(3, -1, -1) if mode in ("gray", "gray_alpha") else chw[:3]
    alpha = chw[-1:].clone() if mode in ("gray_alpha", "rgba") else None
    return LoadedImage(
        rgb=colour.contiguous(), alpha=alpha, mode=mode, bit_depth=bit_depth, format=fmt, exif=exif, icc_profile=icc
    )


def _exif_bytes(img: PILImage.Image) -> bytes | None:
    exif = img.getexif()
    if _ORIENTATION_TAG in exif:
        del exif[_ORIENTATION_TAG]
    if not len(exif):
        return None
    data = exif.tobytes()
    return data or None


# ---- 16-bit PNG (colour and gray+alpha), which Pillow can only open as 8-bit


def _png16_header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, colour type) of a non-interlaced 16-bit colour or gray+alpha PNG; None for other PNGs."""
    with path.open("rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    bit_depth, colour_type, interlace = head[24], head[25], head[28]
    if bit_depth != 16 or colour_type not in _PNG16_CHANNELS or interlace != 0:
        return None
    return width, height, colour_type


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, body) chunks of a PNG up to IEND, every CRC checked; _ReasonError for anything malformed."""
    if data[:8] != _PNG_SIGNATURE:
        raise _ReasonError("not a PNG file")
    chunks, pos = [], 8
    while pos < len(data):
        if pos + 12 > len(data):
            raise _ReasonError("truncated (incomplete PNG chunk)")
        length = int.from_bytes(data[pos : pos + 4], "big")
        if length > 0x7FFFFFFF:
            raise _ReasonError(f"corrupt PNG chunk length {length:,} (more than 2^31 - 1)")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise _ReasonError("truncated (incomplete PNG chunk)")
        if zlib.crc32(kind + body) != int.from_bytes(crc, "big"):
            raise _ReasonError(f"corrupt PNG chunk {kind.decode('latin-1')!r} (CRC mismatch)")
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    if not chunks or chunks[-1][0] != b"IEND":
        raise _ReasonError("truncated (no PNG IEND chunk)")
    if chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise _ReasonError("corrupt PNG header (the first chunk is not a 13-byte IHDR)")
    return chunks


def _inflate_idat(chunks: list[tuple[bytes, bytes]], expected: int) -> bytes:
    """The first `expected` bytes of the concatenated IDAT stream: never more is inflated (a bomb stops there)."""
    inflater = zlib.decompressobj()
    out = bytearray()
    for kind, body in chunks:
        if kind != b"IDAT":
            continue
        pending = body
        while pending and len(out) < expected:  # max_length > 0 always: 0 would mean "no limit"
            out += inflater.decompress(pending, expected - len(out))
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
        if len(out) >= expected or inflater.eof:
            break
    if len(out) < expected:
        raise _ReasonError(f"truncated (PNG image data ends after {len(out):,} of {expected:,} bytes)")
    return bytes(out)


def _inflate_iccp(body: bytes) -> bytes:
    """An iCCP chunk's profile, inflated to at most Pillow's limit for such chunks (``MAX_TEXT_CHUNK``, 1 MiB)."""
    from PIL import PngImagePlugin

    limit = int(PngImagePlugin.MAX_TEXT_CHUNK)
    separator = body.find(b"\0")
    if not 0 <= separator <= 79 or len(body) < separator + 2:
        raise _ReasonError("corrupt iCCP chunk (no end to the profile name)")
    if body[separator + 1] != 0:
        raise _ReasonError(f"corrupt iCCP chunk (unknown compression method {body[separator + 1]})")
    inflater = zlib.decompressobj()
    try:
        profile = inflater.decompress(body[separator + 2 :], limit)
    except zlib.error as error:
        raise _ReasonError(f"corrupt iCCP chunk ({error})") from error
    if inflater.unconsumed_tail or (len(profile) >= limit and not inflater.eof):
        raise _ReasonError(
            f"ICC profile too large (the iCCP chunk inflates to more than {limit:,} bytes, the limit set by "
            "PIL.PngImagePlugin.MAX_TEXT_CHUNK)"
        )
    if not inflater.eof:
        raise _ReasonError("corrupt iCCP chunk (the compressed profile is incomplete)")
    return profile


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth) → (height, stride) uint8."""
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    out = np.empty((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:
            out[y] = line
        elif kind == 1:
            out[y] = line.reshape(-1, bpp).cumsum(axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:
            out[y] = line + prev
        elif kind in (3, 4):
            out[y] = np.frombuffer(_unfilter_sequential(kind, line.tobytes(), prev.tobytes(), bpp), dtype=np.uint8)
        else:
            raise _ReasonError(f"corrupt PNG image data (filter type {kind} in row {y})")
        prev = out[y]
    return out


def _unfilter_sequential(kind: int, line: bytes, prev: bytes, bpp: int) -> bytearray:
    # Average and Paeth depend on the already-decoded left neighbour: one byte at a time
    out = bytearray(line)
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 3:
            out[i] = (out[i] + ((a + b) >> 1)) & 0xFF
            continue
        c = prev[i - bpp] if i >= bpp else 0
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        out[i] = (out[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return out


def _read_png16(path: Path) -> LoadedImage:
    """Decode a non-interlaced 16-bit colour or gray+alpha PNG.

    Malformed data raises _ReasonError from the checks here, or one of _DECODE_ERRORS from below (Pillow's EXIF
    parser); read_image_any turns both into ImageReadError.
    """
    chunks = _png_chunks(path.read_bytes())
    header = chunks[0][1]
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    if header[8] != 16 or header[9] not in _PNG16_CHANNELS or header[12] != 0 or width == 0 or height == 0:
        raise _ReasonError("corrupt PNG header (not a 16-bit colour or gray+alpha image)")
    channels = _PNG16_CHANNELS[header[9]]
    stride = width * channels * 2
    try:
        raw = _inflate_idat(chunks, height * (stride + 1))
    except zlib.error as error:
        raise _ReasonError(f"corrupt PNG image data ({error})") from error
    data = _unfilter(raw, height, stride, channels * 2)
    pixels = data.view(">u2").reshape(height, width, channels)
    icc = exif = None
    for kind, body in chunks:
        if kind == b"iCCP" and icc is None:  # at most one is allowed; further ones are ignored, not inflated
            icc = _inflate_iccp(body)
        elif kind == b"eXIf" and exif is None:
            exif = body
    orientation = 1
    if exif:
        from PIL import Image

        parsed = Image.Exif()
        parsed.load(exif)
        value = parsed.get(_ORIENTATION_TAG, 1)
        orientation = value if isinstance(value, int) else 1
        parsed.pop(_ORIENTATION_TAG, None)
        exif = parsed.tobytes() if len(parsed) else None
    pixels = _orient(pixels, orientation)
    floats = pixels.astype(np.float32) / np.float32(65535.0)
    return _loaded(floats, _CHANNEL_MODES[channels], 16, "PNG", exif, icc)


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to (H, W, C) pixels, as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(pixels, k=-1)
    if orientation == 7:
        return pixels[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(pixels, k=1)
    return pixels


def _encode_png16(pixels: np.ndarray, *, exif: bytes | None, icc_profile: bytes | None) -> bytes:
    """(H, W, C) uint16 with C = 1..4 → 16-bit PNG bytes (per row the filter with the smallest sum, as libpng)."""
    height, width, channels = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    x = np.ascontiguousarray(pixels.astype(">u2")).view(np.uint8).reshape(height, width * bpp).astype(np.int16)
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    up_left = np.zeros_like(x)
    up_left[1:, bpp:] = x[:-1, :-bpp]
    p = left + up - up_left
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    candidates = np.stack([x, x - left, x - up, x - ((left + up) >> 1), x - paeth]) & 0xFF  # (5, H, stride)
    signed = np.where(candidates > 127, 256 - candidates, candidates).sum(axis=2)  # libpng's heuristic
    best = signed.argmin(axis=0)
    rows = candidates[best, np.arange(height)].astype(np.uint8)
    raw = np.concatenate([best.astype(np.uint8)[:, None], rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([16, colour_type, 0, 0, 0])
    parts = [_PNG_SIGNATURE, chunk(b"IHDR", header)]
    if icc_profile:
        parts.append(chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile)))
    if exif:
        parts.append(chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    parts += [chunk(b"IDAT", zlib.compress(raw, 6)), chunk(b"IEND", b"")]
    return b"".join(parts)


# ---- in-memory images (PIL, numpy)


def is_pil_image(value: object) -> bool:
    """Whether `value` is a ``PIL.Image.Image`` (without importing PIL when it was never imported)."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


def loaded_from_pil(image: PILImage.Image) -> LoadedImage:
    """An in-memory Pillow image as a :class:`LoadedImage` (same mode rules as :func:`read_image_any`).

    The EXIF orientation is **not** applied: the pixels are taken as given, and the EXIF (orientation tag included)
    is kept for the output, so an output of this image displays the way the input does.

    Raises:
        TypeError: `image` is not a Pillow image.
        ValueError: its pixels have no [0, 1] reading (``I`` values outside [0, 65535], NaN in ``F``).
    """
    if not is_pil_image(image):
        raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
    image.load()
    loaded = _loaded_from_pil(image, transpose=False)
    raw_exif = image.info.get("exif")
    return dataclasses.replace(loaded, format=image.format, exif=raw_exif if isinstance(raw_exif, bytes) else None)


def pixels_to_pil(pixels: np.ndarray, like: LoadedImage) -> PILImage.Image:
    """Integer or float32 pixels ((H, W) or (H, W, C), as :func:`loaded_to_array` gives) as a Pillow image (L, LA,
    RGB, RGBA, I;16, F), with the EXIF and ICC profile of `like` in ``info``."""
    from PIL import Image

    pil = Image.fromarray(pixels.astype("<u2") if pixels.dtype == np.uint16 else pixels)
    if like.icc_profile:
        pil.info["icc_profile"] = like.icc_profile
    if like.exif:
        pil.info["exif"] = like.exif
    return pil


def is_decompression_bomb(error: ImageReadError) -> bool:
    """Whether `error` was raised because Pillow took the file for a decompression bomb (too many pixels)."""
    from PIL import Image

    return isinstance(error.__cause__, Image.DecompressionBombError)


def loaded_to_pil(image: LoadedImage) -> PILImage.Image:
    """A :class:`LoadedImage` as a Pillow image of its mode: ``L``, ``LA``, ``RGB``, ``RGBA``, ``I;16`` for 16-bit
    gray, or ``F`` (float32 clipped to [0, 1]) for float gray. Pillow has no 16-bit or float colour modes, so deeper
    colour is quantised to 8 bits. EXIF and ICC profile are put in ``info``."""
    from PIL import Image

    if image.bit_depth == 32 and image.mode == "gray":
        pil = Image.fromarray(_float_gray(image))
    else:
        bits = 16 if image.bit_depth > 8 and image.mode == "gray" else 8
        pixels = _quantised_pixels(image, bits=bits)
        pil = Image.fromarray(pixels[:, :, 0].astype("<u2") if bits == 16 else _squeeze(pixels))
    if image.icc_profile:
        pil.info["icc_profile"] = image.icc_profile
    if image.exif:
        pil.info["exif"] = image.exif
    return pil


def loaded_from_array(array: np.ndarray) -> LoadedImage:
    """A numpy image as a :class:`LoadedImage`.

    Args:
        array: (H, W) or (H, W, 1) gray, (H, W, 2) gray+alpha, (H, W, 3) RGB or (H, W, 4) RGBA; uint8, uint16, or
            floating in [0, 1] (taken as float32, bit depth 32).

    Raises:
        TypeError, ValueError: another dtype or shape.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(array).__name__}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in _CHANNEL_MODES or 0 in array.shape:
        raise ValueError(f"expected an (H, W) or (H, W, C) image array with C in 1..4, got {_describe(array)}")
    if array.dtype == np.uint8:
        pixels, bits = array.astype(np.float32) / np.float32(255.0), 8
    elif array.dtype == np.uint16:
        pixels, bits = array.astype(np.float32) / np.float32(65535.0), 16
    elif np.issubdtype(array.dtype, np.floating):
        pixels, bits = array.astype(np.float32), 32
        if np.isnan(pixels).any():
            raise ValueError("image array contains NaN values")
    else:
        raise TypeError(f"image arrays must be uint8, uint16 or floating, got {_describe(array)}")
    return _loaded(pixels, _CHANNEL_MODES[array.shape[2]], bits, None, None, None)


def loaded_to_array(image: LoadedImage) -> np.ndarray:
    """A :class:`LoadedImage` as numpy: (H, W) gray, else (H, W, C); uint8 / uint16 for bit depths 8 / 16 (MATLAB
    rounding), float32 clipped to [0, 1] for 32."""
    if image.bit_depth == 32:
        return _squeeze(np.clip(_float_pixels(image), 0.0, 1.0))
    return _squeeze(_quantised_pixels(image, bits=16 if image.bit_depth > 8 else 8))


def _squeeze(pixels: np.ndarray) -> np.ndarray:
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


def _float_pixels(image: LoadedImage, *, mode: ImageMode | None = None) -> np.ndarray:
    """(H, W, C) float32 in the channel layout of `mode` (default: the image's); gray is BT.601 luma, or exactly
    the one channel when R = G = B (a gray image as read), so gray round-trips bit for bit."""
    mode = mode or image.mode
    rgb = image.rgb.detach().to("cpu", torch.float32)
    if mode in ("gray", "gray_alpha"):
        if torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[1], rgb[2]):
            colour = rgb[:1]
        else:
            colour = (_LUMA[0] * rgb[0] + _LUMA[1] * rgb[1] + _LUMA[2] * rgb[2]).unsqueeze(0)
    else:
        colour = rgb
    if mode in ("gray_alpha", "rgba"):
        alpha = image.alpha if image.alpha is not None else torch.ones_like(rgb[:1])
        colour = torch.cat([colour, alpha.detach().to("cpu", torch.float32)], dim=0)
    return np.ascontiguousarray(colour.permute(1, 2, 0).numpy())


def _float_gray(image: LoadedImage) -> np.ndarray:
    """(H, W) float32 gray clipped to [0, 1]: what a float TIFF or a Pillow ``F`` image of `image` holds."""
    pixels = _float_pixels(image, mode="gray")[:, :, 0]
    if np.isnan(pixels).any():
        raise ValueError("image contains NaN values")
    return np.ascontiguousarray(np.clip(pixels, np.float32(0.0), np.float32(1.0)))


def _quantised_pixels(image: LoadedImage, *, bits: int, mode: ImageMode | None = None) -> np.ndarray:
    pixels = _float_pixels(image, mode=mode)
    if np.isnan(pixels).any():
        raise ValueError("image contains NaN values")
    peak = np.float32(255.0 if bits == 8 else 65535.0)
    quantised = np.floor(np.clip(pixels, 0.0, 1.0) * peak + np.float32(0.5))
    return quantised.astype(np.uint8 if bits == 8 else np.uint16)


# ---- writing


_ALPHA_FORMATS: Final = frozenset({".png", ".webp", ".tif", ".tiff"})
_GRAY_FORMATS: Final = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


def format_can_hold(suffix: str, *, mode: ImageMode, bit_depth: int) -> bool:
    """Whether :func:`write_image_like` can write an image of this mode and bit depth to `suffix` without loss of
    kind: alpha needs PNG, WebP or TIFF; gray stays gray except in WebP; more than 8 bits (16, or 32 for float) need
    PNG, which stores them as 16 bits, or TIFF for gray, which stores 16-bit gray as 16 bits and float gray as
    32-bit float.

    >>> format_can_hold(".jpg", mode="rgba", bit_depth=8), format_can_hold(".png", mode="rgb", bit_depth=16)
    (False, True)
    """
    suffix = suffix.lower()
    if suffix not in _WRITE_FORMATS:
        return False
    if mode in ("gray_alpha", "rgba") and suffix not in _ALPHA_FORMATS:
        return False
    if mode in ("gray", "gray_alpha") and suffix not in _GRAY_FORMATS:
        return False
    if bit_depth > 8:
        return suffix == ".png" or (suffix in (".tif", ".tiff") and mode == "gray")
    return True


def _write_target(path: PathLike, quality: int) -> tuple[Path, str]:
    """`path` and its lower-case extension, once the extension is a known format and `quality` is in 1..100."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITE_FORMATS:
        raise ImageWriteError(
            path, f"unknown extension {path.suffix or '(none)'!r}; use one of {', '.join(_WRITE_FORMATS)}"
        )
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    return path, suffix


def write_image_like(path: PathLike, image: LoadedImage, *, quality: int = 95) -> None:
    """Write `image` atomically in its own kind (mode, bit depth, EXIF, ICC profile) as far as the format allows.

    The extension chooses the format. Where it cannot hold the image's kind (see :func:`format_can_hold`), the
    nearest it can is written: JPEG and BMP drop the alpha channel, WebP stores gray as RGB, and 16-bit data is
    quantised to 8 bits outside PNG (and TIFF for gray). Float images (``bit_depth`` 32, e.g. read from a float
    TIFF) are written as a 32-bit float TIFF with values clipped to [0, 1] when gray and the extension is
    ``.tif``/``.tiff``, as 16-bit PNG (any mode), and as 8-bit elsewhere (colour or alpha TIFFs included).
    Gray is written from the BT.601 luma of ``rgb``. 16-bit colour PNGs are encoded here (Pillow cannot write
    them); everything else by Pillow. Quantisation rounds like MATLAB (``floor(x·peak + 0.5)``).

    Args:
        path: destination; parent folders are created; an existing file is replaced only once the new one is
            complete.
        image: what to write (e.g. an upscaled :class:`LoadedImage`).
        quality: JPEG/WebP quality, 1-100.

    Raises:
        ImageWriteError: unknown extension or an I/O failure.
        ValueError: bad quality, or NaN pixels.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     rgba = LoadedImage(rgb=torch.rand(3, 4, 5), alpha=torch.ones(1, 4, 5), mode="rgba", bit_depth=16)
    ...     write_image_like(f"{tmp}/a.png", rgba)
    ...     back = read_image_any(f"{tmp}/a.png")
    >>> back.mode, back.bit_depth, bool((back.rgb - rgba.rgb).abs().max() < 1e-4)
    ('rgba', 16, True)
    """
    path, suffix = _write_target(path, quality)
    mode: ImageMode = image.mode
    if mode in ("gray_alpha", "rgba") and suffix not in _ALPHA_FORMATS:
        mode = "gray" if mode == "gray_alpha" else "rgb"
    if mode in ("gray", "gray_alpha") and suffix not in _GRAY_FORMATS:
        mode = "rgb" if mode == "gray" else "rgba"
    if image.bit_depth == 32 and mode == "gray" and suffix in (".tif", ".tiff"):
        bits = 32
        pixels = _float_gray(image)[:, :, None]  # float32 (H, W, 1) in [0, 1]: Pillow mode "F"
    else:
        bits = 16 if image.bit_depth > 8 and format_can_hold(suffix, mode=mode, bit_depth=16) else 8
        pixels = _quantised_pixels(image, bits=bits, mode=mode)
    _write_pixels(path, pixels, bits=bits, like=image, quality=quality)


def _write_pixels(path: Path, pixels: np.ndarray, *, bits: int, like: LoadedImage, quality: int) -> None:
    """Encode (H, W, C) pixels (uint8, uint16, or float32 for 32) with `like`'s EXIF and ICC profile, atomically."""
    pil_format = _WRITE_FORMATS[path.suffix.lower()]

    def save(file: BinaryIO) -> None:
        if bits == 16 and pixels.shape[2] > 1:  # only PNG gets here (format_can_hold)
            file.write(_encode_png16(pixels, exif=like.exif, icc_profile=like.icc_profile))
            return
        from PIL import Image

        pil = Image.fromarray(pixels[:, :, 0].astype("<u2") if bits == 16 else _squeeze(pixels))
        options: dict[str, Any] = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {}
        if like.exif:
            options["exif"] = like.exif
        if like.icc_profile and pil_format != "BMP":
            options["icc_profile"] = like.icc_profile
        pil.save(file, format=pil_format, **options)

    _atomic_write(path, save)


_PIXEL_DTYPES: Final = {8: np.uint8, 16: np.uint16}
_MODE_CHANNELS: Final[dict[str, int]] = {"gray": 1, "gray_alpha": 2, "rgb": 3, "rgba": 4}


def write_pixels_like(path: PathLike, pixels: np.ndarray, *, like: LoadedImage, quality: int = 95) -> None:
    """Write integer pixels already in `like`'s kind, with its EXIF and ICC profile, atomically: what
    :func:`write_image_like` writes for the same image, without its full-size float copies.

    Args:
        path: destination; its extension must hold `like`'s mode at its bit depth (:func:`format_can_hold`).
        pixels: (H, W) or (H, W, C) in the channel layout of ``like.mode``; uint8 when ``like.bit_depth`` is 8,
            uint16 when 16 (e.g. what :class:`blindsr.inference.Upscaler` returns for ``loaded_to_array(like)``).
        like: the image whose kind and metadata the file gets (its pixels are not used).
        quality: JPEG/WebP quality, 1-100.

    Raises:
        ValueError: pixels of another layout or dtype, a bit depth other than 8/16, or a format that cannot hold it.
        ImageWriteError: unknown extension or an I/O failure.
    """
    path, suffix = _write_target(path, quality)
    dtype = _PIXEL_DTYPES.get(like.bit_depth)
    if dtype is None or not format_can_hold(suffix, mode=like.mode, bit_depth=like.bit_depth):
        raise ValueError(f"{suffix} cannot hold {like.bit_depth}-bit {like.mode} pixels; use write_image_like")
    array = pixels[:, :, None] if pixels.ndim == 2 else pixels
    if array.ndim != 3 or array.shape[2] != _MODE_CHANNELS[like.mode] or array.dtype != dtype:
        raise ValueError(
            f"pixels must be {np.dtype(dtype).name} with {_MODE_CHANNELS[like.mode]} channel(s) for a "
            f"{like.bit_depth}-bit {like.mode} image, got {array.dtype} {tuple(pixels.shape)}"
        )
    _write_pixels(path, np.ascontiguousarray(array), bits=like.bit_depth, like=like, quality=quality)
