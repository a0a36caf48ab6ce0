"""Tile planning and merging (blindsr.ops.tiling): cores partition the image, windows hold their context, and an
identity "upscaler" round-trips exactly."""

from __future__ import annotations

import pytest
import torch

from blindsr.ops.tiling import balanced_tile, crop_core, merge_tiles, paste_core, plan_tiles, window


@pytest.mark.parametrize(("height", "width", "tile", "pad"), [(70, 90, 32, 8), (70, 90, 48, 16), (9, 50, 8, 3)])
def test_cores_partition_the_image_and_windows_hold_their_context(height: int, width: int, tile: int, pad: int) -> None:
    tiles = plan_tiles(height, width, tile=tile, pad=pad)
    covered = torch.zeros(height, width, dtype=torch.int64)
    window_shapes = set()
    for t in tiles:
        covered[t.top : t.bottom, t.left : t.right] += 1
        assert t.core_shape[0] <= tile and t.core_shape[1] <= tile
        # the window contains the core, with pad pixels of context wherever the image has them
        assert t.win_top <= t.top and t.win_left <= t.left and t.win_bottom >= t.bottom and t.win_right >= t.right
        assert t.top - t.win_top >= min(pad, t.top) and t.left - t.win_left >= min(pad, t.left)
        assert t.win_bottom - t.bottom >= min(pad, height - t.bottom)
        assert t.win_right - t.right >= min(pad, width - t.right)
        assert t.win_top >= 0 and t.win_bottom <= height and t.win_left >= 0 and t.win_right <= width
        window_shapes.add(t.window_shape)
    assert bool((covered == 1).all())
    assert [t.index for t in tiles] == list(range(len(tiles)))
    assert window_shapes == {(min(tile + 2 * pad, height), min(tile + 2 * pad, width))}  # one shape for all


def test_ragged_edge_tiles() -> None:
    tiles = plan_tiles(70, 90, tile=32, pad=8)
    assert len(tiles) == 9
    assert {t.core_shape for t in tiles} == {(32, 32), (32, 26), (6, 32), (6, 26)}


def test_untiled_plan_is_one_tile_covering_the_image() -> None:
    for tile in (None, 100):
        (only,) = plan_tiles(20, 30, tile=tile, pad=5)
        assert (only.top, only.left, only.bottom, only.right) == (0, 0, 20, 30)
        assert only.window_shape == (20, 30)


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize(("tile", "pad"), [(32, 8), (48, 0), (16, 16)])
def test_split_and_merge_round_trip_exactly_for_an_identity_upscaler(scale: int, tile: int, pad: int) -> None:
    image = torch.rand(2, 3, 70, 90)
    tiles = plan_tiles(70, 90, tile=tile, pad=pad)

    def nearest(x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(scale, -2).repeat_interleave(scale, -1)

    merged = merge_tiles((nearest(window(image, t)) for t in tiles), tiles, height=70, width=90, scale=scale)
    assert torch.equal(merged, nearest(image))


def test_paste_casts_to_the_canvas_and_crop_checks_sizes() -> None:
    (t,) = plan_tiles(8, 8, tile=None, pad=0)
    canvas = torch.zeros(1, 1, 16, 16)
    paste_core(canvas, torch.ones(1, 1, 16, 16, dtype=torch.bfloat16), t, scale=2)
    assert canvas.dtype == torch.float32 and bool((canvas == 1).all())
    with pytest.raises(ValueError, match="expected the window 8x8 times 2"):
        crop_core(torch.zeros(1, 1, 15, 16), t, scale=2)


def test_merge_rejects_a_wrong_number_of_outputs() -> None:
    tiles = plan_tiles(20, 20, tile=10, pad=2)
    image = torch.rand(1, 1, 20, 20)
    with pytest.raises(ValueError, match="outputs for 4 tiles"):
        merge_tiles([window(image, t) for t in tiles[:3]], tiles, height=20, width=20)
    with pytest.raises(ValueError, match="outputs for 4 tiles"):
        merge_tiles([window(image, t) for t in (*tiles, tiles[0])], tiles, height=20, width=20)


def test_plan_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_tiles(0, 5, tile=4, pad=0)
    with pytest.raises(ValueError, match="tile"):
        plan_tiles(5, 5, tile=0, pad=0)
    with pytest.raises(ValueError, match="pad"):
        plan_tiles(5, 5, tile=4, pad=-1)


@pytest.mark.parametrize(("height", "width"), [(500, 500), (70, 300), (161, 160), (1000, 37), (8, 8), (513, 129)])
@pytest.mark.parametrize("max_tile", [16, 24, 128, 160])
def test_balanced_tiles_need_no_more_tiles_and_are_no_larger(height: int, width: int, max_tile: int) -> None:
    tile = balanced_tile(height, width, max_tile=max_tile, multiple=8)
    assert 1 <= tile <= max_tile
    assert len(plan_tiles(height, width, tile=tile, pad=16)) == len(plan_tiles(height, width, tile=max_tile, pad=16))
    if tile < max_tile:
        assert tile % 8 == 0


def test_balanced_tiles_spread_the_ragged_edge() -> None:
    assert balanced_tile(500, 500, max_tile=160, multiple=8) == 128  # 4 x 4 tiles of 128 instead of 160 + 20
    assert balanced_tile(200, 200, max_tile=160, multiple=8) == 104
    assert balanced_tile(100, 60, max_tile=160, multiple=8) == 104  # still one tile
    assert balanced_tile(64, 64, max_tile=24) == 22
    with pytest.raises(ValueError, match="positive"):
        balanced_tile(0, 5, max_tile=4)
    with pytest.raises(ValueError, match="positive"):
        balanced_tile(5, 5, max_tile=0)
