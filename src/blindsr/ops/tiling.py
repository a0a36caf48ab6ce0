"""Tiles for inference on images too large for one forward pass: plan, cut windows, put the outputs back together.

The LR image is partitioned into **cores**: a grid of ``tile × tile`` squares (the last row and column are
ragged). Each core is processed inside a **window**: the core plus ``pad`` pixels of context on every side. The
network runs on the window; only the core's part of its output is kept.

Blending: **none**. Each output pixel is taken from the one tile whose core contains it. For a network whose output
at a pixel depends only on inputs within a radius ``r`` (every stack of convolutions), a window with ``pad ≥ r``
gives its core exactly the pixels of the whole-image forward, so there is no seam to hide. A feathered ramp would
instead mix two approximations in the overlap, and costs a weight buffer. Networks with global operations (RCAN's
channel attention, a global degradation estimate) are not exact under any tiling; ``pad`` gives them context, and
``blindsr.inference`` shares the global degradation estimate between tiles.

Windows have the same size everywhere, ``min(tile + 2·pad, H) × min(tile + 2·pad, W)``: a window that would cross
the image border is shifted inwards rather than cut, so border tiles get more context on their inner side (never
less than ``pad`` where the image has it) and every forward pass has the same shape. Windows never extend past the
image, so a network's own border handling (zero or reflect padding) applies at the true image border only.

>>> tiles = plan_tiles(70, 90, tile=32, pad=8)
>>> len(tiles), tiles[-1]
(9, Tile(index=8, top=64, left=64, bottom=70, right=90, win_top=22, win_left=42, win_bottom=70, win_right=90))
>>> image = torch.rand(1, 3, 70, 90)
>>> outputs = [window(image, t).repeat_interleave(2, -2).repeat_interleave(2, -1) for t in tiles]
>>> merged = merge_tiles(outputs, tiles, height=70, width=90, scale=2)
>>> bool(torch.equal(merged, image.repeat_interleave(2, -2).repeat_interleave(2, -1)))
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Tile", "balanced_tile", "crop_core", "merge_tiles", "paste_core", "plan_tiles", "window"]


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile of a plan: its core and its window, in LR pixel coordinates (half-open ranges).

    Attributes:
        index: position in the plan (row-major).
        top, left, bottom, right: the core, ``[top, bottom) × [left, right)``; the cores partition the image.
        win_top, win_left, win_bottom, win_right: the window the network sees; it contains the core.
    """

    index: int
    top: int
    left: int
    bottom: int
    right: int
    win_top: int
    win_left: int
    win_bottom: int
    win_right: int

    @property
    def core_shape(self) -> tuple[int, int]:
        """(height, width) of the core."""
        return self.bottom - self.top, self.right - self.left

    @property
    def window_shape(self) -> tuple[int, int]:
        """(height, width) of the window."""
        return self.win_bottom - self.win_top, self.win_right - self.win_left


def _axis(length: int, tile: int, pad: int) -> list[tuple[int, int, int, int]]:
    """(core start, core end, window start, window end) along one axis."""
    size = min(tile + 2 * pad, length)
    spans = []
    for start in range(0, length, tile):
        end = min(start + tile, length)
        # shift the window inside the image instead of cutting it: same size everywhere, context >= pad
        win_start = max(0, min(start - pad, length - size))
        spans.append((start, end, win_start, win_start + size))
    return spans


def plan_tiles(height: int, width: int, *, tile: int | None, pad: int) -> tuple[Tile, ...]:
    """Partition an ``height × width`` LR image into tiles with context windows.

    Args:
        height, width: the LR image size, ≥ 1.
        tile: core side in LR pixels (≥ 1); None (or a tile covering the image) gives one tile, the whole image.
        pad: context added on each side of a core, ≥ 0 (clipped by the image; see the module docstring).

    Returns:
        The tiles in row-major order; their cores partition the image and each window contains its core.

    Raises:
        ValueError: a non-positive size or tile, or a negative pad.

    >>> plan_tiles(10, 12, tile=None, pad=4)
    (Tile(index=0, top=0, left=0, bottom=10, right=12, win_top=0, win_left=0, win_bottom=10, win_right=12),)
    >>> [(t.top, t.bottom, t.win_top, t.win_bottom) for t in plan_tiles(20, 8, tile=8, pad=2)]
    [(0, 8, 0, 12), (8, 16, 6, 18), (16, 20, 8, 20)]
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if tile is not None and tile < 1:
        raise ValueError(f"tile must be a positive integer or None, got {tile}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    rows = _axis(height, tile or height, pad) if tile is not None else [(0, height, 0, height)]
    cols = _axis(width, tile or width, pad) if tile is not None else [(0, width, 0, width)]
    tiles: list[Tile] = []
    for top, bottom, win_top, win_bottom in rows:
        for left, right, win_left, win_right in cols:
            tiles.append(Tile(len(tiles), top, left, bottom, right, win_top, win_left, win_bottom, win_right))
    return tuple(tiles)


def balanced_tile(height: int, width: int, *, max_tile: int, multiple: int = 1) -> int:
    """The smallest tile, a multiple of `multiple` and at most `max_tile`, that needs no more tiles than `max_tile`.

    A tile of ``max_tile`` leaves a thin ragged last row and column, whose windows are mostly context (and cost as
    much as full ones). Spreading the same number of tiles evenly makes every window smaller for the same memory.

    Args:
        height, width: the LR image size, >= 1.
        max_tile: the largest tile allowed (>= 1), e.g. what the memory budget permits.
        multiple: round the tile up to a multiple of this (>= 1); never above `max_tile`.

    Returns:
        The tile side (an image that fits in one tile gets its longer side, rounded up: still one tile).

    Raises:
        ValueError: a non-positive size, `max_tile` or `multiple`.

    >>> balanced_tile(500, 500, max_tile=160, multiple=8)  # 4 x 4 tiles either way; windows of 128 + pad
    128
    >>> balanced_tile(70, 300, max_tile=64, multiple=8)
    64
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max_tile < 1 or multiple < 1:
        raise ValueError(f"max_tile and multiple must be positive, got {max_tile} and {multiple}")
    side = 0
    for length in (height, width):
        count = -(-length // max_tile)  # tiles along this axis with the largest tile
        side = max(side, -(-length // count))
    rounded = -(-side // multiple) * multiple
    return min(max_tile, rounded)


def window(image: Tensor, tile: Tile) -> Tensor:
    """The window of `tile` cut from `image` (..., H, W): a view, on the image's device."""
    return image[..., tile.win_top : tile.win_bottom, tile.win_left : tile.win_right]


def crop_core(output: Tensor, tile: Tile, *, scale: int = 1) -> Tensor:
    """The core's part of a network output on the window.

    Args:
        output: (..., s·h_win, s·w_win), the output on ``window(image, tile)``.
        tile: the tile the window belongs to.
        scale: the output's scale s relative to the LR window (1 for LR-sized maps).

    Returns:
        (..., s·h_core, s·w_core), a view.

    Raises:
        ValueError: `output` does not have the window's size times `scale`.
    """
    h, w = tile.window_shape
    if tuple(output.shape[-2:]) != (h * scale, w * scale):
        raise ValueError(
            f"tile {tile.index}: output is {tuple(output.shape[-2:])}, expected the window {h}x{w} times {scale}"
        )
    y0, x0 = (tile.top - tile.win_top) * scale, (tile.left - tile.win_left) * scale
    ch, cw = tile.core_shape
    return output[..., y0 : y0 + ch * scale, x0 : x0 + cw * scale]


def paste_core(canvas: Tensor, output: Tensor, tile: Tile, *, scale: int = 1) -> None:
    """Write the core's part of a window output into `canvas` (..., s·H, s·W), in place (any devices).

    Args:
        canvas: the whole-image output being assembled; the core is copied (and cast) to its device and dtype.
        output: the network output on the window, (..., s·h_win, s·w_win).
        tile: the tile the window belongs to.
        scale: s.
    """
    core = crop_core(output, tile, scale=scale)
    canvas[..., tile.top * scale : tile.bottom * scale, tile.left * scale : tile.right * scale] = core.to(
        device=canvas.device, dtype=canvas.dtype
    )


def merge_tiles(
    outputs: Iterable[Tensor],
    tiles: Sequence[Tile],
    *,
    height: int,
    width: int,
    scale: int = 1,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Assemble window outputs into the whole-image output (each pixel from the tile whose core contains it).

    Args:
        outputs: one (..., s·h_win, s·w_win) output per tile, in the order of `tiles` (may be a generator, so
            only one output needs to exist at a time).
        tiles: the plan the outputs belong to.
        height, width: the LR image size.
        scale: s.
        device, dtype: of the assembled output (CPU by default: the whole-image output never needs to fit on a
            GPU).

    Returns:
        (..., s·height, s·width).

    Raises:
        ValueError: a tile count or an output size does not match the plan.
    """
    canvas: Tensor | None = None
    count = 0
    remaining = iter(outputs)
    for tile, output in zip(tiles, remaining, strict=False):
        if canvas is None:
            canvas = torch.empty(*output.shape[:-2], height * scale, width * scale, device=device, dtype=dtype)
        paste_core(canvas, output, tile, scale=scale)
        count += 1
    count += sum(1 for _ in remaining)
    if canvas is None or count != len(tiles):
        raise ValueError(f"got {count} outputs for {len(tiles)} tiles")
    return canvas
