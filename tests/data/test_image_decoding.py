"""Decoding hardening of the image readers: 16-bit colour PNG (blindsr.data.png16, through pypng), its bounds and
errors; float and 32-bit integer TIFFs.

Every malformed file here is built by the test itself, a few hundred bytes to a few hundred KB.
"""

from __future__ import annotations

import dataclasses
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from blindsr.cli.main import main
from blindsr.data.image_errors import ImageReadError
from blindsr.data.images import image_size, read_image, read_image_uint8
from blindsr.data.user_images import (
    loaded_from_array,
    loaded_from_pil,
    loaded_to_array,
    loaded_to_pil,
    read_image_any,
    write_image_like,
)
from blindsr.nets.toy import ToySR
from blindsr.zoo import save_release

RNG = np.random.default_rng(7)
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------ helpers


def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _png16(tmp_path: Path, name: str, *, before_idat: bytes = b"", after_idat: bytes = b"", idat: bytes = b"") -> Path:
    """A valid 9x7 16-bit RGB PNG (written by write_image_like), with extra chunks or another IDAT stream."""
    pixels = RNG.integers(0, 65536, size=(9, 7, 3), dtype=np.uint16)
    write_image_like(tmp_path / "base.png", loaded_from_array(pixels))
    parts = [_SIGNATURE]
    for kind, body in _chunks((tmp_path / "base.png").read_bytes()):
        if kind == b"IDAT":
            parts += [before_idat, _chunk(b"IDAT", idat or body), after_idat]
        else:
            parts.append(_chunk(kind, body))
    path = tmp_path / name
    path.write_bytes(b"".join(parts))
    return path


def _iccp(compressed: bytes, *, method: int = 0) -> bytes:
    return _chunk(b"iCCP", b"ICC profile\0" + bytes([method]) + compressed)


def _tiff(pixels: np.ndarray, sample_format: int) -> bytes:
    """A minimal little-endian, uncompressed, one-strip TIFF of (H, W) or (H, W, C) pixels (Pillow cannot write
    every sample layout, e.g. RGB float)."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, channels = pixels.shape
    data = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")).tobytes()
    bits = pixels.dtype.itemsize * 8
    tags = 10 + (channels > 1)
    arrays_at = 8 + 2 + 12 * tags + 4  # per-sample arrays (BitsPerSample, SampleFormat) follow the IFD
    per_sample = channels > 2  # more than two 16-bit values do not fit in an IFD entry
    bits_array = struct.pack(f"<{channels}H", *[bits] * channels) if per_sample else b""
    format_array = struct.pack(f"<{channels}H", *[sample_format] * channels) if per_sample else b""
    data_at = arrays_at + len(bits_array) + len(format_array)

    def short(values: list[int]) -> bytes:
        return struct.pack("<HH", values[0], values[1] if len(values) > 1 else 0)

    entries = [
        (256, 3, 1, short([width])),
        (257, 3, 1, short([height])),
        (258, 3, channels, struct.pack("<I", arrays_at) if per_sample else short([bits] * channels)),
        (259, 3, 1, short([1])),  # no compression
        (262, 3, 1, short([2 if channels >= 3 else 1])),  # RGB or min-is-black
        (273, 4, 1, struct.pack("<I", data_at)),
        (277, 3, 1, short([channels])),
        (278, 3, 1, short([height])),
        (279, 4, 1, struct.pack("<I", len(data))),
        *([(284, 3, 1, short([1]))] if channels > 1 else []),  # chunky
        (339, 3, channels, struct.pack("<I", arrays_at + len(bits_array)) if per_sample else short([sample_format])),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", *e[:3]) + e[3] for e in entries)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bits_array + format_array + data


def _float_tiff(tmp_path: Path, values: np.ndarray, name: str = "f.tif") -> Path:
    Image.fromarray(values.astype(np.float32), mode="F").save(tmp_path / name)
    return tmp_path / name


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ToySR with its zero-initialised tail: exactly MATLAB bicubic, so the output has the input's brightness."""
    kwargs = {"scale": 2, "n_feats": 8, "n_blocks": 1}
    path = tmp_path_factory.mktemp("models") / "toy-bicubic.safetensors"
    save_release(ToySR(**kwargs), path, arch="toy_sr", arch_kwargs=kwargs, scale=2)
    return str(path)


# ------------------------------------------------------------------------------------------------ 16-bit PNG


@pytest.mark.parametrize(
    ("where", "iccp", "reason"),
    [
        ("after", _iccp(b"definitely not zlib data"), r"corrupt iCCP chunk \(Error -3"),
        ("before", _iccp(b"definitely not zlib data"), r"corrupt iCCP chunk \(Error -3"),
        ("after", _iccp(zlib.compress(b"a profile " * 50)[:-9]), "corrupt iCCP chunk"),  # stream cut short
        ("after", _iccp(zlib.compress(b"a profile"), method=7), "unknown compression method 7"),
    ],
    ids=["garbage-after-idat", "garbage-before-idat", "cut-stream", "unknown-method"],
)
def test_a_corrupt_icc_profile_in_a_16bit_png_is_a_one_line_read_error(
    tmp_path: Path, where: str, iccp: bytes, reason: str
) -> None:
    path = _png16(tmp_path, "icc16.png", **{f"{where}_idat": iccp})
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image_any(path)
    assert info.value.path == str(path) and "\n" not in str(info.value)


def test_an_icc_profile_bomb_is_refused_without_inflating_it(tmp_path: Path) -> None:
    # 32 KB of iCCP after IDAT that inflates to 32 MiB (the 3 MB would inflate to 3 GB)
    path = _png16(tmp_path, "bomb16.png", after_idat=_iccp(zlib.compress(bytes(32 << 20), 9)))
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError, match=r"ICC profile too large \(.*more than 1,048,576 bytes"):
            read_image_any(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak:,} bytes allocated"


def test_image_data_that_inflates_past_the_image_is_not_inflated_further(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, size=(4, 5, 3), dtype=np.uint16)
    rows = np.concatenate([np.zeros((4, 1), np.uint8), pixels.astype(">u2").view(np.uint8).reshape(4, 30)], axis=1)
    bomb = zlib.compress(rows.tobytes() + bytes(32 << 20), 9)  # the 4 rows, then 32 MiB of surplus
    write_image_like(tmp_path / "base.png", loaded_from_array(pixels))
    data = (tmp_path / "base.png").read_bytes()
    path = tmp_path / "surplus16.png"
    path.write_bytes(_SIGNATURE + b"".join(_chunk(k, bomb if k == b"IDAT" else b) for k, b in _chunks(data)))
    tracemalloc.start()
    try:
        img = read_image_any(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (img.mode, img.bit_depth) == ("rgb", 16)
    assert torch.equal(img.rgb, torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32)) / 65535)
    assert peak < 8 << 20, f"{peak:,} bytes allocated"


def _filtered_png16(pixels: np.ndarray, *, filters: list[int] | None = None) -> bytes:
    """A 16-bit PNG whose row y uses PNG filter ``filters[y]`` (default y % 5: None, Sub, Up, Average, Paeth), as
    libpng-based writers mix them (pypng, which writes ours, uses None on every row)."""
    height, width, channels = pixels.shape
    bpp = 2 * channels
    raw = pixels.astype(">u2").view(np.uint8).reshape(height, width * bpp).astype(np.int64)
    lines = []
    for y in range(height):
        kind = filters[y] if filters is not None else y % 5
        row, up = raw[y], raw[y - 1] if y else np.zeros_like(raw[y])
        left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
        p = left + up - up_left
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        predictor = [np.zeros_like(row), left, up, (left + up) >> 1, paeth][kind] if kind < 5 else 0
        lines.append(bytes([kind]) + ((row - predictor) & 0xFF).astype(np.uint8).tobytes())
    colour_type = {2: 4, 3: 2, 4: 6}[channels]
    header = struct.pack(">2I5B", width, height, 16, colour_type, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(lines))) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_pngs_with_every_row_filter_are_read_exactly(tmp_path: Path, channels: int) -> None:
    pixels = RNG.integers(0, 65536, size=(40, 33, channels), dtype=np.uint16)
    pixels[10:20] = 4321  # flat rows as well as noisy ones
    (tmp_path / "f.png").write_bytes(_filtered_png16(pixels))
    img = read_image_any(tmp_path / "f.png")
    assert img.bit_depth == 16 and np.array_equal(loaded_to_array(img), pixels)


def test_an_unknown_row_filter_is_a_one_line_read_error(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, size=(6, 5, 3), dtype=np.uint16)
    (tmp_path / "bad.png").write_bytes(_filtered_png16(pixels, filters=[0, 1, 2, 7, 0, 0]))
    with pytest.raises(ImageReadError, match=r"corrupt PNG image data \(invalid filter type in row 3\)") as info:
        read_image_any(tmp_path / "bad.png")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kept", "reason"),
    [
        (3 * 31, r"truncated \(PNG image data ends after 3 of 6 rows\)"),  # rows of 1 + 5 * 3 * 2 bytes
        (6 * 31 - 7, r"truncated \(PNG image data ends after 5 of 6 rows\)"),  # inside the last row
    ],
    ids=["whole-rows-missing", "inside-a-row"],
)
def test_image_data_shorter_than_the_header_says_is_truncated(tmp_path: Path, kept: int, reason: str) -> None:
    pixels = RNG.integers(0, 65536, size=(6, 5, 3), dtype=np.uint16)
    rows = b"".join(b"\0" + row.tobytes() for row in pixels.astype(">u2").reshape(6, 15))
    header = _chunk(b"IHDR", struct.pack(">2I5B", 5, 6, 16, 2, 0, 0, 0))
    (tmp_path / "short.png").write_bytes(
        _SIGNATURE + header + _chunk(b"IDAT", zlib.compress(rows[:kept])) + _chunk(b"IEND", b"")
    )
    with pytest.raises(ImageReadError, match=reason):
        read_image_any(tmp_path / "short.png")


def test_corrupt_chunks_of_a_16bit_png_are_one_line_read_errors(tmp_path: Path) -> None:
    good = _png16(tmp_path, "good.png").read_bytes()
    no_iend = good[: good.rindex(b"IEND") - 4]
    huge = good[:33] + (0x80000000).to_bytes(4, "big") + b"IDAT" + good[41:]
    garbage = _png16(tmp_path, "g.png", after_idat=_chunk(b"\xff\xfe\xfd\xfc", b"abcd")).read_bytes()  # not letters
    cases = {
        "no-iend.png": (no_iend, r"truncated \(no PNG IEND chunk\)"),
        "huge.png": (huge, r"corrupt PNG chunk length 2,147,483,648 \(more than 2\^31 - 1\)"),
        "garbage.png": (garbage, r"corrupt PNG data \(Chunk \[255, 254, 253, 252\] has invalid Chunk Type"),
        "zlib.png": (
            _png16(tmp_path, "z.png", idat=b"not zlib data").read_bytes(),
            r"corrupt PNG image data \(Error -3",
        ),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError, match=reason) as info:
            read_image_any(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value), name


def test_an_interlaced_16bit_png_is_read_as_8_bits_by_pillow(tmp_path: Path) -> None:
    import png

    pixels = RNG.integers(0, 65536, size=(7, 9, 3), dtype=np.uint16)
    with (tmp_path / "i.png").open("wb") as fh:
        png.Writer(9, 7, greyscale=False, bitdepth=16, interlace=True).write(fh, pixels.reshape(7, 27).tolist())
    img = read_image_any(tmp_path / "i.png")
    assert (img.mode, img.bit_depth) == ("rgb", 8)
    assert np.array_equal(loaded_to_array(img), (pixels >> 8).astype(np.uint8))


def test_16bit_png_output_is_plain_pypng_data_with_the_metadata_before_it(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "blindsr-test"
    img = loaded_from_array(RNG.integers(0, 65536, size=(5, 6, 4), dtype=np.uint16))
    img = dataclasses.replace(img, exif=exif.tobytes(), icc_profile=b"a profile")
    write_image_like(tmp_path / "m.png", img)
    kinds = [kind for kind, _ in _chunks((tmp_path / "m.png").read_bytes())]
    assert kinds == [b"IHDR", b"iCCP", b"eXIf", b"IDAT", b"IEND"]
    back = read_image_any(tmp_path / "m.png")
    assert back.icc_profile == b"a profile" and back.exif is not None
    parsed = Image.Exif()
    parsed.load(back.exif)
    assert parsed[0x010F] == "blindsr-test"
    assert np.array_equal(loaded_to_array(back), loaded_to_array(img))


def test_a_corrupt_16bit_png_does_not_stop_an_upscale_batch(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _png16(src, "a_bad16.png", after_idat=_iccp(b"definitely not zlib data"))
    (src / "base.png").unlink()
    Image.fromarray(RNG.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)).save(src / "b_good.png")
    out = tmp_path / "out"
    code = main(["upscale", str(src), "-o", str(out), "-m", model, "--tile", "0", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "1 of 2 failed" in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(src / "a_bad16.png") in errors[0] and "iCCP" in errors[0]
    assert [p.name for p in out.iterdir()] == ["b_good_x2.png"]


# ------------------------------------------------------------------------------------------------ float TIFF


def test_a_float_tiff_is_read_as_values_in_0_1_by_every_reader(tmp_path: Path) -> None:
    values = np.linspace(-0.25, 1.25, 6 * 8, dtype=np.float32).reshape(6, 8)  # outside [0, 1] at both ends
    path = _float_tiff(tmp_path, values)
    clipped = torch.from_numpy(np.clip(values, 0, 1))
    assert torch.equal(read_image(path), clipped.expand(3, 6, 8))
    assert torch.equal(read_image_uint8(path), torch.floor(clipped * 255 + 0.5).to(torch.uint8).expand(3, 6, 8))
    img = read_image_any(path)
    assert (img.mode, img.bit_depth, img.alpha, img.format) == ("gray", 32, None, "TIFF")
    assert torch.equal(img.rgb, clipped.expand(3, 6, 8))
    assert image_size(path) == (6, 8)


def test_a_float_tiff_with_nan_is_refused(tmp_path: Path) -> None:
    values = np.full((3, 4), 0.5, dtype=np.float32)
    values[1, 2] = np.nan
    path = _float_tiff(tmp_path, values)
    for reader in (read_image, read_image_uint8, read_image_any):
        with pytest.raises(ImageReadError, match="float pixels contain NaN"):
            reader(path)


@pytest.mark.parametrize(
    ("pixels", "sample_format", "reason"),
    [
        (RNG.random((4, 5, 3), dtype=np.float32), 3, r"3 channel\(s\) of 32-bit float"),
        (RNG.random((4, 5, 4), dtype=np.float32), 3, r"4 channel\(s\) of 32-bit float"),
        (RNG.random((4, 5)), 3, r"1 channel\(s\) of 64-bit float"),
    ],
    ids=["rgb-float32", "rgba-float32", "gray-float64"],
)
def test_float_tiffs_pillow_cannot_open_are_refused_naming_their_format(
    tmp_path: Path, pixels: np.ndarray, sample_format: int, reason: str
) -> None:
    path = tmp_path / "deep.tif"
    path.write_bytes(_tiff(pixels, sample_format))
    for reader in (read_image, read_image_uint8, read_image_any, image_size):
        with pytest.raises(ImageReadError, match=reason) as info:
            reader(path)
        assert "float TIFFs are read with one 32-bit channel only" in str(info.value)
        assert "\n" not in str(info.value)


def test_float_gray_is_written_back_as_a_float_tiff_or_a_16bit_png(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 5 * 7, dtype=np.float32).reshape(5, 7) ** 2
    img = read_image_any(_float_tiff(tmp_path, values))
    write_image_like(tmp_path / "out.tif", img)
    with Image.open(tmp_path / "out.tif") as out:
        assert out.mode == "F" and np.array_equal(np.array(out), values)
    write_image_like(tmp_path / "out.png", img)
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "I;16"
        assert np.array_equal(np.array(out), np.floor(values * 65535 + 0.5).astype(np.uint16))
    pil = loaded_to_pil(img)  # in memory: a float gray image stays Pillow mode "F"
    assert pil.mode == "F" and np.array_equal(np.array(pil), values)
    back = loaded_from_pil(pil)
    assert (back.mode, back.bit_depth) == ("gray", 32) and torch.equal(back.rgb[0], torch.from_numpy(values))


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_upscaling_a_float_tiff_keeps_its_brightness_and_stays_gray(tmp_path: Path, model: str, suffix: str) -> None:
    y, x = np.mgrid[0:16, 0:20]
    values = (0.2 + 0.6 * (x + y) / 34).astype(np.float32)  # mean 0.5
    tif = _float_tiff(tmp_path, values, "in.tif")
    out = tmp_path / f"out{suffix}"
    assert main(["upscale", str(tif), "-o", str(out), "-m", model, "--tile", "0", "-q"]) == 0
    with Image.open(out) as pil:
        mode, result = pil.mode, np.array(pil).astype(np.float64)
    assert mode == ("F" if suffix == ".tif" else "I;16")  # one channel, float or 16 bits
    if suffix == ".png":
        result /= 65535
    assert result.shape == (32, 40)
    assert abs(result.mean() - values.mean()) < 0.02 * values.mean()


# ------------------------------------------------------------------------------------------------ integer TIFF


def test_16bit_and_32bit_integer_tiffs_are_16bit_gray_or_refused(tmp_path: Path) -> None:
    deep = RNG.integers(0, 65536, size=(4, 6), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "i16.tif")
    Image.fromarray(deep.astype(np.int32)).save(tmp_path / "i32.tif")  # 16-bit data in a 32-bit container
    for name in ("i16.tif", "i32.tif"):
        img = read_image_any(tmp_path / name)
        assert (img.mode, img.bit_depth) == ("gray", 16), name
        assert torch.equal(img.rgb[0], torch.from_numpy(deep.astype(np.float32)) / 65535), name
    wide = (np.arange(24, dtype=np.int64).reshape(4, 6) * 80_000_000).astype(np.int32)  # full 32-bit range
    Image.fromarray(wide).save(tmp_path / "wide.tif")
    for reader in (read_image, read_image_uint8, read_image_any):
        with pytest.raises(ImageReadError, match=r"32-bit integer pixels range over 0\.\.1840000000"):
            reader(tmp_path / "wide.tif")
