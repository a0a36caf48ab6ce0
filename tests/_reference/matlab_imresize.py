"""An independent NumPy port of MATLAB's ``imresize`` (bicubic), written as a test oracle.

It follows MATLAB's algorithm literally (scalar loops over output pixels, a dense resampling matrix per axis,
``[1:n, n:-1:1]`` border folding), shares no code with ``blindsr.ops.resize``, and is slow on purpose: use small
images. ``border="replicate"`` clamps indices like the DASR/MRDA reference code.
"""

from __future__ import annotations

import math

import numpy as np


def cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def resize_matrix(in_len: int, out_len: int, scale: float, border: str = "symmetric") -> np.ndarray:
    """(out_len, in_len) matrix A with out = A @ in, built pixel by pixel as MATLAB's ``contributions``."""
    antialias = scale < 1
    width = 4.0 / scale if antialias else 4.0
    taps = math.ceil(width) + 2
    mirror = list(range(in_len)) + list(range(in_len - 1, -1, -1))  # MATLAB aux = [1:n, n:-1:1] (0-based)
    a = np.zeros((out_len, in_len))
    for i in range(1, out_len + 1):  # 1-based, as in MATLAB
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        idx = [left + p for p in range(taps)]
        w = [scale * cubic(scale * (u - j)) for j in idx] if antialias else [cubic(u - j) for j in idx]
        total = sum(w)
        for j, wj in zip(idx, w, strict=False):
            k = mirror[(j - 1) % len(mirror)] if border == "symmetric" else min(max(j - 1, 0), in_len - 1)
            a[i - 1, k] += wj / total
    return a


def imresize(
    img: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None, border: str = "symmetric"
) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` for an (H, W) or (H, W, C) float64 array."""
    h, w = img.shape[:2]
    if size is None:
        assert scale is not None
        oh, ow = math.ceil(round(h * scale, 9)), math.ceil(round(w * scale, 9))
        sh = sw = scale
    else:
        oh, ow = size
        sh, sw = oh / h, ow / w
    a_h = resize_matrix(h, oh, sh, border)
    a_w = resize_matrix(w, ow, sw, border)
    x = img.astype(np.float64)
    if x.ndim == 2:
        return a_h @ x @ a_w.T
    rows = np.einsum("ij,jkc->ikc", a_h, x)  # resize rows, then columns (two separable products)
    return np.einsum("ikc,lk->ilc", rows, a_w)
