"""The ``make demo`` walk-through: upscale the bundled samples and run a synthetic round trip with metrics.

The model is the zoo's DMSR model of the demo's scale (``dmsr-x2``, ``dmsr-x3`` or ``dmsr-x4``, small CPU-trained
networks), always **side by side with MATLAB-exact bicubic** (:func:`blindsr.ops.resize.bicubic_upscale`), so the
report shows what the network adds. The samples are clean photos, and the default DMSR models are trained for
blurred and noisy inputs and lose to bicubic on clean, sharp ones (``docs/results.md``); so clean inputs go to the
card's noise-free variant (``dmsr-x4.nf-lite``, ...), as ``blindsr eval`` scores DMSR's noise-free cells. When no
trained model is installed (or ``model="bicubic"``), the demo runs bicubic alone and says so.

:func:`run_demo` does two things with the four public-domain / CC0 images in ``blindsr/assets/samples`` (see
``LICENSES.md`` there):

1. **Upscaling**: each sample is treated as a real, clean low-resolution photo and upscaled ×`scale` by the model
   for clean inputs to ``<out_dir>/upscaled/<stem>_x<scale>.png`` (gray samples stay one-channel gray PNGs), and by
   bicubic to ``<stem>_x<scale>_bicubic.png`` for comparison.
2. **Synthetic round trip**: each sample is treated as HR, modcropped, degraded with three settings of the
   ``dmsr-grid`` evaluation preset (``k0.2-n0``, ``k1.3-n15``, ``k2.6-n50``: Gaussian blur σ, then noise σ on the
   0-255 scale, seeded per image so the numbers are reproducible), upscaled back with bicubic and with the model
   (its noise-free variant for the noise-free setting) and scored with PSNR/SSIM under the ``sr-y`` protocol
   (MATLAB Y, ``scale``-pixel border crop, 8-bit). For each (image, setting) it writes the clipped LR preview
   ``<stem>_<label>_lr.png`` and a comparison ``<stem>_<label>_compare.png`` (LR nearest-upsampled | bicubic SR |
   model SR | HR, under a header strip that names each column, with its PSNR, in PIL's default font) to
   ``<out_dir>/roundtrip/``.

Everything is summarised in ``<out_dir>/report.md`` (which shows the comparison images through relative links and
lists the images and settings where the model scores below bicubic, :func:`losses_to_bicubic`) and on the
console. Run it with::

    python -m blindsr.demo --out-dir demo_out [--scale 4] [--model auto] [--device cpu]

or from Python:

>>> from pathlib import Path
>>> report = run_demo(out_dir=Path("demo_out"), scale=4)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

__all__ = [
    "BICUBIC",
    "ROUNDTRIP_LABELS",
    "BicubicLoss",
    "DemoModels",
    "RoundTripRow",
    "label_columns",
    "losses_to_bicubic",
    "resolve_demo_models",
    "run_demo",
    "sample_paths",
]

BICUBIC = "bicubic"
"""The name of the baseline every row is compared with (MATLAB-exact bicubic, no weights)."""
PRESET_NAME = "dmsr-grid"
ROUNDTRIP_LABELS: tuple[str, ...] = ("k0.2-n0", "k1.3-n15", "k2.6-n50")
"""The ``dmsr-grid`` settings of the round trip: kernel σ 0.2 / 1.3 / 2.6 with noise 0 / 15 / 50 (0-255 scale)."""
DATASET_NAME = "samples"  # part of the noise seed of each (image, setting) cell
_GAP = 4  # white pixels between the panels of a comparison image
_HEADER_PAD = 3  # white pixels above and below the column labels of a comparison image


@dataclass(frozen=True)
class DemoModels:
    """The models of a demo run.

    Attributes:
        name: the model for degraded inputs (a zoo name or file name), or ``"bicubic"`` when there is none.
        clean_name: the model for clean inputs (the card's noise-free variant, else `name`).
        upscale: the upscale function of `name` (``(lr, scale) -> sr``); None for bicubic alone.
        clean_upscale: the upscale function of `clean_name`; None for bicubic alone.
        note: one sentence on why these models, for the console and the report.
    """

    name: str
    clean_name: str
    upscale: Callable[[torch.Tensor, int], torch.Tensor] | None
    clean_upscale: Callable[[torch.Tensor, int], torch.Tensor] | None
    note: str

    @property
    def learned(self) -> bool:
        """True when a trained model runs beside bicubic."""
        return self.upscale is not None


def resolve_demo_models(model: str, scale: int, device: torch.device) -> DemoModels:
    """Load the demo's models.

    Args:
        model: ``"auto"`` (the zoo's ``dmsr-x<scale>`` with its noise-free variant; bicubic alone when its weights
            are not installed), ``"bicubic"``, or a zoo name or ``.safetensors`` file of scale `scale`.
        scale: the demo's scale.
        device: where the networks run.

    Raises:
        ValueError: `model` upscales by another factor than `scale`.
        KeyError, FileNotFoundError, WeightsError: an explicit `model` cannot be loaded (see
            :func:`blindsr.zoo.load_model`).
    """
    from blindsr.zoo import load_model

    if model == BICUBIC:
        return DemoModels(BICUBIC, BICUBIC, None, None, "bicubic only, as asked (--model bicubic)")
    name = f"dmsr-x{scale}" if model == "auto" else model
    try:
        loaded = load_model(name, device=device)
    except (KeyError, FileNotFoundError) as error:
        if model != "auto":
            raise
        return DemoModels(
            BICUBIC, BICUBIC, None, None, f"bicubic only: the zoo model {name} is not installed ({error})"
        )
    if loaded.scale != scale:
        raise ValueError(
            f"model {name} upscales x{loaded.scale}, but the demo runs x{scale}; pass --scale {loaded.scale}"
        )
    label = loaded.card.name if loaded.card is not None else Path(name).name
    variant = loaded.card.noise_free_variant if loaded.card is not None else ""
    if variant:
        clean = load_model(variant, device=device)
        note = (
            f"{label} for blurred and noisy inputs and its noise-free variant {variant} for clean ones (the "
            "samples themselves and the noise-free round-trip setting), as `blindsr eval` scores DMSR's noise-free "
            "cells; both are small CPU-trained models (docs/results.md), shown beside MATLAB-exact bicubic"
        )
        return DemoModels(label, variant, loaded.upscale, clean.upscale, note)
    note = f"{label} for every input, shown beside MATLAB-exact bicubic"
    return DemoModels(label, label, loaded.upscale, loaded.upscale, note)


@dataclass(frozen=True)
class _UpscaleRow:
    name: str
    model: str
    in_size: tuple[int, int]  # (H, W)
    out_size: tuple[int, int]
    channels: int
    ms: float


@dataclass(frozen=True)
class RoundTripRow:
    """One scored cell of the round trip: an image, a degradation setting, a model (or bicubic).

    Attributes:
        stem: the sample's file stem (``chelsea``).
        label: the ``dmsr-grid`` setting (``k0.2-n0``).
        model: the model's name, or :data:`BICUBIC`.
        hr_size: (H, W) of the modcropped HR.
        lr_size: (H, W) of the degraded LR.
        psnr: PSNR in dB (``sr-y``).
        ssim: SSIM (``sr-y``).
    """

    stem: str
    label: str
    model: str
    hr_size: tuple[int, int]
    lr_size: tuple[int, int]
    psnr: float
    ssim: float


@dataclass(frozen=True)
class BicubicLoss:
    """An (image, setting) where a model scores a lower PSNR than bicubic on the same LR.

    Attributes:
        stem: the sample's file stem.
        label: the setting.
        model: the model that lost.
        psnr: its PSNR (dB).
        bicubic_psnr: bicubic's PSNR (dB) on the same LR.
    """

    stem: str
    label: str
    model: str
    psnr: float
    bicubic_psnr: float

    @property
    def delta(self) -> float:
        """Model minus bicubic PSNR (dB), negative."""
        return self.psnr - self.bicubic_psnr


def losses_to_bicubic(rows: Sequence[RoundTripRow]) -> list[BicubicLoss]:
    """The cells where a model's PSNR is below bicubic's, in the order of `rows`.

    Args:
        rows: round-trip rows; a cell's bicubic row and model rows share its ``(stem, label)``.

    Returns:
        One entry per losing (image, setting, model); cells without a bicubic row are skipped.

    >>> rows = [RoundTripRow("a", "k0", BICUBIC, (8, 8), (4, 4), 30.0, 0.9),
    ...         RoundTripRow("a", "k0", "m", (8, 8), (4, 4), 29.0, 0.9)]
    >>> [(x.stem, x.label, round(x.delta, 2)) for x in losses_to_bicubic(rows)]
    [('a', 'k0', -1.0)]
    """
    bicubic = {(r.stem, r.label): r.psnr for r in rows if r.model == BICUBIC}
    return [
        BicubicLoss(r.stem, r.label, r.model, r.psnr, bicubic[(r.stem, r.label)])
        for r in rows
        if r.model != BICUBIC and (r.stem, r.label) in bicubic and r.psnr < bicubic[(r.stem, r.label)]
    ]


def sample_paths() -> list[Path]:
    """The bundled sample images (``blindsr/assets/samples/*.png``), sorted by name.

    Raises:
        FileNotFoundError: the samples are missing from the installation.
    """
    from blindsr.data.images import list_images

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


def label_columns(image: torch.Tensor, widths: Sequence[int], labels: Sequence[str], gap: int = _GAP) -> torch.Tensor:
    """Put a white header strip above a side-by-side image, naming each column in PIL's default font.

    Args:
        image: (3, H, W) float in [0, 1], panels of `widths` pixels separated by `gap` white columns.
        widths: each panel's width.
        labels: each panel's label, centred above it; a label wider than its panel loses words from its end
            (then characters) until it fits.
        gap: the columns between panels.

    Returns:
        (3, H + strip, W): the strip (black text on white, as high as the font plus a few pixels) above `image`.
    """
    from PIL import Image, ImageDraw, ImageFont

    if len(widths) != len(labels):
        raise ValueError(f"{len(widths)} panels but {len(labels)} labels")
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    text_height = max(int(draw.textbbox((0, 0), "Ag|", font=font)[3]), 1)
    strip = Image.new("L", (int(image.shape[-1]), text_height + 2 * _HEADER_PAD), 255)
    draw = ImageDraw.Draw(strip)
    left = 0
    for width, label in zip(widths, labels, strict=True):
        text = label
        while text and draw.textlength(text, font=font) > width:
            text = text.rsplit(" ", 1)[0] if " " in text else text[:-1]
        offset = max(0.0, (width - draw.textlength(text, font=font)) / 2)
        draw.text((left + offset, _HEADER_PAD), text, fill=0, font=font)
        left += width + gap
    header = torch.frombuffer(bytearray(strip.tobytes()), dtype=torch.uint8).view(strip.height, strip.width)
    header = header.to(image.device, image.dtype).div(255.0).expand(3, -1, -1)
    return torch.cat([header, image], dim=-2)


def _column_labels(names: Sequence[str], psnrs: Sequence[float]) -> list[str]:
    """LR, then each upscaler's name with its PSNR, then HR (the columns of a comparison image)."""
    return ["LR (nearest)", *(f"{n} {p:.2f} dB" for n, p in zip(names, psnrs, strict=True)), "HR"]


def _hw(image: torch.Tensor) -> tuple[int, int]:
    return int(image.shape[-2]), int(image.shape[-1])


def _fmt_size(size: tuple[int, int]) -> str:
    return f"{size[1]}×{size[0]}"  # W×H, as image viewers show it


def run_demo(*, out_dir: Path, scale: int = 4, device: str = "cpu", model: str = "auto") -> Path:
    """Run the demo (see the module docstring) and return the path of ``<out_dir>/report.md``.

    Args:
        out_dir: output folder; created if missing. Existing demo files in it are overwritten.
        scale: upscaling factor; one of the ``dmsr-grid`` scales (2, 3 or 4).
        device: torch device for upscaling, degradation and metrics (``"cpu"``, ``"cuda"``, ...).
        model: ``"auto"`` (the zoo's ``dmsr-x<scale>`` and its noise-free variant, or bicubic alone when they are
            not installed), ``"bicubic"``, or a zoo name or ``.safetensors`` file (see :func:`resolve_demo_models`).

    Returns:
        Path of the Markdown report.

    Raises:
        NotADirectoryError: `out_dir` exists and is a file.
        ValueError: `scale` is not a scale of the ``dmsr-grid`` preset, `device` is invalid or unavailable, or
            `model` upscales by another factor.
        FileNotFoundError: the bundled samples (or an explicitly named model) are missing.
    """
    import blindsr
    from blindsr.data.images import read_image, write_image
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
    models = resolve_demo_models(model, scale, dev)
    settings = preset.settings_for(scale)
    index_of = {s.label: i for i, s in enumerate(settings)}
    setting_indices = [index_of[label] for label in ROUNDTRIP_LABELS]
    samples = sample_paths()

    up_dir = out_dir / "upscaled"
    rt_dir = out_dir / "roundtrip"
    up_dir.mkdir(parents=True, exist_ok=True)
    rt_dir.mkdir(parents=True, exist_ok=True)

    print(f"blindsr {blindsr.__version__} demo: x{scale} on {dev} (torch {torch.__version__})")
    print(f"models: {models.note}")

    def bicubic(lr: torch.Tensor, s: int) -> torch.Tensor:
        return bicubic_upscale(lr, s)

    started = time.perf_counter()
    up_rows: list[_UpscaleRow] = []
    rt_rows: list[RoundTripRow] = []
    with torch.inference_mode():
        for path in tqdm(samples, desc="demo", unit="image", leave=False):
            stem = path.stem
            image = read_image(path).to(dev)
            gray = _is_gray(image)

            # 1. the sample as a real (clean) low-resolution photo
            runs: list[tuple[str, Callable[[torch.Tensor, int], torch.Tensor], str]] = [
                (models.clean_name, models.clean_upscale or bicubic, f"{stem}_x{scale}.png")
            ]
            if models.learned:
                runs.append((BICUBIC, bicubic, f"{stem}_x{scale}_bicubic.png"))
            for name, upscale, out_name in runs:
                _sync(dev)
                t0 = time.perf_counter()
                sr = upscale(image.unsqueeze(0), scale)[0].float().clamp(0.0, 1.0)
                _sync(dev)
                ms = (time.perf_counter() - t0) * 1000.0
                out = sr[:1] if gray else sr
                write_image(up_dir / out_name, out)
                up_rows.append(_UpscaleRow(out_name, name, _hw(image), _hw(sr), int(out.shape[0]), ms))

            # 2. the sample as HR: synthesise LR with the preset, upscale back, score
            hr = modcrop(image, scale).unsqueeze(0)
            for index in setting_indices:
                setting = settings[index]
                lr = preset.degrade(hr, scale=scale, setting_index=index, dataset=DATASET_NAME, stem=stem).lr
                candidates: list[tuple[str, Callable[[torch.Tensor, int], torch.Tensor]]] = [(BICUBIC, bicubic)]
                if models.learned:
                    clean = setting.noise == 0
                    name = models.clean_name if clean else models.name
                    fn = models.clean_upscale if clean else models.upscale
                    assert fn is not None
                    candidates.append((name, fn))
                panels = [F.interpolate(lr.clamp(0.0, 1.0), scale_factor=scale, mode="nearest")[0]]
                scored: list[RoundTripRow] = []
                for name, upscale in candidates:
                    sr_rt = upscale(lr, scale).float()
                    psnr, ssim = psnr_and_ssim(sr_rt, hr, scale=scale)
                    scored.append(
                        RoundTripRow(stem, setting.label, name, _hw(hr), _hw(lr), float(psnr[0]), float(ssim[0]))
                    )
                    panels.append(sr_rt[0].clamp(0.0, 1.0))
                rt_rows += scored
                write_image(rt_dir / f"{stem}_{setting.label}_lr.png", lr.clamp(0.0, 1.0)[0])
                panels.append(hr[0])
                labels = _column_labels([r.model for r in scored], [r.psnr for r in scored])
                compare = label_columns(_side_by_side(panels), [int(p.shape[-1]) for p in panels], labels)
                write_image(rt_dir / f"{stem}_{setting.label}_compare.png", compare)
    elapsed = time.perf_counter() - started

    means: dict[tuple[str, str], tuple[float, float]] = {}
    for label in ROUNDTRIP_LABELS:
        for name in dict.fromkeys(r.model for r in rt_rows if r.label == label):
            rows = [r for r in rt_rows if r.label == label and r.model == name]
            means[(label, name)] = (sum(r.psnr for r in rows) / len(rows), sum(r.ssim for r in rows) / len(rows))
    report = out_dir / "report.md"
    report.write_text(
        _report_text(
            version=blindsr.__version__,
            dev=dev,
            scale=scale,
            models=models,
            up_rows=up_rows,
            rt_rows=rt_rows,
            means=means,
            n_images=len(samples),
            elapsed=elapsed,
            settings={label: settings[index_of[label]].as_dict() for label in ROUNDTRIP_LABELS},
        ),
        encoding="utf-8",
    )

    print(f"upscaled {len(samples)} samples x{scale} -> {up_dir}")
    for row in up_rows:
        kind = "gray" if row.channels == 1 else "RGB"
        print(
            f"  {row.name:<28} {row.model:<18} {_fmt_size(row.in_size):>9} -> {_fmt_size(row.out_size):<9} "
            f"{kind:<4} {row.ms:7.1f} ms"
        )
    print(f"round trip ({PRESET_NAME} preset, PSNR/SSIM protocol sr-y), mean over {len(samples)} images:")
    for (label, name), (p, s) in means.items():
        delta = ""
        if name != BICUBIC:
            delta = f"   ({p - means[(label, BICUBIC)][0]:+.2f} dB vs bicubic)"
        print(f"  {label:<10} {name:<18} PSNR {p:6.2f} dB   SSIM {s:.4f}{delta}")
    print(f"done in {elapsed:.1f} s; report: {report}")
    return report


def _report_text(
    *,
    version: str,
    dev: torch.device,
    scale: int,
    models: DemoModels,
    up_rows: list[_UpscaleRow],
    rt_rows: list[RoundTripRow],
    means: dict[tuple[str, str], tuple[float, float]],
    n_images: int,
    elapsed: float,
    settings: dict[str, dict[str, float | str | int]],
) -> str:
    if models.learned:
        model_line = (
            f"- Models: `{models.name}` (blurred / noisy inputs), `{models.clean_name}` (clean inputs), and "
            "MATLAB-exact bicubic (`blindsr.ops.resize.bicubic_upscale`) beside them"
        )
        compare = "LR nearest-upsampled | bicubic SR | model SR | HR"
    else:
        model_line = "- Model: bicubic (MATLAB-exact, `blindsr.ops.resize.bicubic_upscale`)"
        compare = "LR nearest-upsampled | bicubic SR | HR"
    lines = [
        "# blindsr demo report",
        "",
        f"- Date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- blindsr version: {version}",
        f"- torch version: {torch.__version__}",
        f"- Device: {dev}",
        f"- Scale: x{scale}",
        model_line,
        f"- Why: {models.note}",
        f"- Total time: {elapsed:.2f} s",
        "",
        "Inputs: the bundled samples in `blindsr/assets/samples` (public domain / CC0; see `LICENSES.md` there).",
        "",
        "## 1. Upscaled samples",
        "",
        f"Each sample is treated as a real, clean low-resolution photo and upscaled x{scale}. There is no ground "
        "truth, so there are no metrics here: compare the files by eye. Sizes are W×H; gray samples are written as "
        "one-channel gray PNGs.",
        "",
        "| Output file | Model | Input size | Output size | Channels | Time (ms) |",
        "|-------------|-------|-----------:|------------:|---------:|----------:|",
    ]
    for row in up_rows:
        lines.append(
            f"| `upscaled/{row.name}` | {row.model} | {_fmt_size(row.in_size)} | {_fmt_size(row.out_size)} "
            f"| {row.channels} | {row.ms:.1f} |"
        )
    lines += [
        "",
        "## 2. Synthetic round trip",
        "",
        f"Each sample is treated as HR, modcropped to a multiple of {scale}, degraded with settings of the "
        f"`{PRESET_NAME}` evaluation preset (blur with an isotropic Gaussian kernel of width k, bicubic x1/{scale} "
        "downscaling, Gaussian noise of level n on the 0-255 scale; float LR, not clipped; noise seeded per image "
        f"and setting with dataset name `{DATASET_NAME}`), upscaled back and scored against the HR with "
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
        f"`<image>_<setting>_compare.png` ({compare}; each column is named, with its PSNR, above it); the "
        "comparisons are shown at the end of this report.",
        "",
        "| Image | HR size | LR size | Setting | Model | PSNR (dB) | SSIM | Metric protocol | Preset |",
        "|-------|--------:|--------:|---------|-------|----------:|-----:|-----------------|--------|",
    ]
    for rt in rt_rows:
        lines.append(
            f"| {rt.stem} | {_fmt_size(rt.hr_size)} | {_fmt_size(rt.lr_size)} | {rt.label} | {rt.model} "
            f"| {rt.psnr:.2f} | {rt.ssim:.4f} | sr-y | {PRESET_NAME} |"
        )
    lines += [
        "",
        f"### Mean per setting ({n_images} images)",
        "",
        "| Setting | Model | PSNR (dB) | SSIM | PSNR vs bicubic (dB) | Metric protocol | Preset |",
        "|---------|-------|----------:|-----:|---------------------:|-----------------|--------|",
    ]
    for (label, name), (p, s) in means.items():
        delta = "–" if name == BICUBIC else f"{p - means[(label, BICUBIC)][0]:+.2f}"
        lines.append(f"| {label} | {name} | {p:.2f} | {s:.4f} | {delta} | sr-y | {PRESET_NAME} |")
    lines += [
        "",
        "These numbers come from four small bundled images, not from a benchmark set; they only show the engine, "
        "the models and the metrics at work and are not comparable with published tables (docs/results.md has "
        "those).",
        "",
    ]
    if models.learned:
        lines += ["### Where the model loses to bicubic", ""]
        losses = losses_to_bicubic(rt_rows)
        if losses:
            lines.append("PSNR below bicubic's on the same LR, in this run:")
            lines.append("")
            lines += [
                f"- {x.stem} at {x.label}: {x.model} {x.delta:+.2f} dB vs bicubic ({x.psnr:.2f} vs "
                f"{x.bicubic_psnr:.2f} dB)"
                for x in losses
            ]
        else:
            lines.append("Nowhere in this run: the model's PSNR is above bicubic's for every image and setting.")
        lines.append("")
    lines += ["## 3. Comparisons", "", f"{compare}; the PSNR of each upscaler is in its column's label.", ""]
    for stem in dict.fromkeys(r.stem for r in rt_rows):
        for label in dict.fromkeys(r.label for r in rt_rows if r.stem == stem):
            lines += [f"![{stem} at {label}: {compare}](roundtrip/{stem}_{label}_compare.png)", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m blindsr.demo --out-dir DIR [--scale S] [--device D]``."""
    parser = argparse.ArgumentParser(
        prog="python -m blindsr.demo", description="Upscale the bundled samples and run a synthetic round trip."
    )
    parser.add_argument("--out-dir", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor: 2, 3 or 4 (default: 4)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--model", default="auto", help="auto (default), bicubic, or a zoo name / weights file")
    args = parser.parse_args(argv)
    try:
        run_demo(out_dir=args.out_dir, scale=args.scale, device=args.device, model=args.model)
    except (NotADirectoryError, ValueError, FileNotFoundError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
