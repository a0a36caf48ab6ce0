"""The ``make demo`` walk-through: upscale the bundled samples and run a synthetic round trip with metrics.

The model is MATLAB-exact bicubic upscaling (:func:`blindsr.ops.resize.bicubic_upscale`): the zoo's trained models
are small CPU-trained networks for blurred and noisy inputs, and ``dmsr-x4`` loses to bicubic on clean photos such as
these samples (``docs/results.md``). The demo says so in its console output and report.

:func:`run_demo` does two things with the four public-domain / CC0 images in ``blindsr/assets/samples`` (see
``LICENSES.md`` there):

1. **Upscaling**: each sample is treated as a real low-resolution photo and upscaled ×`scale` to
   ``<out_dir>/upscaled/<stem>_x<scale>.png`` (gray samples stay one-channel gray PNGs).
2. **Synthetic round trip**: each sample is treated as HR, modcropped, degraded with three settings of the
   ``dmsr-grid`` evaluation preset (``k0.2-n0``, ``k1.3-n15``, ``k2.6-n50``: Gaussian blur σ, then noise σ on the
   0-255 scale, seeded per image so the numbers are reproducible), upscaled back with bicubic and scored with
   PSNR/SSIM under the ``sr-y`` protocol (MATLAB Y, ``scale``-pixel border crop, 8-bit). For each (image, setting)
   it writes the clipped LR preview ``<stem>_<label>_lr.png`` and a comparison
   ``<stem>_<label>_compare.png`` (LR nearest-upsampled | bicubic SR | HR) to ``<out_dir>/roundtrip/``.

Everything is summarised in ``<out_dir>/report.md`` and on the console. Run it with::

    python -m blindsr.demo --out-dir demo_out [--scale 4] [--device cpu]

or from Python:

>>> from pathlib import Path
>>> report = run_demo(out_dir=Path("demo_out"), scale=4)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

__all__ = ["MODEL_NOTE", "ROUNDTRIP_LABELS", "run_demo", "sample_paths"]

MODEL_NAME = "bicubic (MATLAB-exact)"
MODEL_NOTE = (
    "Using MATLAB-exact bicubic, the safe choice for clean photos such as these samples: the zoo's trained models "
    "(dmsr-x4, mrda-x4, mrda-x4-aniso: small CPU-trained DMSR and MRDA) are trained for blurred and noisy inputs, "
    "where they beat bicubic, and dmsr-x4 loses 0.2-0.5 dB to it on clean ones (docs/results.md). Try them with "
    "`blindsr upscale -m mrda-x4 PHOTO`. Paper-scale weights come later."
)
PRESET_NAME = "dmsr-grid"
ROUNDTRIP_LABELS: tuple[str, ...] = ("k0.2-n0", "k1.3-n15", "k2.6-n50")
"""The ``dmsr-grid`` settings of the round trip: kernel σ 0.2 / 1.3 / 2.6 with noise 0 / 15 / 50 (0-255 scale)."""
DATASET_NAME = "samples"  # part of the noise seed of each (image, setting) cell
_GAP = 4  # white pixels between the panels of a comparison image


@dataclass(frozen=True)
class _UpscaleRow:
    name: str
    in_size: tuple[int, int]  # (H, W)
    out_size: tuple[int, int]
    channels: int
    ms: float


@dataclass(frozen=True)
class _RoundTripRow:
    stem: str
    label: str
    hr_size: tuple[int, int]
    lr_size: tuple[int, int]
    psnr: float
    ssim: float


def sample_paths() -> list[Path]:
    """The bundled sample images (``blindsr/assets/samples/*.png``), sorted by name.

    Raises:
        FileNotFoundError: the samples are missing from the installation.
    """
    from blindsr.data.io import list_images

    folder = Path(str(resources.files("blindsr").joinpath("assets", "samples")))
    paths = list_images(folder) if folder.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"no bundled sample images found in {folder}; is the blindsr installation complete?")
    return paths


def _resolve_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"invalid device {device!r}: {error}") from error
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available; use device='cpu'")
    return dev


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _is_gray(image: torch.Tensor) -> bool:
    """True when the three channels of a (3, H, W) image are identical (a gray file replicated by read_image)."""
    return bool(torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]))


def _side_by_side(panels: Sequence[torch.Tensor], gap: int = _GAP) -> torch.Tensor:
    """Join (3, H, W) images of equal height left to right, separated by white columns."""
    h = panels[0].shape[-2]
    white = torch.ones(3, h, gap, dtype=panels[0].dtype, device=panels[0].device)
    parts: list[torch.Tensor] = []
    for i, panel in enumerate(panels):
        if i:
            parts.append(white)
        parts.append(panel)
    return torch.cat(parts, dim=-1)


def _hw(image: torch.Tensor) -> tuple[int, int]:
    return int(image.shape[-2]), int(image.shape[-1])


def _fmt_size(size: tuple[int, int]) -> str:
    return f"{size[1]}×{size[0]}"  # W×H, as image viewers show it


def run_demo(*, out_dir: Path, scale: int = 4, device: str = "cpu") -> Path:
    """Run the demo (see the module docstring) and return the path of ``<out_dir>/report.md``.

    Args:
        out_dir: output folder; created if missing. Existing demo files in it are overwritten.
        scale: upscaling factor; one of the ``dmsr-grid`` scales (2, 3 or 4).
        device: torch device for upscaling, degradation and metrics (``"cpu"``, ``"cuda"``, ...).

    Returns:
        Path of the Markdown report.

    Raises:
        NotADirectoryError: `out_dir` exists and is a file.
        ValueError: `scale` is not a scale of the ``dmsr-grid`` preset, or `device` is invalid or unavailable.
        FileNotFoundError: the bundled samples are missing.
    """
    import blindsr
    from blindsr.data.io import read_image, write_image
    from blindsr.degradations.presets import get_eval_preset
    from blindsr.metrics import psnr_and_ssim
    from blindsr.ops.crop import modcrop
    from blindsr.ops.resize import bicubic_upscale

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out_dir {out_dir} exists and is a file, not a folder; choose another output folder")
    preset = get_eval_preset(PRESET_NAME)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in preset.scales:
        known = ", ".join(str(s) for s in preset.scales)
        raise ValueError(f"scale must be one of {known} (the scales of the {PRESET_NAME} preset), got {scale!r}")
    dev = _resolve_device(device)
    settings = preset.settings_for(scale)
    index_of = {s.label: i for i, s in enumerate(settings)}
    setting_indices = [index_of[label] for label in ROUNDTRIP_LABELS]
    samples = sample_paths()

    up_dir = out_dir / "upscaled"
    rt_dir = out_dir / "roundtrip"
    up_dir.mkdir(parents=True, exist_ok=True)
    rt_dir.mkdir(parents=True, exist_ok=True)

    print(f"blindsr {blindsr.__version__} demo: x{scale} on {dev} (torch {torch.__version__})")
    print(MODEL_NOTE)

    started = time.perf_counter()
    up_rows: list[_UpscaleRow] = []
    rt_rows: list[_RoundTripRow] = []
    with torch.inference_mode():
        for path in tqdm(samples, desc="demo", unit="image", leave=False):
            stem = path.stem
            image = read_image(path).to(dev)
            gray = _is_gray(image)

            # 1. the sample as a real low-resolution photo
            _sync(dev)
            t0 = time.perf_counter()
            sr = bicubic_upscale(image.unsqueeze(0), scale)[0]
            _sync(dev)
            ms = (time.perf_counter() - t0) * 1000.0
            out = sr[:1] if gray else sr
            out_name = f"{stem}_x{scale}.png"
            write_image(up_dir / out_name, out)
            up_rows.append(_UpscaleRow(out_name, _hw(image), _hw(sr), int(out.shape[0]), ms))

            # 2. the sample as HR: synthesise LR with the preset, upscale back, score
            hr = modcrop(image, scale).unsqueeze(0)
            for index in setting_indices:
                label = settings[index].label
                lr = preset.degrade(hr, scale=scale, setting_index=index, dataset=DATASET_NAME, stem=stem).lr
                sr_rt = bicubic_upscale(lr, scale)
                psnr, ssim = psnr_and_ssim(sr_rt, hr, scale=scale)
                lr_preview = lr.clamp(0.0, 1.0)
                write_image(rt_dir / f"{stem}_{label}_lr.png", lr_preview[0])
                lr_nearest = F.interpolate(lr_preview, scale_factor=scale, mode="nearest")
                panels = [lr_nearest[0], sr_rt[0].clamp(0.0, 1.0), hr[0]]
                write_image(rt_dir / f"{stem}_{label}_compare.png", _side_by_side(panels))
                rt_rows.append(_RoundTripRow(stem, label, _hw(hr), _hw(lr), float(psnr[0]), float(ssim[0])))
    elapsed = time.perf_counter() - started

    means = {
        label: (
            sum(r.psnr for r in rt_rows if r.label == label) / len(samples),
            sum(r.ssim for r in rt_rows if r.label == label) / len(samples),
        )
        for label in ROUNDTRIP_LABELS
    }
    report = out_dir / "report.md"
    report.write_text(
        _report_text(
            version=blindsr.__version__,
            dev=dev,
            scale=scale,
            up_rows=up_rows,
            rt_rows=rt_rows,
            means=means,
            elapsed=elapsed,
            settings={label: settings[index_of[label]].as_dict() for label in ROUNDTRIP_LABELS},
        ),
        encoding="utf-8",
    )

    print(f"upscaled {len(up_rows)} samples x{scale} with {MODEL_NAME} -> {up_dir}")
    for row in up_rows:
        kind = "gray" if row.channels == 1 else "RGB"
        print(
            f"  {row.name:<20} {_fmt_size(row.in_size):>9} -> {_fmt_size(row.out_size):<9} {kind:<4} {row.ms:7.1f} ms"
        )
    print(f"round trip ({PRESET_NAME} preset, bicubic SR, PSNR/SSIM protocol sr-y), mean over {len(samples)} images:")
    for label, (p, s) in means.items():
        print(f"  {label:<10} PSNR {p:6.2f} dB   SSIM {s:.4f}")
    print(f"done in {elapsed:.1f} s; report: {report}")
    return report


def _report_text(
    *,
    version: str,
    dev: torch.device,
    scale: int,
    up_rows: list[_UpscaleRow],
    rt_rows: list[_RoundTripRow],
    means: dict[str, tuple[float, float]],
    elapsed: float,
    settings: dict[str, dict[str, float | str | int]],
) -> str:
    lines = [
        "# blindsr demo report",
        "",
        f"- Date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- blindsr version: {version}",
        f"- torch version: {torch.__version__}",
        f"- Device: {dev}",
        f"- Scale: x{scale}",
        f"- Model: {MODEL_NAME} (`blindsr.ops.resize.bicubic_upscale`)",
        f"- Why: {MODEL_NOTE}",
        f"- Total time: {elapsed:.2f} s",
        "",
        "Inputs: the bundled samples in `blindsr/assets/samples` (public domain / CC0; see `LICENSES.md` there).",
        "",
        "## 1. Upscaled samples",
        "",
        f"Each sample is treated as a real low-resolution photo and upscaled x{scale}. There is no ground truth, so "
        "there are no metrics here. Sizes are W×H; gray samples are written as one-channel gray PNGs.",
        "",
        "| Output file | Input size | Output size | Channels | Time (ms) |",
        "|-------------|-----------:|------------:|---------:|----------:|",
    ]
    for row in up_rows:
        lines.append(
            f"| `upscaled/{row.name}` | {_fmt_size(row.in_size)} | {_fmt_size(row.out_size)} | {row.channels} "
            f"| {row.ms:.1f} |"
        )
    lines += [
        "",
        "## 2. Synthetic round trip",
        "",
        f"Each sample is treated as HR, modcropped to a multiple of {scale}, degraded with settings of the "
        f"`{PRESET_NAME}` evaluation preset (blur with an isotropic Gaussian kernel of width k, bicubic x1/{scale} "
        "downscaling, Gaussian noise of level n on the 0-255 scale; float LR, not clipped; noise seeded per image "
        f"and setting with dataset name `{DATASET_NAME}`), upscaled back with bicubic and scored against the HR with "
        "PSNR/SSIM under the metric protocol `sr-y` (MATLAB BT.601 Y, "
        f"{scale}-pixel border crop, 8-bit rounding). Gray samples are scored as RGB with equal channels, as the "
        "benchmark protocol does (the noise is drawn per channel).",
        "",
        "Settings: "
        + "; ".join(
            f"`{label}` (kernel σ {d['kernel_sigma']:g}, noise {d['noise']:g})" for label, d in settings.items()
        ),
        "",
        "Files in `roundtrip/`: `<image>_<setting>_lr.png` (the LR, clipped to [0, 1] for viewing) and "
        "`<image>_<setting>_compare.png` (LR nearest-upsampled | bicubic SR | HR).",
        "",
        "| Image | HR size | LR size | Setting | PSNR (dB) | SSIM | Metric protocol | Preset |",
        "|-------|--------:|--------:|---------|----------:|-----:|-----------------|--------|",
    ]
    for rt in rt_rows:
        lines.append(
            f"| {rt.stem} | {_fmt_size(rt.hr_size)} | {_fmt_size(rt.lr_size)} | {rt.label} | {rt.psnr:.2f} "
            f"| {rt.ssim:.4f} | sr-y | {PRESET_NAME} |"
        )
    lines += [
        "",
        f"### Mean per setting ({len(up_rows)} images)",
        "",
        "| Setting | PSNR (dB) | SSIM | Metric protocol | Preset |",
        "|---------|----------:|-----:|-----------------|--------|",
    ]
    for label, (p, s) in means.items():
        lines.append(f"| {label} | {p:.2f} | {s:.4f} | sr-y | {PRESET_NAME} |")
    lines += [
        "",
        "These numbers come from four small bundled images, not from a benchmark set; they only show the engine "
        "and the metrics at work and are not comparable with published tables.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m blindsr.demo --out-dir DIR [--scale S] [--device D]``."""
    parser = argparse.ArgumentParser(
        prog="python -m blindsr.demo", description="Upscale the bundled samples and run a synthetic round trip."
    )
    parser.add_argument("--out-dir", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor: 2, 3 or 4 (default: 4)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    args = parser.parse_args(argv)
    try:
        run_demo(out_dir=args.out_dir, scale=args.scale, device=args.device)
    except (NotADirectoryError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
