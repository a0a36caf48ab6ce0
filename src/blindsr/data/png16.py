"""16-bit colour and gray+alpha PNG, the kinds Pillow opens only as 8-bit, read and written with pypng.

Pillow holds 16-bit gray (mode ``I;16``) but has no 16-bit mode with more than one channel, so it opens 16-bit RGB,
RGBA and gray+alpha PNGs as 8-bit and cannot write them. :mod:`blindsr.data.user_images` hands those files to this
module, which uses the maintained pure-Python codec `pypng <https://gitlab.com/drj11/pypng>`_ (``import png``) and
keeps every 16 bits:

- :func:`png16_channels` tells from the 33-byte header whether a file is such a PNG (non-interlaced; Adam7
  interlaced ones stay with Pillow's 8-bit decoding, since pypng would inflate them whole).
- :func:`read_png16` decodes one: ``(H, W, C)`` uint16 pixels, the raw ``eXIf`` data and the ICC profile.
- :func:`encode_png16` encodes ``(H, W, C)`` uint16 pixels with an EXIF and ICC profile.

What this module adds to pypng is the hardening a tool reading untrusted files needs, each failure being one
:class:`~blindsr.data.image_errors.ImageDataError` whose message is a one-line reason:

- every chunk's CRC is checked (by pypng) before any pixel is decoded;
- pypng inflates each ``IDAT`` chunk whole, so the image data is handed to it in pieces of
  :data:`IDAT_PIECE_BYTES` and only as many rows as the header declares are taken: data beyond the image (a few KB
  that inflate to gigabytes) is inflated by about 1 MiB at most (deflate expands at most ~1032 times);
- the ICC profile (``iCCP``) is inflated to at most a given limit, and a corrupt one is refused;
- the pixel count is the caller's to check from the header before calling :func:`read_png16` (what
  :func:`blindsr.data.user_images.read_image_any` does with its ``max_pixels``).

pypng is imported inside the functions that use it.
"""

from __future__ import annotations

import io
import itertools
import re
import zlib
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np

from blindsr.data.image_errors import ImageDataError

__all__ = ["IDAT_PIECE_BYTES", "encode_png16", "png16_channels", "read_png16"]

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG16_CHANNELS: Final = {2: 3, 4: 2, 6: 4}  # PNG colour type -> channels, for the 16-bit kinds Pillow reads as 8-bit

IDAT_PIECE_BYTES: Final = 1024
"""Compressed image data handed to pypng's inflater at a time; it bounds what is inflated beyond the image."""


def png16_channels(path: Path) -> int | None:
    """The channels (2, 3 or 4) of a non-interlaced 16-bit gray+alpha, RGB or RGBA PNG; None for any other file.

    Only the signature and the ``IHDR`` fields are looked at; :func:`read_png16` checks the rest.
    """
    with path.open("rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    bit_depth, colour_type, interlace = head[24], head[25], head[28]
    if bit_depth != 16 or colour_type not in _PNG16_CHANNELS or interlace != 0:
        return None
    return _PNG16_CHANNELS[colour_type]


def read_png16(path: Path, *, icc_limit: int) -> tuple[np.ndarray, bytes | None, bytes | None]:
    """Decode a non-interlaced 16-bit gray+alpha, RGB or RGBA PNG with pypng.

    Args:
        path: the file (:func:`png16_channels` gives a channel count for it).
        icc_limit: the most bytes the ICC profile may inflate to.

    Returns:
        ``(H, W, C)`` uint16 pixels as stored (no EXIF orientation applied), the first ``eXIf`` chunk's data (or
        None) and the ICC profile of the first ``iCCP`` chunk (or None).

    Raises:
        ImageDataError: malformed data (CRC mismatch, truncated, corrupt header, image data or ICC profile).
    """
    import png

    try:
        with path.open("rb") as fh:
            chunks = list(png.Reader(file=fh).chunks())  # every CRC checked, nothing inflated
    except png.Error as error:
        raise ImageDataError(_chunk_reason(error)) from error
    if chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise ImageDataError("corrupt PNG header (the first chunk is not a 13-byte IHDR)")
    icc = exif = None
    for kind, body in chunks:
        if kind == b"iCCP" and icc is None:  # at most one is allowed; further ones are ignored, not inflated
            icc = _inflate_iccp(body, icc_limit)
        elif kind == b"eXIf" and exif is None:
            exif = body
    return _decode(chunks), exif, icc


def _decode(chunks: list[tuple[bytes, bytes]]) -> np.ndarray:
    """The pixels of the IHDR and IDAT chunks, through pypng fed with small IDAT pieces (see the module docstring)."""
    import png

    idat = memoryview(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    pieces = ((b"IDAT", idat[i : i + IDAT_PIECE_BYTES]) for i in range(0, len(idat), IDAT_PIECE_BYTES))
    stream = io.BytesIO()
    png.write_chunks(stream, [chunks[0], *pieces, (b"IEND", b"")])
    try:
        width, height, rows, info = png.Reader(bytes=stream.getvalue()).read()  # reads the header only
    except png.Error as error:
        raise ImageDataError(f"corrupt PNG header ({_message(error)})") from error
    channels = int(info["planes"])
    if info["bitdepth"] != 16 or info["interlace"] or channels < 2 or width == 0 or height == 0:
        raise ImageDataError("corrupt PNG header (not a 16-bit colour or gray+alpha image)")
    pixels = np.empty((height, width * channels), dtype=np.uint16)
    done = 0
    try:
        for row in itertools.islice(rows, height):  # never a row more: surplus data stays compressed
            pixels[done] = np.frombuffer(row, dtype=np.uint16)  # pypng's array("H"): values, native byte order
            done += 1
    except png.Error as error:
        raise ImageDataError(_data_reason(error, done, height)) from error
    except zlib.error as error:
        raise ImageDataError(f"corrupt PNG image data ({error})") from error
    if done < height:
        raise ImageDataError(_truncated(done, height))
    return pixels.reshape(height, width, channels)


def _message(error: Exception) -> str:
    """pypng's message without the class name its ``__str__`` puts first."""
    return " ".join(str(arg) for arg in error.args) or type(error).__name__


def _chunk_reason(error: Exception) -> str:
    """The reason for what pypng's chunk reader raised."""
    message = _message(error)
    crc = re.match(r"Checksum error in (\w+) chunk", message)
    if crc:
        return f"corrupt PNG chunk {crc[1]!r} (CRC mismatch)"
    if message == "No more chunks.":
        return "truncated (no PNG IEND chunk)"
    if "too short" in message or "End of file" in message:
        return "truncated (incomplete PNG chunk)"
    length = re.match(r"Chunk .* is too large: (\d+)", message)
    if length:
        return f"corrupt PNG chunk length {int(length[1]):,} (more than 2^31 - 1)"
    return f"corrupt PNG data ({message})"


def _data_reason(error: Exception, row: int, height: int) -> str:
    """The reason for what pypng raised while decoding the rows, `row` rows in."""
    message = _message(error)
    if "Wrong size" in message:  # the inflated data ends inside a row
        return _truncated(row, height)
    if "Filter Type" in message:
        return f"corrupt PNG image data (invalid filter type in row {row})"
    return f"corrupt PNG image data ({message})"


def _truncated(rows: int, height: int) -> str:
    return f"truncated (PNG image data ends after {rows:,} of {height:,} rows)"


def _inflate_iccp(body: bytes, limit: int) -> bytes:
    """An iCCP chunk's profile, inflated to at most `limit` bytes."""
    separator = body.find(b"\0")
    if not 0 <= separator <= 79 or len(body) < separator + 2:
        raise ImageDataError("corrupt iCCP chunk (no end to the profile name)")
    if body[separator + 1] != 0:
        raise ImageDataError(f"corrupt iCCP chunk (unknown compression method {body[separator + 1]})")
    inflater = zlib.decompressobj()
    try:
        profile = inflater.decompress(body[separator + 2 :], limit)
    except zlib.error as error:
        raise ImageDataError(f"corrupt iCCP chunk ({error})") from error
    if inflater.unconsumed_tail or (len(profile) >= limit and not inflater.eof):
        raise ImageDataError(
            f"ICC profile too large (the iCCP chunk inflates to more than {limit:,} bytes, the limit set by "
            "PIL.PngImagePlugin.MAX_TEXT_CHUNK)"
        )
    if not inflater.eof:
        raise ImageDataError("corrupt iCCP chunk (the compressed profile is incomplete)")
    return profile


def encode_png16(file: BinaryIO, pixels: np.ndarray, *, exif: bytes | None, icc_profile: bytes | None) -> None:
    """Write ``(H, W, C)`` uint16 pixels (C = 1..4: gray, gray+alpha, RGB, RGBA) to `file` as a 16-bit PNG.

    pypng encodes the pixels (zlib level 6, filter type None on every row); the ICC profile (``iCCP``) and the EXIF
    (``eXIf``, without a leading ``Exif\\0\\0``) are put between ``IHDR`` and the image data.
    """
    import png

    height, width, channels = pixels.shape
    writer = png.Writer(width, height, greyscale=channels <= 2, alpha=channels in (2, 4), bitdepth=16, compression=6)
    big_endian = np.ascontiguousarray(pixels, dtype=">u2").reshape(height, width * channels)
    encoded = io.BytesIO()
    writer.write_packed(encoded, (row.tobytes() for row in big_endian))  # packed rows: big-endian bytes
    chunks = list(png.Reader(bytes=encoded.getvalue()).chunks())
    extra = []
    if icc_profile:
        extra.append((b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile)))
    if exif:
        extra.append((b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    png.write_chunks(file, [chunks[0], *extra, *chunks[1:]])
