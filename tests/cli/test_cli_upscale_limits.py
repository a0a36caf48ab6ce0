"""`blindsr upscale` limits: the memory a job needs is estimated and refused on one line before decoding or
allocating; --tile auto stays bounded on the CPU; suffixes cannot leave the output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import blindsr.data.user_images as io_module
import blindsr.inference.upscaler as upscaler_module
from blindsr.cli.main import main
from blindsr.inference import Upscaler
from blindsr.nets.dmsr import DMSRNet
from blindsr.zoo import save_release

KWARGS: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_groups": 1, "n_blocks": 1, "extractor_channels": 8}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("models") / "dmsr-tiny.safetensors"
    save_release(DMSRNet(**KWARGS), path, arch="dmsr", arch_kwargs=KWARGS, scale=2)
    return str(path)


@pytest.fixture
def no_large_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast (instead of decoding or upscaling for minutes) when a large image gets past the memory check."""
    read, run_tiles = io_module.read_image_any, Upscaler._run_tiles

    def small_reads_only(path: Any, **kwargs: Any) -> Any:
        with Image.open(path) as img:
            assert img.width * img.height <= 512 * 512, f"{path} was decoded although it is above the limit"
        return read(path, **kwargs)

    def small_runs_only(self: Upscaler, lr: torch.Tensor, tile: int | None, **kwargs: Any) -> Any:
        assert lr.shape[-2] * lr.shape[-1] <= 512 * 512, "a large job ran although it is above the limit"
        return run_tiles(self, lr, tile, **kwargs)

    monkeypatch.setattr(io_module, "read_image_any", small_reads_only)
    monkeypatch.setattr(Upscaler, "_run_tiles", small_runs_only)


def _black_png(path: Path, side: int) -> Path:
    Image.new("RGB", (side, side)).save(path, optimize=True)  # a few KB that decode to side² x 3 bytes
    return path


def _photo(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _upscale(*args: str) -> int:
    return main(["upscale", *args, "-q"])


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


# ------------------------------------------------------------------------------------------------ memory limit


@pytest.mark.usefixtures("no_large_work")
def test_a_small_file_declaring_a_huge_image_is_refused_before_decoding(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    big = _black_png(tmp_path / "big.png", 4000)
    assert big.stat().st_size < 100_000
    code = _upscale(str(big), "-o", str(tmp_path / "out"), "-m", model, "--max-memory", "200M")
    captured = capsys.readouterr()
    assert code == 1
    (line,) = _errors(captured.err)
    assert line.startswith(f"error: {big}: needs about ")
    assert "4000x4000 px at x2 = 8000x8000" in line and "above the limit of 200.0 MB" in line
    assert line.endswith("raise it with --max-memory or use a smaller --outscale")
    assert "memory limit: 200.0 MB per image (--max-memory)" in captured.out
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.usefixtures("no_large_work")
def test_the_default_limit_follows_the_available_ram_and_the_batch_goes_on(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upscaler_module, "_system_available_ram", lambda: 400_000_000)  # 400 MB free
    src = tmp_path / "in"
    src.mkdir()
    big = _black_png(src / "big.png", 4000)  # x2: an 8000x8000 output, 768 MB in float32 alone
    Image.fromarray(_photo(24, 20)).save(src / "small.png")
    out = tmp_path / "out"
    code = _upscale(str(src), "-o", str(out), "-m", model)
    captured = capsys.readouterr()
    assert code == 1 and "1 of 2 failed" in captured.err
    (line,) = _errors(captured.err)
    assert line.startswith(f"error: {big}: needs about ") and "above the limit of 300.0 MB" in line
    assert "raise it with --max-memory" in line and "Traceback" not in captured.err
    assert "memory limit: 300.0 MB per image (75 % of the available RAM; --max-memory)" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["small_x2.png"]
    with Image.open(out / "small_x2.png") as img:
        assert img.size == (40, 48)


@pytest.mark.usefixtures("no_large_work")
def test_the_decoded_kind_is_checked_before_the_output_is_allocated(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a 16-bit colour PNG: its header passes (as the cheapest kind), its real cost (16-bit encoding) does not
    deep = tmp_path / "deep.png"
    pixels = np.random.default_rng(1).integers(0, 65536, (300, 300, 3), dtype=np.uint16)
    io_module.write_image_like(deep, io_module.loaded_from_array(pixels))
    assert io_module.read_image_any(deep).bit_depth == 16
    real = Upscaler._run_tiles
    ran: list[int] = []

    def counting(self: Upscaler, lr: torch.Tensor, tile: int | None, **kwargs: Any) -> Any:
        if lr.shape[-1] > 64:
            ran.append(int(lr.shape[-1]))
        return real(self, lr, tile, **kwargs)

    monkeypatch.setattr(Upscaler, "_run_tiles", counting)
    code = _upscale(str(deep), "-o", str(tmp_path / "out"), "-m", model, "--max-memory", "80M", "--tile", "16")
    captured = capsys.readouterr()
    assert code == 1 and ran == []
    (line,) = _errors(captured.err)
    assert "300x300 px at x2 = 600x600" in line and "writing" in line and "above the limit of 80.0 MB" in line


def test_bad_memory_sizes_are_usage_errors(tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(_photo(16, 16)).save(src)
    with pytest.raises(SystemExit) as info:
        _upscale(str(src), "-o", str(tmp_path / "out"), "-m", model, "--max-memory", "lots")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--max-memory" in err and "expected a memory size such as 8G, 512M or 2GiB, got 'lots'" in err


def test_a_job_within_max_memory_runs(tmp_path: Path, model: str) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(_photo(20, 24)).save(src)
    assert _upscale(str(src), "-o", str(tmp_path / "out"), "-m", model, "--max-memory", "2G") == 0
    with Image.open(tmp_path / "out" / "a_x2.png") as img:
        assert img.size == (48, 40)


# ------------------------------------------------------------------------------------------------ tile auto on CPU


def test_tile_auto_on_the_cpu_bounds_the_tile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upscaler_module, "_system_available_ram", lambda: 64 << 30)  # a 64 GB machine
    seen: list[int | None] = []
    real = Upscaler._run_tiles

    def record_only(self: Upscaler, lr: torch.Tensor, tile: int | None, **kwargs: Any) -> Any:
        if lr.shape[-1] <= 32:  # the memory model's probe
            return real(self, lr, tile, **kwargs)
        seen.append(tile)
        raise torch.OutOfMemoryError("stop here: only the tile is tested")

    monkeypatch.setattr(Upscaler, "_run_tiles", record_only)
    src = tmp_path / "photo.png"
    Image.fromarray(_photo(500, 500)).save(src)
    code = _upscale(str(src), "-o", str(tmp_path / "out"), "--device", "cpu", "--tile", "auto")
    captured = capsys.readouterr()
    assert code == 1  # the simulated out-of-memory ends each try
    # dmsr-x4 with 500x500 ran in one 440-px window set (tile 408; 5.9 GB peak); now tiles of at most 160
    assert seen and seen[0] is not None and seen[0] <= 160, seen
    assert "tile: auto = 160 px" in captured.out


# ------------------------------------------------------------------------------------------------ suffix


@pytest.mark.parametrize("suffix", ["/../../x", "_out/../../x", "a\\b", ".."])
def test_suffixes_with_path_separators_are_refused(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    src = tmp_path / "in" / "photo.png"
    src.parent.mkdir()
    Image.fromarray(_photo(16, 16)).save(src)
    out = tmp_path / "deep" / "er" / "out"
    out.parent.mkdir(parents=True)
    before = {p for p in tmp_path.rglob("*")}
    assert _upscale(str(src), "-o", str(out), "-m", model, "--suffix", suffix) == 2
    err = capsys.readouterr().err
    assert "--suffix" in err and "path separator" in err and len(err.strip().splitlines()) == 1
    assert {p for p in tmp_path.rglob("*")} == before  # nothing written anywhere


def test_ordinary_suffixes_still_work(tmp_path: Path, model: str) -> None:
    src = tmp_path / "photo.png"
    Image.fromarray(_photo(16, 16)).save(src)
    assert _upscale(str(src), "-o", str(tmp_path / "out"), "-m", model, "--suffix=-x2.v1") == 0
    assert (tmp_path / "out" / "photo-x2.v1.png").is_file()
