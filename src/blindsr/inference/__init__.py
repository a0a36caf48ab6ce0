"""Inference: super-resolve images as users have them, tiled, with one degradation estimate per image.

LAYER 4: imports ``zoo``, ``archs``, ``data`` and ``ops``; never ``cli``, ``methods`` or ``engine``.

* :class:`Upscaler` (``upscaler.py``): PIL images, numpy arrays, tensors or ``LoadedImage`` in → the same kind out;
  tiles (fixed, or ``"auto"``: bounded on the CPU, from the free memory on a GPU, halved on out-of-memory), device
  and precision selection, ``outscale``, a memory estimate checked against ``max_memory`` before any allocation
  (:class:`MemoryLimitError`), a ``cancel`` hook; :meth:`Upscaler.upscale_with_degradation` also returns the
  estimated kernel and noise map.
* The adapters, how each architecture splits into a whole-image degradation estimate and a per-tile restoration,
  are part of its descriptor in :mod:`blindsr.archs` (``DMSRAdapter`` in ``archs/dmsr.py``, ``MRDAAdapter`` in
  ``archs/mrda.py``); the Upscaler asks :func:`blindsr.archs.adapter_for`.
* :func:`kernel_image`, :func:`noise_image` (``visualize.py``): pictures of the estimated degradation.
"""

from __future__ import annotations

from blindsr.inference.upscaler import (
    CancelCheck,
    MemoryEstimate,
    MemoryLimitError,
    Precision,
    ProgressCallback,
    UpscaleCancelledError,
    Upscaler,
    UpscaleResult,
    available_memory,
    default_memory_limit,
    format_bytes,
    parse_memory_size,
    resolve_device,
)
from blindsr.inference.visualize import NOISE_GAIN, kernel_image, noise_image

__all__ = [
    "NOISE_GAIN",
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
    "kernel_image",
    "noise_image",
    "parse_memory_size",
    "resolve_device",
]
