"""MATLAB-bicubic integer upscaling written for the ONNX exporters (``bicubic_upscale_traceable``).

``blindsr.ops.resize.bicubic_upscale`` builds each axis's resampling matrix from the image size (cached per size),
which an exporter records as a constant of the traced size. Upscaling by an integer factor s is periodic, though:
output pixel ``s·m + r`` of an axis is a fixed 5-tap combination of input pixels ``m − 2 … m + 2`` (MATLAB's cubic
kernel at phase r), whatever the length. This module applies those s phase filters to the border-extended input with
shifted slices and interleaves the phases, so the graph works for every input size. The taps are read from
``resize.contributions`` (the same float64 table as the matrix form); results agree with ``bicubic_upscale`` to
float32 rounding (about 1e-7), not bitwise, so eager code keeps using ``bicubic_upscale``.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from blindsr.ops.resize import Border, contributions

__all__ = ["bicubic_upscale_traceable"]

_REACH = 2  # input pixels on each side that MATLAB's cubic kernel reaches when upscaling


@lru_cache(maxsize=32)
def _phase_taps(factor: int, border: Border) -> tuple[tuple[float, ...], ...]:
    """``taps[r][d + 2]``: the weight of input pixel ``m + d`` in output pixel ``factor·m + r`` (interior rows)."""
    m = 2 * _REACH + 1  # an interior input pixel: no border folding in its rows of the table
    weights, indices = contributions(2 * m + 1, (2 * m + 1) * factor, float(factor), border=border)
    taps = []
    for r in range(factor):
        row = [0.0] * (2 * _REACH + 1)
        for w, i in zip(weights[factor * m + r].tolist(), indices[factor * m + r].tolist(), strict=True):
            if w != 0.0:
                row[i - m + _REACH] += w
        taps.append(tuple(row))
    return tuple(taps)


def _border_index(n: int, border: Border, device: torch.device) -> torch.Tensor:
    # source index of each of the n + 4 border-extended positions, from tensor ops only (n may be a traced size)
    last = torch.arange(n, device=device)[-1:]
    idx = torch.arange(-_REACH, n + _REACH, device=device)
    if border == "replicate":
        return torch.minimum(idx.clamp_min(0), last)
    period = 2 * (last + 1)  # MATLAB "symmetric": mirrored with the edge pixel repeated
    idx = torch.remainder(idx, period)
    return torch.where(idx <= last, idx, period - 1 - idx)


def _upscale_axis(x: torch.Tensor, dim: int, taps: tuple[tuple[float, ...], ...], border: Border) -> torch.Tensor:
    n = x.shape[dim]
    xp = x.index_select(dim, _border_index(n, border, x.device))
    phases = []
    for row in taps:
        out: torch.Tensor | None = None
        for d, w in enumerate(row):
            if w == 0.0:
                continue
            term = xp.narrow(dim, d, n) * w
            out = term if out is None else out + term
        assert out is not None
        phases.append(out)
    stacked = torch.stack(phases, dim=dim + 1 if dim >= 0 else dim)  # (..., n, s) along `dim`
    axis = stacked.ndim + dim - 1 if dim < 0 else dim
    return stacked.flatten(axis, axis + 1)


def bicubic_upscale_traceable(x: torch.Tensor, factor: int, *, border: Border = "symmetric") -> torch.Tensor:
    """``bicubic_upscale(x, factor, border=border)`` with ops that the ONNX exporters follow for any input size.

    No shape checks (its callers run it while an exporter traces them, when sizes are traced values): `x` is
    (B, C, H, W) float, `factor` a positive Python int.

    >>> from blindsr.ops.resize import bicubic_upscale
    >>> x = torch.rand(2, 3, 5, 7)
    >>> bool((bicubic_upscale_traceable(x, 3) - bicubic_upscale(x, 3)).abs().max() < 1e-6)
    True
    """
    if factor == 1:
        return x
    taps = _phase_taps(factor, border)
    return _upscale_axis(_upscale_axis(x, -2, taps, border), -1, taps, border)
