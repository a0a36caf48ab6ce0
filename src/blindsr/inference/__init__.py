"""Inference: super-resolve images as users have them, tiled, with one degradation estimate per image.

LAYER 3: imports ``zoo``, ``nets``, ``data`` and ``ops``; never ``cli``, ``methods`` or ``engine``.

* :class:`Upscaler` (``upscaler.py``): PIL images, numpy arrays, tensors or ``LoadedImage`` in → the same kind out;
  tiles (fixed or ``"auto"`` from the free memory, halved on out-of-memory), device and precision selection,
  ``outscale``; :meth:`Upscaler.upscale_with_degradation` also returns the estimated kernel and noise map.
* Adapters (``adapters.py``): how each architecture splits into a whole-image degradation estimate and a per-tile
  restoration (:class:`DMSRAdapter`; MRDA plugs in through :data:`ADAPTERS`).
* :func:`kernel_image`, :func:`noise_image` (``visualize.py``): pictures of the estimated degradation.
"""

from __future__ import annotations

from blindsr.inference.adapters import (
    ADAPTERS,
    Degradation,
    DMSRAdapter,
    GlobalChannelAttention,
    InferenceAdapter,
    PlainAdapter,
    TiledImage,
    TileOutput,
    adapter_for,
)
from blindsr.inference.upscaler import (
    CancelCheck,
    Precision,
    UpscaleCancelledError,
    Upscaler,
    UpscaleResult,
    available_memory,
    resolve_device,
)
from blindsr.inference.visualize import NOISE_GAIN, kernel_image, noise_image

__all__ = [
    "ADAPTERS",
    "NOISE_GAIN",
    "CancelCheck",
    "DMSRAdapter",
    "Degradation",
    "GlobalChannelAttention",
    "InferenceAdapter",
    "PlainAdapter",
    "Precision",
    "TileOutput",
    "TiledImage",
    "UpscaleCancelledError",
    "UpscaleResult",
    "Upscaler",
    "adapter_for",
    "available_memory",
    "kernel_image",
    "noise_image",
    "resolve_device",
]
