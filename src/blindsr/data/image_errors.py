"""The two errors of the image readers and writers, and how a decoder's failure becomes a one-line reason.

Every reader of :mod:`blindsr.data.images` (dataset tensors), :mod:`blindsr.data.user_images` (images as users have
them) and :mod:`blindsr.data.png16` (16-bit colour PNG) reports a file it cannot decode as an :class:`ImageReadError`
whose message is one line, so a bad file never stops a batch with a traceback; the writers report with
:class:`ImageWriteError`. The helpers below the two errors (:data:`DECODE_ERRORS`, :class:`ImageDataError`,
:func:`first_line`, :func:`decode_reason`) are shared by those modules. This module imports neither
PIL nor torch.

>>> str(ImageReadError("a.png", "empty file"))
'cannot read image a.png: empty file'
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from typing import Final

__all__ = ["ImageReadError", "ImageWriteError", "is_decompression_bomb"]

PathLike = str | os.PathLike[str]

DECODE_ERRORS: Final[tuple[type[Exception], ...]] = (
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
"""What decoders (Pillow's plugins, numpy, zlib, struct) raise for bad data; each reader turns these into one-line
:class:`ImageReadError`\\ s."""


class ImageDataError(ValueError):
    """Bad data found by the readers' own checks; its message is the whole one-line reason of the ImageReadError."""


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


def is_decompression_bomb(error: ImageReadError) -> bool:
    """Whether `error` was raised because Pillow took the file for a decompression bomb (too many pixels).

    >>> is_decompression_bomb(ImageReadError("a.png", "empty file"))
    False
    """
    module = sys.modules.get("PIL.Image")  # Pillow never imported: it raised nothing
    return module is not None and isinstance(error.__cause__, module.DecompressionBombError)


def first_line(error: BaseException) -> str:
    """The first line of `error`'s message, or its type's name when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def decode_reason(error: Exception) -> str:
    """The reason for one of :data:`DECODE_ERRORS`: ``truncated (...)`` or ``corrupt or unsupported image data
    (...)``; Pillow reports bad data with any of them, depending on the plugin."""
    message = first_line(error)
    reason = "truncated" if "truncated" in message.lower() else "corrupt or unsupported image data"
    return f"{reason} ({message})"
