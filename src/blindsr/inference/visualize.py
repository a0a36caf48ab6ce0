"""Pictures of an estimated degradation: the blur kernel enlarged, the signed noise map around mid-gray."""

from __future__ import annotations

import numpy as np

__all__ = ["NOISE_GAIN", "kernel_image", "noise_image"]

NOISE_GAIN = 4.0
"""Default gain of :func:`noise_image`: noise of σ = 25/255 spans about ±0.4 around mid-gray."""

# control points of matplotlib's "inferno" colormap (perceptually uniform, black → purple → orange → pale yellow)
_INFERNO = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
    dtype=np.float64,
)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def kernel_image(kernel: np.ndarray, *, size: int = 256, colormap: bool = True) -> np.ndarray:
    """Enlarge a blur kernel into a picture: normalised to its maximum, nearest-neighbour, inferno colours.

    Args:
        kernel: (k, k) non-negative weights (e.g. ``UpscaleResult.kernel``).
        size: side of the picture in pixels (each kernel tap becomes a block of about size/k pixels).
        colormap: inferno colours (True) or gray.

    Returns:
        (size, size, 3) uint8; the largest tap is the brightest colour, 0 is black.

    Raises:
        ValueError: `kernel` is not a 2-D array, or `size` < 1.

    >>> img = kernel_image(np.eye(3) / 3, size=6)
    >>> img.shape, img.dtype, img[0, 0].tolist(), img[0, 5].tolist()
    ((6, 6, 3), dtype('uint8'), [252, 255, 164], [0, 0, 4])
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or 0 in k.shape:
        raise ValueError(f"kernel must be a (k, k) array, got shape {k.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    peak = float(k.max())
    norm = np.clip(k / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(k)
    rows = np.arange(size) * k.shape[0] // size
    cols = np.arange(size) * k.shape[1] // size
    big = norm[rows][:, cols]
    if not colormap:
        return np.repeat(_to_uint8(big)[:, :, None], 3, axis=2)
    pos = big * (len(_INFERNO) - 1)
    low = np.minimum(np.floor(pos).astype(int), len(_INFERNO) - 2)
    frac = (pos - low)[:, :, None]
    colours = _INFERNO[low] * (1 - frac) + _INFERNO[low + 1] * frac
    return np.floor(colours + 0.5).astype(np.uint8)


def noise_image(noise: np.ndarray, *, gain: float = NOISE_GAIN) -> np.ndarray:
    """Show a signed noise map: ``0.5 + gain · n``, clipped to [0, 1], as 8-bit.

    Args:
        noise: (h, w, 3) or (h, w) signed noise in [0, 1] image units (e.g. ``UpscaleResult.noise``).
        gain: contrast; the default :data:`NOISE_GAIN` = 4 maps ±0.125 (±32/255) to black and white.

    Returns:
        (h, w, 3) uint8 (a gray map is replicated).

    >>> noise_image(np.array([[-1.0, 0.0, 0.05]])).tolist()
    [[[0, 0, 0], [128, 128, 128], [179, 179, 179]]]
    """
    n = np.asarray(noise, dtype=np.float64)
    if n.ndim == 2:
        n = n[:, :, None]
    if n.ndim != 3 or n.shape[2] not in (1, 3):
        raise ValueError(f"noise must be an (h, w, 3) or (h, w) array, got shape {n.shape}")
    return np.ascontiguousarray(np.broadcast_to(_to_uint8(0.5 + gain * n), (*n.shape[:2], 3)))
