"""Dataset images ↔ tensors: what benchmarks, metrics and training read and write.

Everywhere in the package, an image is a ``(3, H, W)`` (or batched ``(B, 3, H, W)``) float32 RGB tensor in
``[0, 1]``. This module converts at the file boundary for the library's own data:

- :func:`read_image` decodes any common image file (and ``.npy`` float arrays) to ``(3, H, W)`` float32 RGB;
  :func:`read_image_uint8` gives the same pixels as uint8, for compact caches.
- :func:`write_image` writes a float tensor atomically, quantising 8-bit formats with MATLAB rounding.
- :func:`float_to_uint8` / :func:`to_uint8` are that rounding, for metrics and caches.
- :func:`list_images` / :func:`image_size` find images and read their sizes without decoding them.

Images as users have them (gray, alpha, 16 bits, EXIF, ICC profile kept from input to output) are
:mod:`blindsr.data.user_images`, which builds on the helpers here (:func:`check_image_file`, :func:`deep_gray`,
:func:`atomic_image_write`, ...); the errors are :mod:`blindsr.data.image_errors`.

PIL is imported inside the functions that use it, so ``import blindsr.data.images`` pulls in torch and numpy only.

>>> import tempfile, torch
>>> with tempfile.TemporaryDirectory() as tmp:
...     write_image(f"{tmp}/out/a.png", torch.full((3, 4, 5), 0.5))
...     read_image(f"{tmp}/out/a.png").shape
torch.Size([3, 4, 5])
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

import numpy as np
import torch
from torch import Tensor

from blindsr.data.image_errors import (
    DECODE_ERRORS,
    ImageDataError,
    ImageReadError,
    ImageWriteError,
    PathLike,
    decode_reason,
    first_line,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

__all__ = [
    "IMAGE_EXTENSIONS",
    "float_to_uint8",
    "image_size",
    "list_images",
    "read_image",
    "read_image_uint8",
    "to_uint8",
    "write_image",
]

IMAGE_EXTENSIONS: Final[tuple[str, ...]] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Suffixes (lower case) recognised as image files by :func:`list_images`; matching is case-insensitive."""

NPY_EXTENSION: Final = ".npy"

WRITE_FORMATS: Final[dict[str, str]] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
"""Suffix → the Pillow format name it is written as (``.npy`` is handled apart)."""

_UINT16_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
ORIENTATION_TAG: Final = 0x0112
"""The EXIF Orientation tag; its values 5-8 swap width and height."""

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


def check_image_file(path: PathLike) -> Path:
    """`path` as a :class:`~pathlib.Path`, once it names a non-empty file (what every reader checks first).

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageReadError: it is a directory or an empty file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file")
    return path


def _read_pixels(path: PathLike) -> np.ndarray:
    """Decode to uint8 or float32 pixels, (H, W) gray or (H, W, 3) RGB."""
    path = check_image_file(path)
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
        raise ImageReadError(path, f"not a valid .npy array file ({first_line(error)})") from error
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
        raise ImageReadError(path, unidentified_reason(path)) from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, too_large_reason(error)) from error
    except ImageDataError as error:
        raise ImageReadError(path, str(error)) from error
    except DECODE_ERRORS as error:
        raise ImageReadError(path, decode_reason(error)) from error


_TIFF_SAMPLE_FORMATS: Final = {1: "unsigned integer", 2: "signed integer", 3: "float"}


def unidentified_reason(path: Path) -> str:
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
    except DECODE_ERRORS:
        return "corrupt or unsupported TIFF (Pillow cannot open it)"
    kind = _TIFF_SAMPLE_FORMATS.get(sample_format, f"sample format {sample_format}")
    depth = "/".join(str(b) for b in bits)
    reason = f"unsupported TIFF pixel format: {samples} channel(s) of {depth}-bit {kind} (Pillow cannot open it)"
    if sample_format == 3:
        reason += "; float TIFFs are read with one 32-bit channel only: save it as such, as a 16-bit PNG, or as .npy"
    return reason


def _first_value(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def deep_gray(img: PILImage.Image) -> tuple[np.ndarray, int] | None:
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
            raise ImageDataError(
                f"32-bit integer pixels range over {low}..{high}, outside 0..65535, so their scale is unknown; "
                "convert the image to 16 bits, or to 32-bit float in [0, 1]"
            )
        return values.astype(np.float32) / np.float32(65535.0), 16
    if mode == "F":
        values = np.array(img, dtype=np.float32)
        if np.isnan(values).any():
            raise ImageDataError("float pixels contain NaN values")
        return np.clip(values, np.float32(0.0), np.float32(1.0)), 32
    return None


def _pil_to_pixels(img: PILImage.Image) -> np.ndarray:
    """uint8 (H, W) / (H, W, 3), or float32 (H, W) in [0, 1] for 16-bit, 32-bit integer and float gray."""
    mode = img.mode
    deep = deep_gray(img)
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


def too_large_reason(error: Exception) -> str:
    """The reason for Pillow's ``DecompressionBombError``: the pixel count, its limit, and how to raise it."""
    numbers = re.findall(r"\((\d+) pixels\).*?limit of (\d+) pixels", str(error))
    if numbers:
        pixels, limit = numbers[0]
        detail = f"{int(pixels):,} pixels > limit of {int(limit):,}"
    else:
        detail = first_line(error)
    return f"too large ({detail}; raise PIL.Image.MAX_IMAGE_PIXELS if the file is trusted)"


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
    path = check_image_file(path)
    if path.suffix.lower() == NPY_EXTENSION:
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (ValueError, OSError, EOFError) as error:
            raise ImageReadError(path, f"not a valid .npy array file ({first_line(error)})") from error
        if len(shape) not in (2, 3):
            raise ImageReadError(path, f"expected an (H, W, 3), (H, W, 1) or (H, W) array, got shape {shape}")
        return int(shape[0]), int(shape[1])

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = _header_orientation(img)
    except UnidentifiedImageError as error:
        raise ImageReadError(path, unidentified_reason(path)) from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, too_large_reason(error)) from error
    except DECODE_ERRORS as error:
        raise ImageReadError(path, f"corrupt image header ({first_line(error)})") from error
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
    orientation = exif.get(ORIENTATION_TAG, 1)
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
        raise TypeError(f"expected a floating-point tensor, got {describe(image)}")
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
        raise ValueError(f"expected a (C, H, W) or (H, W) tensor, got {describe(image)}")
    quantised = float_to_uint8(image.detach()).cpu()
    if quantised.ndim == 3:
        quantised = quantised.permute(1, 2, 0)
    return np.ascontiguousarray(quantised.numpy())


def describe(value: object) -> str:
    """A tensor's or array's shape and dtype, else the type's name: what argument errors say they got."""
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
    if suffix != NPY_EXTENSION and suffix not in WRITE_FORMATS:
        known = ", ".join([*WRITE_FORMATS, NPY_EXTENSION])
        raise ImageWriteError(path, f"unknown extension {path.suffix or '(none)'!r}; use one of {known}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")

    if suffix == NPY_EXTENSION:
        array = _as_float_hwc3(image)

        def save(file: BinaryIO) -> None:
            np.save(file, array, allow_pickle=False)

    else:
        pixels = _as_pixels(path, image, suffix)
        pil_format = WRITE_FORMATS[suffix]

        def save(file: BinaryIO) -> None:
            _save_pil(pixels, file, pil_format=pil_format, quality=quality)

    atomic_image_write(path, save)


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
        raise TypeError(f"expected a float tensor or a uint8/uint16 numpy array, got {describe(image)}")
    if not image.is_floating_point():
        raise TypeError(f"expected a floating-point tensor in [0, 1], got {describe(image)}")
    if image.ndim == 2:
        image = image.unsqueeze(0)
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W), (1, H, W) or (H, W) tensor, got {describe(image)}")
    if torch.isnan(image).any():
        raise ValueError("image contains NaN values")
    return image


def _check_numpy_pixels(image: np.ndarray) -> np.ndarray:
    if image.dtype not in (np.uint8, np.uint16):
        raise TypeError(
            f"numpy input must be uint8 or uint16 pixels, got {describe(image)}; pass float data as a (C, H, W) tensor"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, got {describe(image)}")
    return np.ascontiguousarray(image)


def _save_pil(pixels: np.ndarray, file: BinaryIO, *, pil_format: str, quality: int) -> None:
    from PIL import Image

    # uint16 (H, W) opens as "I;16", uint8 as "L", "RGB" or "RGBA"
    pil_image = Image.fromarray(pixels.astype("<u2") if pixels.dtype == np.uint16 else pixels)
    options: dict[str, Any] = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {}
    pil_image.save(file, format=pil_format, **options)


def atomic_image_write(path: Path, save: Callable[[BinaryIO], None]) -> None:
    """Run ``save(file)`` on a temporary sibling of `path`, then rename it onto `path` (:func:`blindsr.files.
    atomic_write`); the folders above `path` are created. Every failure is an :class:`ImageWriteError`."""
    from blindsr.files import OutputError, atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImageWriteError(path, first_line(error)) from error
    try:
        atomic_write(path, save, create_parent=False)
    except OutputError as error:  # the OS refused (full disk, read-only, ...): its own words
        raise ImageWriteError(path, first_line(error.__cause__ or error)) from error
    except (ValueError, KeyError) as error:  # what Pillow and numpy raise for data they cannot write
        raise ImageWriteError(path, first_line(error)) from error
