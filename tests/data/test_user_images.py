"""Images as users have them (blindsr.data.user_images.read_image_any / write_image_like): modes, 16 bits, EXIF, bad
files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from blindsr.data.image_errors import ImageReadError
from blindsr.data.user_images import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    format_can_hold,
    loaded_from_array,
    loaded_from_pil,
    loaded_to_array,
    loaded_to_pil,
    read_image_any,
    write_image_like,
)

RNG = np.random.default_rng(0)


def _u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def _u16(*shape: int) -> np.ndarray:
    pixels = RNG.integers(0, 65536, size=shape, dtype=np.uint16)
    pixels[3:6] = 12345  # flat rows
    return pixels


# ------------------------------------------------------------------------------------------------ modes


def test_gray_is_read_as_gray_and_written_back_as_l(tmp_path: Path) -> None:
    pixels = _u8(9, 11)
    Image.fromarray(pixels).save(tmp_path / "g.png")
    img = read_image_any(tmp_path / "g.png")
    assert (img.mode, img.bit_depth, img.alpha, img.format) == ("gray", 8, None, "PNG")
    assert torch.equal(img.rgb[0], img.rgb[2]) and torch.equal(img.rgb[0], torch.from_numpy(pixels).float() / 255)
    write_image_like(tmp_path / "out.png", img)
    back = Image.open(tmp_path / "out.png")
    assert back.mode == "L" and np.array_equal(np.array(back), pixels)


@pytest.mark.parametrize(("mode", "channels", "expected"), [("RGBA", 4, "rgba"), ("LA", 2, "gray_alpha")])
def test_alpha_is_kept(tmp_path: Path, mode: str, channels: int, expected: str) -> None:
    pixels = _u8(7, 8, channels)
    Image.fromarray(pixels, mode=mode).save(tmp_path / "a.png")
    img = read_image_any(tmp_path / "a.png")
    assert img.mode == expected and img.alpha is not None
    assert torch.equal(img.alpha[0], torch.from_numpy(pixels[:, :, -1]).float() / 255)
    write_image_like(tmp_path / "out.png", img)
    back = Image.open(tmp_path / "out.png")
    assert back.mode == mode and np.array_equal(np.array(back), pixels)


def test_palette_becomes_rgb_or_rgba(tmp_path: Path) -> None:
    rgb = Image.fromarray(_u8(6, 6, 3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    rgb.save(tmp_path / "p.png")
    assert read_image_any(tmp_path / "p.png").mode == "rgb"
    rgb.save(tmp_path / "pt.png", transparency=0)
    img = read_image_any(tmp_path / "pt.png")
    assert img.mode == "rgba" and img.alpha is not None and float(img.alpha.min()) == 0.0


def test_16bit_gray_png_round_trips_exactly(tmp_path: Path) -> None:
    pixels = _u16(10, 13)
    Image.fromarray(pixels.astype("<u2")).save(tmp_path / "g16.png")
    img = read_image_any(tmp_path / "g16.png")
    assert (img.mode, img.bit_depth) == ("gray", 16)
    write_image_like(tmp_path / "out.png", img)
    back = Image.open(tmp_path / "out.png")
    assert back.mode.startswith("I") and np.array_equal(np.array(back), pixels)


@pytest.mark.parametrize(("channels", "mode"), [(2, "gray_alpha"), (3, "rgb"), (4, "rgba")])
def test_16bit_colour_png_round_trips_exactly(tmp_path: Path, channels: int, mode: str) -> None:
    pixels = _u16(12, 17, channels)
    write_image_like(tmp_path / "c16.png", loaded_from_array(pixels))
    # an independent decoder (Pillow, which keeps the high byte only) agrees with what was encoded
    with Image.open(tmp_path / "c16.png") as pil:
        decoded = np.array(pil)
    if channels == 2:  # Pillow opens 16-bit gray+alpha as RGBA
        decoded = decoded[:, :, [0, 3]]
    assert np.array_equal(decoded, (pixels >> 8).astype(np.uint8))
    img = read_image_any(tmp_path / "c16.png")
    assert (img.mode, img.bit_depth) == (mode, 16)
    assert np.array_equal(loaded_to_array(img), pixels)


def test_exif_orientation_is_applied_and_removed(tmp_path: Path) -> None:
    pixels = _u8(10, 20, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "blindsr-test"  # Make: must survive
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    img = read_image_any(tmp_path / "r.jpg")
    with Image.open(tmp_path / "r.jpg") as pil:
        expected = np.array(ImageOps.exif_transpose(pil))
    assert (img.height, img.width) == (20, 10)
    assert np.array_equal(loaded_to_array(img), expected)
    write_image_like(tmp_path / "out.jpg", img)
    with Image.open(tmp_path / "out.jpg") as out:
        kept = out.getexif()
    assert 0x0112 not in kept and kept[0x010F] == "blindsr-test"


def test_exif_orientation_of_a_16bit_png(tmp_path: Path) -> None:
    pixels = _u16(6, 9, 3)
    exif = Image.Exif()
    exif[0x0112] = 8
    write_image_like(tmp_path / "r16.png", dataclasses.replace(loaded_from_array(pixels), exif=exif.tobytes()))
    img = read_image_any(tmp_path / "r16.png")
    assert np.array_equal(loaded_to_array(img), np.rot90(pixels))
    assert img.exif is None  # only the orientation was there


def test_icc_profile_is_kept(tmp_path: Path) -> None:
    icc = b"not a real profile, but bytes to keep"
    Image.fromarray(_u8(5, 5, 3)).save(tmp_path / "c.png", icc_profile=icc)
    img = read_image_any(tmp_path / "c.png")
    assert img.icc_profile == icc
    for suffix in (".png", ".jpg", ".webp", ".tif"):
        write_image_like(tmp_path / f"out{suffix}", img)
        with Image.open(tmp_path / f"out{suffix}") as out:
            assert out.info.get("icc_profile") == icc, suffix
    write_image_like(tmp_path / "out16.png", LoadedImage(**{**img.__dict__, "bit_depth": 16}))
    assert read_image_any(tmp_path / "out16.png").icc_profile == icc


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tif"])
def test_every_format_in_and_out(tmp_path: Path, suffix: str) -> None:
    ramp = np.linspace(0, 200, 16 * 18).reshape(16, 18, 1)
    pixels = np.concatenate([ramp, ramp[::-1], 255 - ramp], axis=2).astype(np.uint8)  # smooth: lossy codecs do well
    img = loaded_from_array(pixels)
    write_image_like(tmp_path / f"a{suffix}", img)
    back = read_image_any(tmp_path / f"a{suffix}")
    assert back.mode == "rgb" and (back.height, back.width) == (16, 18)
    tolerance = 0 if suffix in (".png", ".bmp", ".tif") else 20
    assert int(np.abs(loaded_to_array(back).astype(int) - pixels).max()) <= tolerance


def test_formats_that_cannot_hold_the_kind_get_the_nearest(tmp_path: Path) -> None:
    rgba = loaded_from_array(_u8(6, 7, 4))
    write_image_like(tmp_path / "a.jpg", rgba)
    assert Image.open(tmp_path / "a.jpg").mode == "RGB"
    gray16 = loaded_from_array(_u16(6, 7))
    write_image_like(tmp_path / "g.jpg", gray16)
    assert Image.open(tmp_path / "g.jpg").mode == "L"
    write_image_like(tmp_path / "g.webp", loaded_from_array(_u8(6, 7)))
    assert Image.open(tmp_path / "g.webp").mode == "RGB"
    assert format_can_hold(".png", mode="rgba", bit_depth=16)
    assert format_can_hold(".tif", mode="gray", bit_depth=16)
    assert not format_can_hold(".tif", mode="rgb", bit_depth=16)
    assert not format_can_hold(".bmp", mode="rgba", bit_depth=8)
    assert not format_can_hold(".webp", mode="gray", bit_depth=8)
    assert not format_can_hold(".gif", mode="rgb", bit_depth=8)


# ------------------------------------------------------------------------------------------------ bad files


def test_bad_files_are_one_line_image_read_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image")
    Image.fromarray(_u8(40, 40, 3)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    write_image_like(tmp_path / "full16.png", loaded_from_array(_u16(40, 40, 3)))
    data16 = (tmp_path / "full16.png").read_bytes()
    (tmp_path / "cut16.png").write_bytes(data16[: len(data16) // 2])
    broken = bytearray(data16)
    broken[100] ^= 0xFF  # inside IDAT: CRC mismatch
    (tmp_path / "crc16.png").write_bytes(bytes(broken))
    cases = {
        "empty.png": "empty file",
        "junk.jpg": "not an image",
        "cut.png": "truncated",
        "cut16.png": "truncated",
        "crc16.png": "CRC mismatch",
    }
    for name, reason in cases.items():
        with pytest.raises(ImageReadError, match=reason) as info:
            read_image_any(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value)
    with pytest.raises(FileNotFoundError):
        read_image_any(tmp_path / "missing.png")


def test_pixel_limit_and_minimum_side(tmp_path: Path) -> None:
    Image.fromarray(_u8(30, 40, 3)).save(tmp_path / "a.png")
    with pytest.raises(ImageReadError, match=r"too large \(40x30 = 1,200 pixels > limit of 1,000\)"):
        read_image_any(tmp_path / "a.png", max_pixels=1000)
    with pytest.raises(ImageReadError, match="too small"):
        read_image_any(tmp_path / "a.png", min_side=31)
    assert read_image_any(tmp_path / "a.png", min_side=30).height == 30
    assert DEFAULT_MAX_PIXELS == 8192 * 8192


# ------------------------------------------------------------------------------------------------ in memory


@pytest.mark.parametrize(
    ("array", "mode", "bits"),
    [
        (_u8(5, 6), "gray", 8),
        (_u8(5, 6, 2), "gray_alpha", 8),
        (_u16(5, 6, 3), "rgb", 16),
        (RNG.random((5, 6, 4)).astype(np.float32), "rgba", 32),
    ],
)
def test_arrays_round_trip(array: np.ndarray, mode: str, bits: int) -> None:
    img = loaded_from_array(array)
    assert (img.mode, img.bit_depth) == (mode, bits)
    back = loaded_to_array(img)
    assert back.dtype == array.dtype and back.shape == array.shape
    if bits == 32:
        assert np.allclose(back, array, atol=1e-6)
    else:
        assert np.array_equal(back, array)


def test_arrays_of_other_kinds_are_rejected() -> None:
    with pytest.raises(TypeError, match="uint8, uint16 or floating"):
        loaded_from_array(np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="C in 1..4"):
        loaded_from_array(np.zeros((4, 4, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        loaded_from_array(np.full((4, 4), np.nan, dtype=np.float32))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16"])
def test_pil_images_round_trip_in_their_mode(mode: str) -> None:
    pil = Image.new(mode, (5, 4))
    pil.putpixel((1, 2), 200 if mode in ("L", "I;16") else (200,) * len(mode))
    back = loaded_to_pil(loaded_from_pil(pil))
    assert back.mode == mode and np.array_equal(np.array(back), np.array(pil))


def test_pil_input_keeps_its_orientation_tag() -> None:
    pil = Image.new("RGB", (4, 3))
    exif = Image.Exif()
    exif[0x0112] = 6
    pil.info["exif"] = exif.tobytes()
    loaded = loaded_from_pil(pil)
    assert (loaded.height, loaded.width) == (3, 4)  # pixels as given
    assert loaded_to_pil(loaded).info["exif"] == exif.tobytes()
