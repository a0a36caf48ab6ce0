"""blindsr.inference memory: the estimate and limit, integer outputs without full-size float buffers (bit for bit
what quantising the float output gives), and tile="auto" bounded on the CPU."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import blindsr.inference.upscaler as upscaler_module
from blindsr.data.user_images import LoadedImage, loaded_from_array, loaded_to_array
from blindsr.inference import Upscaler
from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.toy import ToySR
from blindsr.zoo import save_release

DMSR_KWARGS: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_groups": 1, "n_blocks": 1, "extractor_channels": 8}


@pytest.fixture(scope="module")
def dmsr_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("models") / "dmsr-tiny.safetensors"
    save_release(DMSRNet(**DMSR_KWARGS), path, arch="dmsr", arch_kwargs=DMSR_KWARGS, scale=2)
    return path


@pytest.fixture(scope="module")
def bicubic_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ToySR as initialised: exactly MATLAB bicubic, so gray in gives R = G = B out."""
    torch.manual_seed(2)
    kwargs = {"scale": 2, "n_feats": 4, "n_blocks": 1}
    path = tmp_path_factory.mktemp("models") / "bicubic.safetensors"
    save_release(ToySR(**kwargs), path, arch="toy_sr", arch_kwargs=kwargs, scale=2, half=False)
    return path


def _photo(h: int, w: int, channels: int, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x / w + y / h) / 2, y / h, x / w, 1 - x / w], axis=2)[:, :, :channels]
    values = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    if dtype == np.float32:
        return values.astype(np.float32)[:, :, 0] if channels == 1 else values.astype(np.float32)
    peak = 255 if dtype == np.uint8 else 65535
    pixels: np.ndarray = np.floor(values * peak + 0.5).astype(dtype)
    return pixels[:, :, 0] if channels == 1 else pixels


class _LargestFloatImage(TorchDispatchMode):
    """Records the largest spatial size (H x W) of any floating-point tensor a torch op creates (activations of a
    window have many channels but a window's size; a whole-image float canvas has the output's size)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.ndim >= 2:
                self.largest = max(self.largest, int(t.shape[-2]) * int(t.shape[-1]))
        return out


# ------------------------------------------------------------------------------------------------ integer outputs


def test_uint8_outputs_are_assembled_without_a_full_size_float32_buffer(dmsr_file: Path) -> None:
    up = Upscaler(dmsr_file, device="cpu", tile=32, tile_pad=8)
    image = _photo(192, 192, 3)
    up.upscale(image[:40, :40])  # the memory model's probe and first-call allocations, outside the measurement
    full_float = 3 * 384 * 384 * 4  # what a float32 RGB canvas of the output takes
    tracemalloc.start()  # numpy's allocations (the io module's quantisation works in numpy)
    try:
        out = up.upscale(image)
        _, numpy_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (384, 384, 3) and out.dtype == np.uint8
    # the uint8 output (1/4 of a float canvas) and the float32 input's conversions (1/4 each): no float output
    assert numpy_peak < full_float, f"numpy peaked at {numpy_peak:,} bytes"
    mode = _LargestFloatImage()  # torch's allocations
    with mode:
        again = up.upscale(image)
    assert np.array_equal(again, out)
    # nothing float is larger than the (float32) input: the output is never held in float32
    assert mode.largest <= 192 * 192, f"a float tensor of {mode.largest:,} pixels (the output has 384 x 384)"


_KINDS = [(1, np.uint8), (2, np.uint8), (3, np.uint8), (4, np.uint8), (1, np.uint16), (3, np.uint16), (4, np.float32)]


@pytest.mark.parametrize(
    ("tile", "outscale", "channels", "dtype"),
    [
        *((16, None, c, d) for c, d in _KINDS),  # every kind, tiled
        (None, None, 3, np.uint8),  # whole image
        (None, None, 1, np.uint16),
        (24, 1.5, 4, np.uint8),  # resized by outscale: strips
        (24, 1.5, 3, np.uint16),
        (24, 1.5, 1, np.uint8),
    ],
)
def test_integer_outputs_are_bit_identical_to_quantising_the_float_output(
    dmsr_file: Path, tile: int | None, outscale: float | None, channels: int, dtype: type
) -> None:
    up = Upscaler(dmsr_file, device="cpu", tile=tile, outscale=outscale)
    array = _photo(40, 52, channels, dtype)
    reference = loaded_to_array(up.upscale(loaded_from_array(array)))  # float canvas, then the io module quantises
    result = up.upscale_with_degradation(array)
    assert result.tile == tile
    assert result.image.dtype == reference.dtype and result.image.shape == reference.shape
    assert np.array_equal(result.image, reference)


@pytest.mark.parametrize("pil_mode", ["L", "LA", "RGB", "RGBA", "I;16"])
def test_pil_outputs_are_bit_identical_to_quantising_the_float_output(dmsr_file: Path, pil_mode: str) -> None:
    from blindsr.data.user_images import loaded_from_pil, loaded_to_pil

    up = Upscaler(dmsr_file, device="cpu", tile=16)
    if pil_mode == "I;16":
        pil = Image.fromarray(_photo(36, 44, 1, np.uint16))
    else:
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[pil_mode]
        pixels = _photo(36, 44, channels)
        pil = Image.fromarray(pixels, mode=pil_mode)
    pil.info["icc_profile"] = b"not really a profile"
    reference = loaded_to_pil(up.upscale(loaded_from_pil(pil)))
    out = up.upscale(pil)
    assert out.mode == reference.mode and out.size == reference.size == (88, 72)
    assert np.array_equal(np.array(out), np.array(reference))
    assert out.info.get("icc_profile") == b"not really a profile"


def test_gray_from_an_exactly_gray_output_is_bit_identical(bicubic_file: Path) -> None:
    up = Upscaler(bicubic_file, device="cpu", tile=16)
    for array in (_photo(40, 44, 1), _photo(40, 44, 2)):  # bicubic keeps R = G = B: the one-channel rule applies
        reference = loaded_to_array(up.upscale(loaded_from_array(array)))
        assert np.array_equal(up.upscale(array), reference)


def test_gray_pieces_follow_the_whole_image_rule() -> None:
    # 0.32745099 quantises to 84, while its BT.601 luma (of R = G = B) quantises to 83: a piece that is exactly
    # gray must follow the decision for the whole image, not its own
    value = 0.32745099
    equal = torch.full((3, 8, 8), value)
    mixed = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    for whole in (torch.cat([equal, equal], dim=2), torch.cat([equal, mixed], dim=2), torch.cat([mixed, equal], 2)):
        pixels = upscaler_module._Pixels(8, 16, "gray", 8)
        pixels.paste(whole[:, :, :8], 0, 0)
        pixels.paste(whole[:, :, 8:], 0, 8)
        expected = loaded_to_array(LoadedImage(rgb=whole, alpha=None, mode="gray", bit_depth=8))
        assert np.array_equal(pixels.result(), expected)


# ------------------------------------------------------------------------------------------------ the limit


def test_an_image_above_max_memory_is_refused_before_its_output_exists(
    dmsr_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Upscaler._run_tiles

    def small_runs_only(self: Upscaler, lr: torch.Tensor, tile: int | None, **kwargs: Any) -> Any:
        assert lr.shape[-1] <= 64, "the job ran (and allocated its output) although it is above the limit"
        return real(self, lr, tile, **kwargs)

    monkeypatch.setattr(Upscaler, "_run_tiles", small_runs_only)
    up = Upscaler(dmsr_file, device="cpu", tile="auto", max_memory="20M")
    assert up.max_memory == 20_000_000
    with pytest.raises(ValueError, match="max_memory") as info:
        up.upscale(np.zeros((1000, 1000, 3), np.uint8))
    message = str(info.value)
    assert "\n" not in message and message.startswith("needs about ") and "above the limit of 20.0 MB" in message
    assert "1000x1000 px at x2 = 2000x2000: output 12.0 MB" in message  # uint8 RGB, not float32
    assert message.endswith("raise it with max_memory or use a smaller outscale")
    assert isinstance(info.value, upscaler_module.MemoryLimitError)
    assert info.value.estimate.total > 20_000_000
    assert up.upscale(np.zeros((16, 16, 3), np.uint8)).shape == (32, 32, 3)  # small ones still run


def test_the_default_limit_follows_the_available_ram(dmsr_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Upscaler._run_tiles

    def small_runs_only(self: Upscaler, lr: torch.Tensor, tile: int | None, **kwargs: Any) -> Any:
        assert lr.shape[-1] <= 64, "the job ran (and allocated its output) although it does not fit in memory"
        return real(self, lr, tile, **kwargs)

    monkeypatch.setattr(Upscaler, "_run_tiles", small_runs_only)
    monkeypatch.setattr(upscaler_module, "_system_available_ram", lambda: 100_000_000)
    up = Upscaler(dmsr_file, device="cpu", tile=64)
    with pytest.raises(ValueError, match=r"needs about .* above the limit of 75\.0 MB"):
        up.upscale(np.zeros((1000, 1000, 3), np.uint8))
    with pytest.raises(ValueError, match="above the limit"):
        up.upscale(torch.zeros(3, 1000, 1000))


def test_the_estimate_counts_outputs_at_their_dtype(dmsr_file: Path) -> None:
    up = Upscaler(dmsr_file, device="cpu", tile=64)
    as_float = up.memory_estimate(1000, 1000, output="loaded")
    as_uint8 = up.memory_estimate(1000, 1000, output="array")
    assert as_float.output == 2000 * 2000 * 12  # float32 RGB
    assert as_uint8.output == 2000 * 2000 * 3  # uint8 RGB, assembled tile by tile
    assert as_uint8.tiles == as_float.tiles > 0 and as_uint8.input == as_float.input > 0
    resized = Upscaler(dmsr_file, device="cpu", tile=64, outscale=3).memory_estimate(1000, 1000, output="array")
    assert resized.output > 2000 * 2000 * 12  # the native float canvas and the resize's buffers count too
    assert up.memory_estimate(1000, 1000, extra_per_pixel=10.0).extra == 2000 * 2000 * 10


def test_memory_sizes_parse_and_bad_ones_are_one_line_value_errors(dmsr_file: Path) -> None:
    parse = upscaler_module.parse_memory_size
    assert parse("8G") == 8 * 10**9 and parse("1.5GB") == 1_500_000_000 and parse("512MiB") == 512 << 20
    assert parse(" 64k ") == 64_000 and parse(4096) == 4096
    for bad in ("", "lots", "-1G", "0", "8X"):
        with pytest.raises(ValueError, match="memory size"):
            parse(bad)
    with pytest.raises(ValueError, match="memory size"):
        Upscaler(dmsr_file, device="cpu", max_memory="eight gigs")


# ---------------------------------------------------------------------------------------- tile="auto" on the CPU


def test_auto_tile_bounds_the_working_set_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upscaler_module, "_system_available_ram", lambda: 1 << 40)  # 1 TiB free
    up = Upscaler("dmsr-x4", device="cpu", tile="auto")
    assert up.tile is not None
    window = (up.tile + 2 * up.tile_pad) ** 2
    assert window * up._bytes_per_pixel() <= 1.5 * 2**30  # modelled; the measured peak is about 2/3 of it
    assert up._tile_for_image(500, 500) is not None  # a 500x500 input is tiled (it ran whole in 5.9 GB before)
    assert up._tile_for_image(100, 100) is None  # small images still run whole
    # a smaller limit gives smaller tiles
    small = Upscaler("dmsr-x4", device="cpu", tile="auto", max_memory="1G")
    assert small.tile is not None and small.tile < up.tile
    assert (small.tile + 2 * small.tile_pad) ** 2 * small._bytes_per_pixel() <= 0.25e9
