"""blindsr.inference: tiled vs whole-image inference, one degradation estimate per image, input kinds, options."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import blindsr
import blindsr.archs.dmsr as dmsr_arch
import blindsr.inference.upscaler as upscaler_module
from blindsr.archs import PlainAdapter, constructor_kwargs
from blindsr.archs.dmsr import DMSRAdapter, GlobalChannelAttention
from blindsr.data.images import read_image
from blindsr.data.user_images import LoadedImage
from blindsr.inference import (
    Upscaler,
    UpscaleResult,
    kernel_image,
    noise_image,
    resolve_device,
)
from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.layers.rcan import ResidualGroup
from blindsr.nets.toy import ToySR
from blindsr.ops.resize import imresize
from blindsr.ops.tiling import merge_tiles, plan_tiles, window
from blindsr.zoo import load_model, save_release

BOUND = 2 / 255  # tiled vs whole image, the acceptance bound

DMSR_KWARGS: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_groups": 1, "n_blocks": 2, "extractor_channels": 8}


@pytest.fixture(scope="module")
def dmsr_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random DMSR x2 release file, as users get one (fp16 weights in a safetensors file)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("models") / "dmsr-tiny.safetensors"
    save_release(DMSRNet(**DMSR_KWARGS), path, arch="dmsr", arch_kwargs=DMSR_KWARGS, scale=2)
    return path


@pytest.fixture(scope="module")
def whole(dmsr_file: Path) -> Upscaler:
    return Upscaler(dmsr_file, device="cpu")


def _lr(h: int = 70, w: int = 90, seed: int = 0) -> torch.Tensor:
    # smooth content plus noise: closer to a photo than pure noise, so the estimates are not degenerate
    g = torch.Generator().manual_seed(seed)
    base = imresize(torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g), size=(h, w))
    return (base + 0.05 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)[0]


# ------------------------------------------------------------------------------------------------ tiling


@pytest.mark.parametrize("tile", [16, 32, 48])
def test_tiled_matches_whole_image_within_2_over_255(dmsr_file: Path, whole: Upscaler, tile: int) -> None:
    lr = _lr()  # 70x90: ragged edge tiles for every tile size
    reference = whole.upscale_with_degradation(lr)
    tiled = Upscaler(dmsr_file, device="cpu", tile=tile).upscale_with_degradation(lr)
    assert tiled.tile == tile and reference.tile is None
    assert tiled.image.shape == reference.image.shape == (3, 140, 180)
    assert float((tiled.image - reference.image).abs().max()) <= BOUND
    # tile_pad 16 >= the blur branch's radius 7 and the noise branch's radius 6: both estimates are exact
    assert tiled.kernel is not None and reference.kernel is not None
    np.testing.assert_allclose(tiled.kernel, reference.kernel, atol=1e-6)
    assert tiled.noise is not None and reference.noise is not None
    np.testing.assert_allclose(tiled.noise, reference.noise, atol=1e-5)


def test_the_kernel_is_estimated_once_for_the_whole_image(dmsr_file: Path) -> None:
    up = Upscaler(dmsr_file, device="cpu", tile=32)
    up._bytes_per_pixel()  # the memory model's probe (one 32x32 pass per Upscaler) runs before the first image
    net = up.model.model
    assert isinstance(net, DMSRNet)
    calls: list[tuple[int, ...]] = []
    handle = net.extractor.blur_branch.register_forward_hook(lambda m, a, o: calls.append(tuple(o.shape)))
    try:
        lr = _lr()
        result = up.upscale_with_degradation(lr)
    finally:
        handle.remove()
    # one blur-branch pass per window, all in the estimate phase; the restore phase never re-estimates
    assert len(calls) == len(plan_tiles(70, 90, tile=32, pad=16)) == 9
    with torch.no_grad():
        expected = net.extractor(lr[None])[0][0].numpy()
    assert result.kernel is not None and result.kernel.shape == (15, 15)
    np.testing.assert_allclose(result.kernel, expected, atol=1e-6)
    assert abs(float(result.kernel.sum()) - 1) < 1e-5


def test_without_context_the_tiles_still_share_one_kernel(dmsr_file: Path, whole: Upscaler) -> None:
    lr = _lr()
    no_pad = Upscaler(dmsr_file, device="cpu", tile=32, tile_pad=0).upscale_with_degradation(lr)
    reference = whole.upscale_with_degradation(lr)
    assert no_pad.kernel is not None and reference.kernel is not None
    # border context is missing, so the pooled logits move a little, but there is one kernel, close to the whole
    assert 0 < float(np.abs(no_pad.kernel - reference.kernel).max()) < 1e-2


def test_global_channel_attention_makes_tiles_match_the_whole_image() -> None:
    torch.manual_seed(0)
    group = ResidualGroup(channels=8, n_blocks=2, reduction=2).eval()  # 2 attention layers, receptive radius 5
    x = torch.randn(1, 8, 40, 40)
    x[:, :, :, 20:] += 3.0  # the halves have very different channel means
    tiles = plan_tiles(40, 40, tile=12, pad=8)  # context 8 >= 5: only the attention can differ
    attention = GlobalChannelAttention(group)
    with torch.no_grad():
        whole = group(x)

        def tiled_error(passes: int) -> float:
            attention.means = None
            with attention.hooks():
                for _ in range(passes):
                    for t in tiles:
                        with attention.record(t):
                            group(window(x, t))
                    attention.finish(40, 40)
                merged = merge_tiles((group(window(x, t)) for t in tiles), tiles, height=40, width=40)
            return float((merged - whole).abs().max())

        errors = [tiled_error(p) for p in range(3)]
    assert len(attention) == 2
    assert errors[0] > 1e-3  # tile-local means
    assert errors[1] < errors[0] / 100  # first layer exact, the second from tile-local upstream gates: close
    assert errors[2] < 1e-5  # one pass per layer: every mean exact, up to float summation order


def test_global_channel_attention_leaves_other_threads_alone() -> None:
    group = ResidualGroup(channels=8, n_blocks=1, reduction=2).eval()
    x = torch.randn(1, 8, 12, 12)
    attention = GlobalChannelAttention(group)
    attention.means = [torch.full((1, 8, 1, 1), 5.0)]
    results: dict[str, torch.Tensor] = {}
    with torch.no_grad(), attention.hooks():
        worker = threading.Thread(target=lambda: results.setdefault("other", group(x)))
        worker.start()
        worker.join()
        results["own"] = group(x)
    with torch.no_grad():
        assert torch.equal(results["other"], group(x))
    assert not torch.equal(results["own"], results["other"])


def test_the_shipped_model_tiled_within_2_over_255(monkeypatch: pytest.MonkeyPatch) -> None:
    hr = read_image(Path(blindsr.__file__).parent / "assets" / "samples" / "camera.png")[None]
    lr = imresize(hr, scale=1 / 4)[0, :, 8:56, 8:56].clamp(0, 1)  # 48x48 LR
    reference = Upscaler("dmsr-x4", device="cpu").upscale(lr)
    up = Upscaler("dmsr-x4", device="cpu", tile=16, tile_pad=8)  # 9 tiles, 32x32 windows
    result = up.upscale_with_degradation(lr)
    assert result.tile == 16
    assert float((result.image - reference).abs().max()) <= BOUND
    # what the whole-image channel statistics buy: tile-local gates of the trained RCAN body are visibly off
    monkeypatch.setattr(dmsr_arch, "ATTENTION_PASSES", 0)
    assert float((up.upscale(lr) - reference).abs().max()) > 3 * BOUND


def test_a_convolutional_network_is_exact_under_tiling(tmp_path: Path) -> None:
    torch.manual_seed(0)
    toy = ToySR(scale=2, n_feats=8, n_blocks=2)
    torch.nn.init.normal_(toy.tail.weight, std=0.1)  # not a plain bicubic
    kwargs = {"scale": 2, "n_feats": 8, "n_blocks": 2}
    save_release(toy, tmp_path / "toy.safetensors", arch="toy_sr", arch_kwargs=kwargs, scale=2)
    lr = _lr(40, 52)
    reference = Upscaler(tmp_path / "toy.safetensors", device="cpu").upscale(lr)
    tiled = Upscaler(tmp_path / "toy.safetensors", device="cpu", tile=16).upscale_with_degradation(lr)
    assert isinstance(Upscaler(tmp_path / "toy.safetensors", device="cpu")._adapter, PlainAdapter)
    assert tiled.kernel is None and tiled.noise is None and tiled.idr is None
    assert float((tiled.image - reference).abs().max()) < 1e-5  # receptive field < tile_pad: no difference


# ------------------------------------------------------------------------------------------------ tile="auto"


def test_auto_tile_follows_the_memory_budget(dmsr_file: Path, whole: Upscaler, monkeypatch: pytest.MonkeyPatch) -> None:
    lr = _lr(64, 64)
    reference = whole.upscale(lr)
    per_pixel = Upscaler(dmsr_file, device="cpu", tile="auto")._bytes_per_pixel()
    assert per_pixel > 0
    monkeypatch.setattr(upscaler_module, "available_memory", lambda device: int(per_pixel * 56 * 56))
    small = Upscaler(dmsr_file, device="cpu", tile="auto")
    assert small.tile == 24  # a 56x56 window, minus 2 x 16 context, rounded down to a multiple of 8
    result = small.upscale_with_degradation(lr)
    assert result.tile == 24
    assert float((result.image - reference).abs().max()) <= BOUND
    monkeypatch.setattr(upscaler_module, "available_memory", lambda device: 1 << 40)
    assert Upscaler(dmsr_file, device="cpu", tile="auto").upscale_with_degradation(lr).tile is None


def test_out_of_memory_halves_the_auto_tile_and_retries(
    dmsr_file: Path, whole: Upscaler, monkeypatch: pytest.MonkeyPatch
) -> None:
    lr = _lr(64, 64)
    reference = whole.upscale(lr)
    real = DMSRAdapter.restore_tile

    def restore_small_windows_only(self: DMSRAdapter, window: torch.Tensor, tile: Any, state: Any) -> Any:
        if max(window.shape[-2:]) > 48:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, window, tile, state)

    monkeypatch.setattr(DMSRAdapter, "restore_tile", restore_small_windows_only)
    monkeypatch.setattr(upscaler_module, "available_memory", lambda device: 1 << 40)
    up = Upscaler(dmsr_file, device="cpu", tile="auto")
    with pytest.warns(UserWarning, match="out of memory") as record:
        result = up.upscale_with_degradation(lr)
    assert len(record) == 2  # whole image (64) -> 32 -> 16: windows 64, 64 (32 + 2 x 16), then 48
    assert result.tile == up.tile == 16
    assert float((result.image - reference).abs().max()) <= BOUND
    with pytest.raises(torch.OutOfMemoryError):
        Upscaler(dmsr_file, device="cpu", tile=32).upscale(lr)  # a fixed tile is not changed behind the user's back


# ------------------------------------------------------------------------------------------------ outscale


def test_outscale_resizes_the_native_output_with_matlab_bicubic(dmsr_file: Path, whole: Upscaler) -> None:
    lr = _lr(10, 13)
    native = whole.upscale(lr)
    up = Upscaler(dmsr_file, device="cpu", outscale=1.5)
    out = up.upscale(lr)
    assert out.shape == (3, 15, 20)  # round(13 x 1.5) = round(19.5) = 20, half up
    expected = imresize(native[None], size=(15, 20))[0].clamp(0, 1)
    assert float((out - expected).abs().max()) < 1e-5
    assert up.outscale == 1.5 and up.scale == 2
    assert Upscaler(dmsr_file, device="cpu", outscale=2).upscale(lr).shape == (3, 20, 26)
    for bad in (0, -1, 16.5, float("nan")):
        with pytest.raises(ValueError, match="outscale"):
            Upscaler(dmsr_file, device="cpu", outscale=bad)


# ------------------------------------------------------------------------------------------------ device, precision


def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning(dmsr_file: Path) -> None:
    with pytest.warns(UserWarning, match="fp16 is not supported on the CPU"):
        up = Upscaler(dmsr_file, device="cpu", precision="fp16")
    assert up.precision == "fp32"


def test_bf16_runs_close_to_fp32(dmsr_file: Path, whole: Upscaler) -> None:
    lr = _lr(24, 24)
    up = Upscaler(dmsr_file, device="cpu", precision="bf16", tile=16)
    assert up.precision == "bf16"
    out = up.upscale(lr)
    assert out.dtype == torch.float32 and float((out - whole.upscale(lr)).abs().max()) < 0.1


def test_bad_device_and_precision_are_one_line_value_errors(dmsr_file: Path) -> None:
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        Upscaler(dmsr_file, device="gpu0")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        Upscaler(dmsr_file, device="cpu", precision="fp8")  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Upscaler(dmsr_file, device="cuda")
    for tile in (-1, 4, "big", 2.5):
        with pytest.raises(ValueError, match="tile"):
            Upscaler(dmsr_file, device="cpu", tile=tile)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tile_pad"):
        Upscaler(dmsr_file, device="cpu", tile_pad=-1)
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


def test_a_loaded_model_and_a_name_are_accepted(dmsr_file: Path) -> None:
    loaded = load_model(dmsr_file)
    up = Upscaler(loaded, device="cpu")
    assert up.model is loaded and up.scale == 2 and up.device == torch.device("cpu")
    with pytest.raises(KeyError):
        Upscaler("no-such-model-x4", device="cpu")


# ------------------------------------------------------------------------------------------------ input kinds


def test_tensors_keep_their_shape_dtype_and_batch(whole: Upscaler) -> None:
    batch = torch.stack([_lr(16, 20, seed=1), _lr(16, 20, seed=2)])
    out = whole.upscale(batch)
    assert out.shape == (2, 3, 32, 40)
    assert torch.allclose(out[1], whole.upscale(batch[1]), atol=1e-6)
    assert whole.upscale(batch[0].double()).dtype == torch.float64
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    with pytest.raises(ValueError, match="one image"):
        whole.upscale_with_degradation(batch)
    with pytest.raises(ValueError, match=r"\(3, h, w\) or \(B, 3, h, w\)"):
        whole.upscale(torch.rand(4, 16, 16))
    with pytest.raises(ValueError, match="at least 8 px"):
        whole.upscale(torch.rand(3, 7, 30))
    with pytest.raises(TypeError, match="cannot upscale a list"):
        whole.upscale([1, 2, 3])


def test_gray_images_come_back_gray(whole: Upscaler) -> None:
    gray = (_lr(12, 14)[0].numpy() * 255).round().astype(np.uint8)
    out = whole.upscale(gray)
    assert out.dtype == np.uint8 and out.shape == (24, 28)
    rgb = whole.upscale(torch.from_numpy(gray).float().div(255).expand(3, -1, -1))
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    assert int(np.abs(out.astype(int) - np.floor(luma.numpy() * 255 + 0.5).astype(int)).max()) <= 1
    assert whole.upscale(gray[:, :, None]).shape == (24, 28, 1)
    pil = whole.upscale(Image.fromarray(gray))
    assert pil.mode == "L" and pil.size == (28, 24)


def test_alpha_is_upscaled_with_bicubic_and_colour_with_the_model(whole: Upscaler) -> None:
    rgba = np.concatenate(
        [(_lr(12, 14).permute(1, 2, 0).numpy() * 65535).astype(np.uint16), np.full((12, 14, 1), 65535, np.uint16)],
        axis=2,
    )
    rgba[3:9, 4:10, 3] = 0
    out = whole.upscale(rgba)
    assert out.dtype == np.uint16 and out.shape == (24, 28, 4)
    alpha = torch.from_numpy(rgba[:, :, 3].astype(np.float32) / 65535)[None, None]
    expected_alpha = np.floor(imresize(alpha, scale=2)[0, 0].clamp(0, 1).numpy() * 65535 + 0.5)
    assert np.array_equal(out[:, :, 3], expected_alpha.astype(np.uint16))
    colour = whole.upscale(torch.from_numpy(rgba[:, :, :3].astype(np.float32) / 65535).permute(2, 0, 1))
    assert np.abs(out[:, :, :3] / 65535 - colour.permute(1, 2, 0).numpy()).max() < 1e-4


def test_pil_modes_and_float_arrays(whole: Upscaler) -> None:
    rgb = (_lr(12, 14).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    for mode in ("RGB", "RGBA", "LA"):
        pil = Image.fromarray(rgb).convert(mode)
        assert whole.upscale(pil).mode == mode
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    assert whole.upscale(palette).mode == "RGB"
    as_float = whole.upscale(rgb.astype(np.float32) / 255)
    assert as_float.dtype == np.float32 and as_float.shape == (24, 28, 3)
    assert float(as_float.min()) >= 0 and float(as_float.max()) <= 1


def test_loaded_images_keep_their_metadata(whole: Upscaler) -> None:
    image = LoadedImage(rgb=_lr(12, 14), alpha=None, mode="rgb", bit_depth=16, format="PNG", icc_profile=b"icc")
    result = whole.upscale_with_degradation(image)
    assert isinstance(result, UpscaleResult) and isinstance(result.image, LoadedImage)
    assert (result.image.height, result.image.width, result.image.bit_depth) == (24, 28, 16)
    assert result.image.icc_profile == b"icc"
    assert result.noise is not None and result.noise.shape == (12, 14, 3) and result.noise.dtype == np.float32


# ------------------------------------------------------------------------------------------------ visualisation, API


def test_kernel_and_noise_pictures() -> None:
    kernel = np.zeros((15, 15), dtype=np.float32)
    kernel[7, 7], kernel[0, 0] = 0.8, 0.2
    img = kernel_image(kernel, size=150)
    assert img.shape == (150, 150, 3) and img.dtype == np.uint8
    assert img[75, 75].tolist() == [252, 255, 164] and img[149, 149].tolist() == [0, 0, 4]
    assert img[0, 0].sum() < img[75, 75].sum()  # 0.2 of the peak: darker
    assert np.array_equal(kernel_image(kernel, size=15, colormap=False)[7, 7], [255, 255, 255])
    noise = np.zeros((4, 5, 3), dtype=np.float32)
    noise[0, 0] = 0.1
    pic = noise_image(noise)
    assert pic.shape == (4, 5, 3) and pic[1, 1].tolist() == [128] * 3 and pic[0, 0].tolist() == [230] * 3
    with pytest.raises(ValueError, match="kernel"):
        kernel_image(np.zeros(5))


def test_public_api_is_lazy_and_light() -> None:
    assert blindsr.Upscaler is Upscaler
    code = "import sys, blindsr.inference; print('PIL' in sys.modules, 'safetensors' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_no_warnings_on_the_default_path(dmsr_file: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Upscaler(dmsr_file, device="cpu", tile=16).upscale(_lr(20, 20))


def test_mrda_student_estimates_its_idr_once_and_tiles_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from blindsr.archs import mrda as adapters
    from blindsr.nets.mrda import MRDAStudent

    torch.manual_seed(0)
    kwargs = {"scale": 2, "n_feats": 8, "n_blocks": 2, "den_channels": 8, "idr_dim": 16}
    net = MRDAStudent(**constructor_kwargs("mrda_s", kwargs))
    path = tmp_path / "mrda.safetensors"
    save_release(net, path, arch="mrda_s", arch_kwargs=kwargs, scale=2, half=False)
    image = np.random.default_rng(0).random((37, 45, 3)).astype(np.float32)
    whole = Upscaler(str(path), tile=None, device="cpu").upscale_with_degradation(image)
    calls: list[tuple[int, ...]] = []
    den = net.den.__class__.forward

    def counting(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return den(self, x)  # type: ignore[arg-type]

    tiled_upscaler = Upscaler(str(path), tile=16, tile_pad=8, device="cpu")
    assert tiled_upscaler.tile == 16  # also measures the memory model (a probe pass), before counting
    monkeypatch.setattr(net.den.__class__, "forward", counting)
    tiled = tiled_upscaler.upscale_with_degradation(image)
    assert calls == [(1, 3, 37, 45)]  # one IDR, from the whole image
    assert whole.idr is not None and tiled.idr is not None and whole.idr.shape == (16,)
    np.testing.assert_allclose(tiled.idr, whole.idr, atol=1e-6)
    assert np.abs(tiled.image - whole.image).max() <= 2 / 255
    # a huge image's IDR comes from a downscaled copy
    monkeypatch.setattr(adapters, "MRDA_IDR_PIXELS", 400)
    calls.clear()
    tiled_upscaler.upscale_with_degradation(image)
    assert len(calls) == 1 and calls[0][2] * calls[0][3] <= 440


# ------------------------------------------------------------------------------------------------ progress, defaults


def test_the_progress_callback_sees_every_tile_and_changes_nothing(dmsr_file: Path) -> None:
    up = Upscaler(dmsr_file, device="cpu", tile=32)
    lr = _lr()  # 70x90 at tile 32: 3 x 3 tiles
    plain = up.upscale_with_degradation(lr)
    calls: list[tuple[int, int]] = []
    reported = up.upscale_with_degradation(lr, progress=lambda done, total: calls.append((done, total)))
    n = len(plan_tiles(70, 90, tile=32, pad=16))
    assert n == 9 and calls == [(i, n) for i in range(n + 1)]  # (0, 9) after the estimate, then after each tile
    assert torch.equal(plain.image, reported.image)
    assert plain.kernel is not None and reported.kernel is not None and np.array_equal(plain.kernel, reported.kernel)
    # numpy output (assembled into uint8 pixels), with the cancel hook as well: the same bytes
    pixels = (lr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    counted: list[int] = []
    with_both = up.upscale_with_degradation(pixels, cancel=lambda: False, progress=lambda d, t: counted.append(d))
    assert counted == list(range(n + 1)) and np.array_equal(with_both.image, up.upscale(pixels))
    # whole images report one tile; the memory probe of "auto" is not reported as the caller's tiles
    auto: list[tuple[int, int]] = []
    Upscaler(dmsr_file, device="cpu", tile="auto").upscale_with_degradation(
        lr, progress=lambda d, t: auto.append((d, t))
    )
    assert auto == [(0, 1), (1, 1)]
    with pytest.raises(TypeError, match="progress must be a callable"):
        up.upscale_with_degradation(lr, progress=3)  # type: ignore[arg-type]


def test_the_default_tile_is_auto_as_for_the_command(dmsr_file: Path) -> None:
    import inspect

    assert inspect.signature(Upscaler).parameters["tile"].default == "auto"
    default, whole_image = Upscaler(dmsr_file, device="cpu"), Upscaler(dmsr_file, device="cpu", tile=None)
    assert default.auto_tile and not whole_image.auto_tile
    lr = _lr()
    result = default.upscale_with_degradation(lr)  # fits in memory: one piece, the same output as tile=None
    assert result.tile is None and torch.equal(result.image, whole_image.upscale(lr))
