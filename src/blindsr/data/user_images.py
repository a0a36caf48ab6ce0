"""Images as users have them: mode, bit depth and metadata kept from the file a user gives to the file they get.

The dataset readers of :mod:`blindsr.data.images` make every image ``(3, H, W)`` RGB; a tool that upscales a user's
images must instead give back the kind it was given. This module reads and writes that kind:

- :func:`read_image_any` reads the mode (gray, gray+alpha, RGB, RGBA), 8 or 16 bits (including 16-bit colour PNGs,
  which Pillow cannot hold: :mod:`blindsr.data.png16` reads them with pypng), 32-bit float gray, the EXIF and the ICC
  profile, with an explicit pixel limit (:data:`DEFAULT_MAX_PIXELS`) checked from the header before decoding.
  :class:`LoadedImage` carries them.
- :func:`write_image_like` / :func:`write_pixels_like` write an image back in its own kind as far as the format
  allows (:func:`format_can_hold`).
- :func:`loaded_from_pil` / :func:`loaded_to_pil` / :func:`pixels_to_pil` and :func:`loaded_from_array` /
  :func:`loaded_to_array` convert in-memory images the same way; colour becomes gray with :data:`LUMA_WEIGHTS`.

Bad files raise the one-line :class:`~blindsr.data.image_errors.ImageReadError`. PIL is imported inside the
functions that use it, so ``import blindsr.data.user_images`` pulls in torch and numpy only.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     write_image_like(f"{tmp}/a.png", loaded_from_array(np.zeros((4, 5, 2), dtype=np.uint16)))
...     img = read_image_any(f"{tmp}/a.png")
>>> img.mode, img.bit_depth, (img.height, img.width)
('gray_alpha', 16, (4, 5))
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal

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
)
from blindsr.data.images import (
    ORIENTATION_TAG,
    WRITE_FORMATS,
    atomic_image_write,
    check_image_file,
    deep_gray,
    describe,
    too_large_reason,
    unidentified_reason,
)
from blindsr.data.png16 import encode_png16, png16_channels, read_png16

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageMode",
    "LUMA_WEIGHTS",
    "LoadedImage",
    "format_can_hold",
    "is_pil_image",
    "loaded_from_array",
    "loaded_from_pil",
    "loaded_to_array",
    "loaded_to_pil",
    "pixels_to_pil",
    "read_image_any",
    "write_image_like",
    "write_pixels_like",
]

ImageMode = Literal["gray", "gray_alpha", "rgb", "rgba"]

DEFAULT_MAX_PIXELS: Final = 8192 * 8192
"""Largest image :func:`read_image_any` decodes by default (67,108,864 pixels, e.g. 8192×8192). Upscaled ×4 in
float32 such an input needs 12.9 GB for its output alone; larger files are refused before decoding, which also
stops decompression bombs (a few KB of PNG that inflate to gigabytes)."""

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
    - Values as in :func:`blindsr.data.images.read_image`: 32-bit integer gray (``I``) must lie in [0, 65535] and
      is read as 16-bit; 32-bit float gray (``F``, one-channel float TIFFs) is read as values in [0, 1], clipped to
      [0, 1], and gives ``bit_depth`` 32, which :func:`write_image_like` writes back as a float TIFF (or 16-bit PNG).
    - 16-bit colour and gray+alpha PNGs (which Pillow opens as 8-bit) are decoded by :mod:`blindsr.data.png16`
      with pypng, keeping all 16 bits (non-interlaced files; Adam7-interlaced ones fall back to Pillow's 8-bit
      decoding). pypng is pure Python: a few seconds per megapixel for rows written with PNG's Sub, Up, Average
      or Paeth filters (as libpng writes them), about 0.3 s for unfiltered rows (what :func:`write_image_like`
      writes). Every chunk's CRC is
      checked, at most about 1 MiB of image data is inflated beyond what the header implies, an ICC profile
      (``iCCP``) that is corrupt or inflates beyond Pillow's limit for such chunks
      (``PIL.PngImagePlugin.MAX_TEXT_CHUNK``, 1 MiB) is refused, and any malformed data is an
      :class:`~blindsr.data.image_errors.ImageReadError`.
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
    >>> from blindsr.data.images import write_image
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_image(f"{tmp}/g.png", torch.full((1, 4, 6), 0.5))
    ...     img = read_image_any(f"{tmp}/g.png")
    >>> img.mode, img.bit_depth, tuple(img.rgb.shape), img.alpha
    ('gray', 8, (3, 4, 6), None)
    """
    path = check_image_file(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            _check_pixel_count(path, img.size, max_pixels)
            if img.format == "PNG" and png16_channels(path) is not None:
                loaded = _read_png16(path)
            else:
                img.load()
                loaded = _loaded_from_pil(img, transpose=True)
    except UnidentifiedImageError as error:
        raise ImageReadError(path, unidentified_reason(path)) from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, too_large_reason(error)) from error
    except ImageDataError as error:
        raise ImageReadError(path, str(error)) from error
    except DECODE_ERRORS as error:
        raise ImageReadError(path, decode_reason(error)) from error
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
    deep = deep_gray(img)
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
    if ORIENTATION_TAG in exif:
        del exif[ORIENTATION_TAG]
    if not len(exif):
        return None
    data = exif.tobytes()
    return data or None


# ---- 16-bit PNG (colour and gray+alpha), which Pillow can only open as 8-bit: blindsr.data.png16


def _read_png16(path: Path) -> LoadedImage:
    """A 16-bit colour or gray+alpha PNG read by :func:`blindsr.data.png16.read_png16`, its EXIF orientation applied.

    Malformed data raises ImageDataError, or one of DECODE_ERRORS from Pillow's EXIF parser; read_image_any turns
    both into ImageReadError.
    """
    from PIL import Image, PngImagePlugin

    pixels, exif, icc = read_png16(path, icc_limit=int(PngImagePlugin.MAX_TEXT_CHUNK))
    orientation = 1
    if exif:
        parsed = Image.Exif()
        parsed.load(exif)
        value = parsed.get(ORIENTATION_TAG, 1)
        orientation = value if isinstance(value, int) else 1
        parsed.pop(ORIENTATION_TAG, None)
        exif = parsed.tobytes() if len(parsed) else None
    pixels = _orient(pixels, orientation)
    floats = pixels.astype(np.float32) / np.float32(65535.0)
    return _loaded(floats, _CHANNEL_MODES[pixels.shape[2]], 16, "PNG", exif, icc)


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
        raise ValueError(f"expected an (H, W) or (H, W, C) image array with C in 1..4, got {describe(array)}")
    if array.dtype == np.uint8:
        pixels, bits = array.astype(np.float32) / np.float32(255.0), 8
    elif array.dtype == np.uint16:
        pixels, bits = array.astype(np.float32) / np.float32(65535.0), 16
    elif np.issubdtype(array.dtype, np.floating):
        pixels, bits = array.astype(np.float32), 32
        if np.isnan(pixels).any():
            raise ValueError("image array contains NaN values")
    else:
        raise TypeError(f"image arrays must be uint8, uint16 or floating, got {describe(array)}")
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
    if suffix not in WRITE_FORMATS:
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
    if suffix not in WRITE_FORMATS:
        raise ImageWriteError(
            path, f"unknown extension {path.suffix or '(none)'!r}; use one of {', '.join(WRITE_FORMATS)}"
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
    Gray is written from the BT.601 luma of ``rgb``. 16-bit colour and gray+alpha PNGs are encoded by pypng
    (:func:`blindsr.data.png16.encode_png16`; Pillow cannot write them); everything else by Pillow. Quantisation
    rounds like MATLAB (``floor(x·peak + 0.5)``).

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
    pil_format = WRITE_FORMATS[path.suffix.lower()]

    def save(file: BinaryIO) -> None:
        if bits == 16 and pixels.shape[2] > 1:  # only PNG gets here (format_can_hold)
            encode_png16(file, pixels, exif=like.exif, icc_profile=like.icc_profile)
            return
        from PIL import Image

        pil = Image.fromarray(pixels[:, :, 0].astype("<u2") if bits == 16 else _squeeze(pixels))
        options: dict[str, Any] = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {}
        if like.exif:
            options["exif"] = like.exif
        if like.icc_profile and pil_format != "BMP":
            options["icc_profile"] = like.icc_profile
        pil.save(file, format=pil_format, **options)

    atomic_image_write(path, save)


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
