"""Dynamic (per-pixel) filtering: one k×k filter per output pixel, shared by all channels.

Used by DMSR's meta-deblur module (MBM, DMSR paper Sec. 3.1 and Table B.7 row 0-4 "DynamicConv"), where a
meta-layer predicts one 15×15 filter per HR pixel and the same filter is applied to R, G and B.

Definition (correlation, row-major tap index, ``r = k // 2``)::

    z[b, c, p] = Σ_{i,j ∈ [-r, r]} kernels[b, (i + r)·k + (j + r), p] · x_pad[b, c, p + (i, j)]

``dynamic_filter`` is the implementation; it pads with ``pad_for_filter`` and sums over the k² shifts of the padded
input, in one of two ways (``impl``) that agree to rounding (about 1e-16 in float64):

- ``"autograd"`` (default; training and inference) accumulates in place inside a custom autograd function.
  Memory: the forward keeps only the padded input (B·C·(H+2r)·(W+2r)) and the kernels it was given, and allocates
  the output (B·C·H·W). The backward allocates the kernel gradient (B·k²·H·W, the size of the kernels themselves),
  the padded input gradient and one B·C·H·W temporary at a time. Nothing of size B·C·k²·H·W is ever materialised.
- ``"traceable"`` (ONNX export, :mod:`blindsr.zoo.onnx`) writes the same sum with plain slices, products and
  additions, and checks no shapes: both PyTorch ONNX exporters fail on the custom autograd function and on Python
  arithmetic on sizes (the TorchScript tracer turns sizes into tensors; the torch.export-based exporter cannot
  translate a remainder by a symbolic size). The filter size is therefore passed as a Python int, and the padding
  indices are computed with tensor ops only. The graph has about 4k² nodes; memory stays O(C·H·W) per step.

``dynamic_filter_unfold`` is the naive reference for tests: ``F.unfold`` materialises B·C·k²·H·W values (3.2 GB in
fp32 for B = 32, C = 3, k = 15 and 192×192 outputs) and autograd keeps them for the backward.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from blindsr.ops.checks import check_image_batch

__all__ = ["FilterImpl", "Padding", "dynamic_filter", "dynamic_filter_unfold", "pad_for_filter"]

Padding = Literal["reflect", "replicate", "zeros"]
FilterImpl = Literal["autograd", "traceable"]
"""How ``dynamic_filter`` computes the sum: see the module text."""


def _border_index(n: int, r: int, padding: Padding, device: torch.device) -> Tensor:
    """Source row (or column) of each of the ``n + 2r`` padded positions, computed with tensor ops only.

    ``n`` may be a traced or symbolic size (ONNX export): the largest valid index ``n − 1`` is taken from
    ``arange(n)``, so that no exporter sees Python arithmetic on it. Reflect mirrors without repeating the edge, like
    ``F.pad(mode="reflect")``, but periodically (period ``2(n − 1)``, or 1 when n = 1), so that any r works for any
    n (``F.pad`` requires r < n, which a 15×15 filter on a tiny image breaks). Replicate repeats the edge.
    """
    last = torch.arange(n, device=device)[-1:]
    idx = torch.arange(-r, n + r, device=device)
    if padding == "replicate":
        return torch.minimum(idx.clamp_min(0), last)
    period = (2 * last).clamp_min(1)
    idx = torch.remainder(idx, period)
    return torch.where(idx <= last, idx, period - idx)


def pad_for_filter(x: Tensor, r: int, *, padding: Padding = "reflect") -> Tensor:
    """Pad the last two dimensions of `x` by `r` on every side (differentiable; traceable for ONNX export).

    Args:
        x: (B, C, H, W) tensor.
        r: padding width, >= 0.
        padding: "reflect" (mirror, edge not repeated; also valid when ``r >= H`` or ``r >= W``, by repeated
            mirroring), "replicate" (edge repeated) or "zeros".

    Returns:
        (B, C, H + 2r, W + 2r).
    """
    if r == 0:
        return x
    if padding == "zeros":
        return F.pad(x, (r, r, r, r))
    if padding not in ("reflect", "replicate"):
        raise ValueError(f"padding must be 'reflect', 'replicate' or 'zeros', got {padding!r}")
    rows = _border_index(x.shape[-2], r, padding, x.device)
    cols = _border_index(x.shape[-1], r, padding, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _filter_size(x: Tensor, kernels: Tensor) -> int:
    check_image_batch(x, name="x")
    check_image_batch(kernels, name="kernels")
    k = round(kernels.shape[1] ** 0.5)
    if k * k != kernels.shape[1] or k % 2 == 0:
        raise ValueError(f"kernels must have k*k channels with k odd, got shape {tuple(kernels.shape)}")
    if kernels.shape[0] != x.shape[0] or kernels.shape[2:] != x.shape[2:]:
        raise ValueError(
            f"kernels (B, k*k, H, W) must match x (B, C, H, W) in B, H, W; got {tuple(kernels.shape)} "
            f"and {tuple(x.shape)}"
        )
    return k


def _row_blocks(height: int, chunk_rows: int | None) -> list[tuple[int, int]]:
    step = height if chunk_rows is None else chunk_rows
    return [(a, min(a + step, height)) for a in range(0, height, step)]


class _ShiftFilter(torch.autograd.Function):
    # Forward and backward are both written with differentiable torch ops, so double backward also works
    # (it is slow: autograd then records every per-tap operation).

    @staticmethod
    def forward(ctx: Any, xp: Tensor, kernels: Tensor, k: int, chunk_rows: int | None) -> Tensor:
        B, C, H, W = xp.shape[0], xp.shape[1], kernels.shape[2], kernels.shape[3]
        out = xp.new_zeros(B, C, H, W)
        for a, b in _row_blocks(H, chunk_rows):
            out_rows = out[:, :, a:b]
            for t in range(k * k):
                i, j = divmod(t, k)
                out_rows.addcmul_(xp[:, :, a + i : b + i, j : j + W], kernels[:, t : t + 1, a:b])
        ctx.save_for_backward(xp, kernels)
        ctx.k, ctx.chunk_rows = k, chunk_rows
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        xp, kernels = ctx.saved_tensors
        k, chunk_rows = ctx.k, ctx.chunk_rows
        H, W = kernels.shape[2], kernels.shape[3]
        need_x, need_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_xp = torch.zeros_like(xp) if need_x else None
        grad_k = torch.empty_like(kernels) if need_k else None
        for a, b in _row_blocks(H, chunk_rows):
            g = grad_out[:, :, a:b]
            for t in range(k * k):
                i, j = divmod(t, k)
                if grad_k is not None:
                    grad_k[:, t, a:b] = (g * xp[:, :, a + i : b + i, j : j + W]).sum(1)
                if grad_xp is not None:
                    grad_xp[:, :, a + i : b + i, j : j + W].addcmul_(g, kernels[:, t : t + 1, a:b])
        return grad_xp, grad_k, None, None


def _shift_sum(xp: Tensor, kernels: Tensor, k: int, height: int, width: int) -> Tensor:
    # the "traceable" sum: out-of-place, so that an exporter records plain slices, products and additions
    out = xp[:, :, 0:height, 0:width] * kernels[:, 0:1]
    for t in range(1, k * k):
        i, j = divmod(t, k)
        out = out + xp[:, :, i : i + height, j : j + width] * kernels[:, t : t + 1]
    return out


def dynamic_filter(
    x: Tensor,
    kernels: Tensor,
    *,
    padding: Padding = "reflect",
    chunk_rows: int | None = None,
    impl: FilterImpl = "autograd",
    kernel_size: int | None = None,
) -> Tensor:
    """Filter every pixel of `x` with its own k×k filter, shared across channels.

    Sums ``kernels[:, t] · shift_t(x_pad)`` over the k² taps t; see the module docstring for the formula, the two
    implementations and the memory they need. Differentiable in `x` and `kernels`.

    Args:
        x: (B, C, H, W) float.
        kernels: (B, k*k, H, W), k odd; tap ``(i + r)·k + (j + r)`` weights the neighbour at offset (i, j)
            (row i, column j; correlation, not convolution).
        padding: how `x` is extended by ``r = k // 2`` beyond its border; see ``pad_for_filter``.
        chunk_rows: ``"autograd"`` only: process the output in blocks of this many rows (all taps per block), which
            keeps the working set in cache for large images; None processes the whole image at once. Same result.
        impl: ``"autograd"`` (memory-efficient custom backward; shapes checked) or ``"traceable"`` (plain ops for
            the ONNX exporters; no shape checks).
        kernel_size: k. Required by ``"traceable"``, which must not infer it from a (traced) shape; checked against
            `kernels` by ``"autograd"`` when given.

    Returns:
        (B, C, H, W): in the common dtype of `x` and `kernels` (``"autograd"``); by type promotion
        (``"traceable"``).

    Raises:
        ValueError: bad shapes (``"autograd"``), a bad `chunk_rows`, `padding` or `impl`, or ``"traceable"``
            without `kernel_size`.
    """
    if impl == "traceable":
        if kernel_size is None:
            raise ValueError("dynamic_filter(impl='traceable') needs kernel_size")
        xp = pad_for_filter(x, kernel_size // 2, padding=padding)
        return _shift_sum(xp, kernels, kernel_size, x.shape[-2], x.shape[-1])
    if impl != "autograd":
        raise ValueError(f"impl must be 'autograd' or 'traceable', got {impl!r}")
    k = _filter_size(x, kernels)
    if kernel_size is not None and kernel_size != k:
        raise ValueError(f"kernel_size is {kernel_size}, but kernels has shape {tuple(kernels.shape)}")
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer or None, got {chunk_rows}")
    dtype = torch.result_type(x, kernels)
    xp = pad_for_filter(x.to(dtype), k // 2, padding=padding)
    out: Tensor = _ShiftFilter.apply(xp, kernels.to(dtype), k, chunk_rows)
    return out


def dynamic_filter_unfold(x: Tensor, kernels: Tensor, *, padding: Padding = "reflect") -> Tensor:
    """Reference implementation of ``dynamic_filter`` via ``F.unfold``; materialises B·C·k²·H·W values.

    Args and returns as ``dynamic_filter``.
    """
    k = _filter_size(x, kernels)
    B, C, H, W = x.shape
    dtype = torch.result_type(x, kernels)
    xp = pad_for_filter(x.to(dtype), k // 2, padding=padding)
    cols = F.unfold(xp, k).view(B, C, k * k, H, W)  # F.unfold orders taps row-major within each channel
    return (cols * kernels.to(dtype).unsqueeze(1)).sum(2)
