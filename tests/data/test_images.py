"""Tests for blindsr.data.images (dataset tensors): reading every mode, writing every format, rounding, atomicity,
bad files."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from blindsr.data.image_errors import ImageReadError, ImageWriteError
from blindsr.data.images import (
    IMAGE_EXTENSIONS,
    float_to_uint8,
    image_size,
    list_images,
    read_image,
    read_image_uint8,
    to_uint8,
    write_image,
)


def _rgb_pixels(height: int = 6, width: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 HWC (or HW) → (3, H, W) float, the reference for read_image."""
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy()).float() / 255


# ------------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".PNG"])
def test_lossless_formats_round_trip_exactly(tmp_path: Path, suffix: str) -> None:
    image = _as_tensor(_rgb_pixels())
    write_image(tmp_path / f"x{suffix}", image)
    assert torch.equal(read_image(tmp_path / f"x{suffix}"), image)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp"])
def test_lossy_formats_round_trip_approximately(tmp_path: Path, suffix: str) -> None:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 48), indexing="ij")
    image = torch.stack([yy, xx, (yy + xx) / 2])  # smooth, so lossy coding stays close
    write_image(tmp_path / f"x{suffix}", image, quality=95)
    back = read_image(tmp_path / f"x{suffix}")
    assert back.shape == (3, 32, 48) and back.dtype == torch.float32
    assert (back - image).abs().mean() < 0.02


def test_float_tensor_gray_and_one_channel_are_written_as_gray(tmp_path: Path) -> None:
    gray = torch.rand(5, 6)
    write_image(tmp_path / "a.png", gray)
    write_image(tmp_path / "b.png", gray[None])
    assert Image.open(tmp_path / "a.png").mode == "L"
    expected = _as_tensor(to_uint8(gray))
    assert torch.equal(read_image(tmp_path / "a.png"), expected)
    assert torch.equal(read_image(tmp_path / "b.png"), expected)


def test_npy_round_trip_is_exact_and_unclipped(tmp_path: Path) -> None:
    image = torch.randn(3, 5, 4) * 3  # far outside [0, 1]
    write_image(tmp_path / "x.npy", image)
    stored = np.load(tmp_path / "x.npy")
    assert stored.dtype == np.float32 and stored.shape == (5, 4, 3)
    assert torch.equal(read_image(tmp_path / "x.npy"), image)


def test_npy_gray_is_replicated(tmp_path: Path) -> None:
    write_image(tmp_path / "g.npy", torch.randn(1, 3, 2))
    assert np.load(tmp_path / "g.npy").shape == (3, 2, 3)
    np.save(tmp_path / "hw.npy", np.arange(6, dtype=np.float64).reshape(2, 3))
    out = read_image(tmp_path / "hw.npy")
    assert out.dtype == torch.float32 and out.shape == (3, 2, 3)
    assert torch.equal(out[1], torch.arange(6.0).reshape(2, 3))


def test_npy_rejects_integer_arrays_and_bad_shapes(tmp_path: Path) -> None:
    np.save(tmp_path / "int.npy", np.zeros((2, 2, 3), dtype=np.uint8))
    np.save(tmp_path / "shape.npy", np.zeros((2, 2, 5), dtype=np.float32))
    with pytest.raises(ImageReadError, match="float array"):
        read_image(tmp_path / "int.npy")
    with pytest.raises(ImageReadError, match="shape"):
        read_image(tmp_path / "shape.npy")


def test_write_numpy_uint8_and_uint16(tmp_path: Path) -> None:
    pixels = _rgb_pixels()
    write_image(tmp_path / "rgb.png", pixels)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "rgb.png")), pixels)

    deep = np.array([[0, 1, 65535], [256, 32768, 1000]], dtype=np.uint16)
    write_image(tmp_path / "deep.png", deep)
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I")
        assert np.array_equal(np.asarray(img), deep)
    assert torch.equal(read_image(tmp_path / "deep.png")[0], torch.from_numpy(deep.astype(np.float32)) / 65535)

    write_image(tmp_path / "deep.npy", deep)
    assert torch.equal(read_image(tmp_path / "deep.npy"), read_image(tmp_path / "deep.png"))
    with pytest.raises(ImageWriteError, match="16-bit"):
        write_image(tmp_path / "deep.jpg", deep)


def test_write_rejects_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="unknown extension '.gif'"):
        write_image(tmp_path / "x.gif", torch.rand(3, 4, 4))
    with pytest.raises(ImageWriteError, match="unknown extension"):
        write_image(tmp_path / "noext", torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "x.png", torch.full((3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        write_image(tmp_path / "x.png", torch.rand(2, 4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        write_image(tmp_path / "x.png", torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match="uint8 or uint16"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), dtype=np.float32))
    assert list(tmp_path.iterdir()) == []


def test_write_creates_parent_folders_and_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.png"
    write_image(target, torch.zeros(3, 2, 2))
    write_image(target, torch.ones(3, 2, 2))
    assert torch.equal(read_image(target), torch.ones(3, 2, 2))
    assert [p.name for p in target.parent.iterdir()] == ["c.png"]


# ------------------------------------------------------------------------------------------------ atomicity


def test_failed_pil_save_leaves_no_temp_and_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.png"
    write_image(target, torch.zeros(3, 4, 4))
    before = target.read_bytes()

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"half-written")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageWriteError, match="disk full"):
        write_image(target, torch.ones(3, 4, 4))
    with pytest.raises(ImageWriteError):
        write_image(tmp_path / "new.png", torch.ones(3, 4, 4))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert target.read_bytes() == before


def test_failed_npy_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # even an interrupt must not leave the temp file behind

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "x.npy", torch.rand(3, 2, 2))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ reading modes


def test_read_gray_l_is_replicated(tmp_path: Path) -> None:
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    Image.fromarray(gray).save(tmp_path / "l.png")
    out = read_image(tmp_path / "l.png")
    assert out.shape == (3, 4, 5) and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.equal(out, _as_tensor(gray))


def test_read_la_and_rgba_drop_alpha(tmp_path: Path) -> None:
    rgb = _rgb_pixels()
    alpha = np.zeros(rgb.shape[:2], dtype=np.uint8)  # fully transparent: colour must still be the stored one
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    assert torch.equal(read_image(tmp_path / "rgba.png"), _as_tensor(rgb))

    gray = rgb[:, :, 0]
    Image.fromarray(np.dstack([gray, alpha]), mode="LA").save(tmp_path / "la.png")
    assert torch.equal(read_image(tmp_path / "la.png"), _as_tensor(gray))


def test_read_palette_with_transparency_and_pa(tmp_path: Path) -> None:
    palette_image = Image.new("P", (3, 2))
    palette_image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (768 - 9))
    palette_image.putdata([0, 1, 2, 2, 1, 0])
    palette_image.info["transparency"] = 0
    palette_image.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as img:
        assert img.mode == "P"
    out = read_image(tmp_path / "p.png")
    assert out.shape == (3, 2, 3)
    assert out[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert out[:, 0, 2].tolist() == [0.0, 0.0, 1.0]

    # no common format stores "PA", so the conversion step is tested on an in-memory image
    from blindsr.data.images import _pil_to_pixels

    pa = Image.new("PA", (2, 2))
    pa.putpalette([10, 20, 30] * 256)
    assert np.array_equal(_pil_to_pixels(pa), np.full((2, 2, 3), [10, 20, 30], dtype=np.uint8))


def test_read_16bit_gray_png_and_big_endian_tiff(tmp_path: Path) -> None:
    deep = np.array([[0, 257, 65535], [1000, 30000, 60000]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as img:
        assert img.mode == "I;16"
    expected = torch.from_numpy(deep.astype(np.float32)).div(65535).expand(3, 2, 3)
    assert torch.equal(read_image(tmp_path / "g16.png"), expected)

    Image.fromarray(deep.astype(">u2")).save(tmp_path / "g16b.tif")
    assert torch.equal(read_image(tmp_path / "g16b.tif"), expected)

    # mode "I" (32-bit integer): 16-bit data in a 32-bit container is read as 16-bit; other ranges are refused
    Image.fromarray(np.array([[0, 13107, 65535]], dtype=np.int32)).save(tmp_path / "i.tif")
    assert torch.equal(read_image(tmp_path / "i.tif")[0], torch.tensor([[0.0, 13107.0, 65535.0]]) / 65535)
    Image.fromarray(np.array([[-5, 65535, 70000]], dtype=np.int32)).save(tmp_path / "wide.tif")
    with pytest.raises(ImageReadError, match=r"32-bit integer pixels range over -5\.\.70000, outside 0\.\.65535"):
        read_image(tmp_path / "wide.tif")


def test_read_bilevel_and_cmyk(tmp_path: Path) -> None:
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "one.png")
    assert read_image(tmp_path / "one.png")[:, 0].T.tolist() == [[1.0] * 3, [0.0] * 3]

    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "cmyk.tif")  # cyan 0, magenta/yellow full: red
    assert torch.equal(read_image(tmp_path / "cmyk.tif")[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_read_honours_exif_orientation(tmp_path: Path) -> None:
    pixels = np.zeros((16, 32, 3), dtype=np.uint8)  # H=16, W=32: left half red, right half blue
    pixels[:, :16, 0] = 255
    pixels[:, 16:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)

    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (3, 32, 16)  # displayed upright: portrait
    assert image_size(tmp_path / "rot.jpg") == (32, 16)
    top, bottom = out[:, 4:12].mean(dim=(1, 2)), out[:, 20:28].mean(dim=(1, 2))
    assert top[0] > 0.9 and top[2] < 0.1  # the left (red) half ends up on top after a clockwise turn
    assert bottom[2] > 0.9 and bottom[0] < 0.1

    Image.fromarray(pixels).save(tmp_path / "rot.png", exif=exif.tobytes())  # lossless: exact check
    assert image_size(tmp_path / "rot.png") == (32, 16)
    assert torch.equal(read_image(tmp_path / "rot.png"), _as_tensor(np.rot90(pixels, k=-1)))


def test_read_image_uint8_matches_read_image(tmp_path: Path) -> None:
    pixels = _rgb_pixels()
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    Image.fromarray(pixels[:, :, 1]).save(tmp_path / "gray.png")
    for name in ("rgb.png", "gray.png"):
        compact = read_image_uint8(tmp_path / name)
        assert compact.dtype == torch.uint8 and compact.shape == (3, 6, 7) and compact.is_contiguous()
        assert torch.equal(compact.float() / 255, read_image(tmp_path / name))

    deep = np.array([[0, 128, 129, 65535]], dtype=np.uint16)  # 128/65535*255 = 0.498 → 0; 129 → 0.502 → 1
    Image.fromarray(deep).save(tmp_path / "g16.png")
    assert read_image_uint8(tmp_path / "g16.png")[0].tolist() == [[0, 0, 1, 255]]
    np.save(tmp_path / "x.npy", np.array([[-1.0, 0.5, 2.0]], dtype=np.float32))
    assert read_image_uint8(tmp_path / "x.npy")[2].tolist() == [[0, 128, 255]]


# ------------------------------------------------------------------------------------------------ bad files


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_empty_and_non_image_files(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_bytes(b"this is not an image at all")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageReadError, match="empty file"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="not an image") as info:
        read_image(tmp_path / "text.png")
    assert "\n" not in str(info.value) and str(tmp_path / "text.png") in str(info.value)
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path / "dir.png")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ImageReadError, match=".npy"):
        read_image(tmp_path / "bad.npy")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files_fail_on_read(tmp_path: Path, suffix: str) -> None:
    write_image(tmp_path / f"full{suffix}", torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0)))
    data = (tmp_path / f"full{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    assert image_size(tmp_path / f"cut{suffix}") == (64, 64)  # the header alone is fine...
    with pytest.raises(ImageReadError, match="truncated|corrupt"):  # ...the full decode is not
        read_image(tmp_path / f"cut{suffix}")


def test_decompression_bomb_becomes_image_read_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image(tmp_path / "big.png", torch.zeros(3, 20, 20))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # errors above 2 × 100 pixels
    with pytest.raises(ImageReadError, match=r"too large \(400 pixels > limit of 200"):
        read_image(tmp_path / "big.png")


def test_errors_pickle_with_their_message() -> None:
    error = pickle.loads(pickle.dumps(ImageReadError("x.png", "truncated")))
    assert str(error) == "cannot read image x.png: truncated" and error.reason == "truncated"
    write_error = pickle.loads(pickle.dumps(ImageWriteError("y.jpg", "disk full")))
    assert str(write_error) == "cannot write image y.jpg: disk full"


# ------------------------------------------------------------------------------------------------ rounding


def test_quantize_is_exact_on_the_uint8_grid_and_clips() -> None:
    levels = torch.arange(256, dtype=torch.float32)
    assert torch.equal(float_to_uint8(levels / 255), levels.to(torch.uint8))
    assert float_to_uint8(torch.tensor([-1.0, float("-inf"), 1.5, float("inf")])).tolist() == [0, 0, 255, 255]
    with pytest.raises(ValueError, match="NaN"):
        float_to_uint8(torch.tensor([float("nan")]))


def test_quantize_rounds_half_away_from_zero_like_matlab() -> None:
    # values whose float32 product 255 * x is exactly k + 0.5
    candidates = (torch.arange(255, dtype=torch.float64) + 0.5) / 255
    x = candidates.to(torch.float32)
    exact_half = (x * 255) == (torch.arange(255, dtype=torch.float32) + 0.5)
    x = x[exact_half]
    k = torch.arange(255)[exact_half]
    assert len(k) > 50 and (k % 2 == 0).any()  # plenty of ties, including ones round-half-even sends down
    assert torch.equal(float_to_uint8(x).long(), k + 1)
    assert not torch.equal(torch.round(x * 255).long(), k + 1)  # what naive rounding would have done
    assert np.array_equal(to_uint8(x.reshape(1, 1, -1))[0, :, 0], (k + 1).numpy())


def test_to_uint8_layout() -> None:
    image = torch.rand(3, 2, 5)
    hwc = to_uint8(image)
    assert hwc.shape == (2, 5, 3) and hwc.dtype == np.uint8 and hwc.flags.c_contiguous
    assert np.array_equal(hwc, float_to_uint8(image).permute(1, 2, 0).numpy())
    assert to_uint8(torch.rand(2, 5)).shape == (2, 5)
    with pytest.raises(ValueError):
        to_uint8(torch.rand(1, 3, 2, 5))


# ------------------------------------------------------------------------------------------------ listing


def test_list_images_filters_sorts_and_recurses(tmp_path: Path) -> None:
    names = ["b.PNG", "a.jpg", "c.webp", "d.tiff", ".hidden.png", "notes.txt", "arr.npy", "sub/e.bmp", ".git/f.png"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.webp", "d.tiff"]
    with_npy = list_images(tmp_path, include_npy=True)
    assert [p.name for p in with_npy] == ["a.jpg", "arr.npy", "b.PNG", "c.webp", "d.tiff"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)] == [
        "a.jpg",
        "b.PNG",
        "c.webp",
        "d.tiff",
        "sub/e.bmp",
    ]
    assert all(p.is_absolute() == tmp_path.is_absolute() for p in list_images(tmp_path))
    assert set(IMAGE_EXTENSIONS) >= {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def test_list_images_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "file.png")


@pytest.mark.parametrize("module", ["image_errors", "images", "png16", "user_images"])
def test_pil_and_pypng_are_only_imported_inside_functions(module: str) -> None:
    path = Path(__file__).parents[2] / "src" / "blindsr" / "data" / f"{module}.py"
    tree = ast.parse(path.read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    imported = {alias.name for node in top_level for alias in node.names} | {
        node.module for node in top_level if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not any(name in ("PIL", "png") or name.startswith("PIL.") for name in imported)


def test_importing_the_image_modules_pulls_in_neither_pil_nor_pypng() -> None:
    code = (
        "import sys, blindsr.data.images, blindsr.data.user_images, blindsr.data.png16;"
        "print(','.join(m for m in ('PIL', 'png') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
