"""Does DMSR's degradation extractor follow the blur? Its kernel and noise estimates against the truth.

DMSR's extractor (``DMSRNet.extractor``, a :class:`~blindsr.nets.dmsr.DegradationExtractor`) maps an LR image to an
estimated 15x15 blur kernel ``K_est`` and a signed noise map ``N_est``. :func:`analyze_kernels` degrades every HR
image of a benchmark set with a grid of isotropic kernel widths σk and noise levels σn, exactly as DMSR's evaluation
protocol does (preset ``dmsr-grid``: 15x15 kernel, replicate blur padding, MATLAB bicubic, float LR, seeded noise),
runs the extractor on each LR image and records, per (image, σk, σn):

* the width of the true kernel and of ``K_est`` (:func:`kernel_width`, in pixels),
* the L2 distance ``||K_est - K_true||`` of the two 15x15 kernels,
* the true σn and the estimated noise level (the standard deviation of ``N_est``, times 255).

An extractor that follows the blur gives estimated widths on the diagonal ``est = true``; one that has collapsed to
an average kernel gives the same width whatever the blur (a horizontal line), and a correlation near 0.

:func:`kernel_report` adds what the analysis ran on and returns a :class:`KernelReport` (its text, JSON and CSV).
Only DMSR has an explicit kernel estimate: :func:`dmsr_network` refuses other models in one line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from blindsr.data.benchmark import BenchmarkSet
from blindsr.degradations import isotropic_gaussian_kernels
from blindsr.degradations.presets import EvalPreset, get_eval_preset
from blindsr.nets.dmsr import DMSRNet

__all__ = [
    "KERNEL_PROTOCOL",
    "KernelAnalysis",
    "KernelRecord",
    "KernelReport",
    "KernelSettingSummary",
    "NoExtractorError",
    "analyze_kernels",
    "dmsr_network",
    "kernel_report",
    "kernel_width",
    "summarize_kernel_records",
]

KERNEL_PROTOCOL = "dmsr-grid"
"""The evaluation preset whose LR synthesis is used (its kernel size, padding, bicubic, LR format and noise seeds)."""


class NoExtractorError(ValueError):
    """The model has no explicit degradation extractor (it is not a DMSR network)."""


_NO_EXTRACTOR = {
    "mrda_s": "is an MRDA student: it has no explicit kernel estimate (its degradation representation is implicit); "
    "see `blindsr analyze idr`",
    "mrda_t": "is an MRDA teacher: it has no explicit kernel estimate (its degradation representation is implicit)",
    "mrda_mln": "is an MRDA meta-learning network (MLN): it estimates no kernel; see `blindsr analyze adaptation`",
}


def dmsr_network(model: nn.Module, *, arch: str = "", name: str = "the model") -> DMSRNet:
    """`model` as a DMSR network, or a one-line :class:`NoExtractorError` saying why it has no kernel estimate.

    Args:
        model: the loaded network.
        arch: its architecture id (``LoadedModel.arch``), for the message (default: looked up from its class).
        name: how to call it in the message (file or zoo name).
    """
    if isinstance(model, DMSRNet):
        return model
    if not arch:
        from blindsr.archs import ARCHS

        arch = next((key for key, cls in ARCHS.items() if type(model) is cls), "")
    why = _NO_EXTRACTOR.get(
        arch,
        f"({arch or type(model).__name__}) has no degradation extractor: only DMSR models (dmsr) estimate a kernel",
    )
    raise NoExtractorError(f"{name} {why}")


def kernel_width(kernel: Tensor) -> Tensor:
    """The width of blur kernels: their standard deviation about the centre pixel, per axis, in pixels.

    ``width = sqrt(sum_ij k(i, j) * (i² + j²) / 2)``, where ``i`` and ``j`` are the row and column offsets from the
    centre pixel of the (odd-sized) window. For a kernel summing to 1 this is the root mean square distance from the
    centre, divided by sqrt(2) so that it is a per-axis value: an isotropic Gaussian of standard deviation σ that fits
    well inside the window has width ≈ σ, a delta kernel has width 0. For a very narrow Gaussian (σ ≲ 0.3) the
    sampled kernel is almost a delta and its width is well below σ; for a wide one (σ ≳ 2.5 in a 15x15 window) the
    window cuts its tails and the width is a little below σ. The second moment is taken about the centre of the
    window, not about the kernel's centroid: a shifted kernel is wider than the same kernel centred.

    Args:
        kernel: (..., k, k) kernels, non-negative and summing to 1 over the last two dimensions; k odd (the two
            sizes may differ, both odd).

    Returns:
        (...) widths, in the kernel's floating dtype (float32 for an integer tensor).

    Raises:
        ValueError: fewer than 2 dimensions, or an even size.

    >>> from blindsr.degradations import isotropic_gaussian_kernels
    >>> k = isotropic_gaussian_kernels(torch.tensor([1.3, 0.0], dtype=torch.float64), 15)
    >>> [round(w, 4) for w in kernel_width(k).tolist()]
    [1.3, 0.0]
    """
    if kernel.ndim < 2:
        raise ValueError(f"kernel must be (..., k, k), got shape {tuple(kernel.shape)}")
    rows, cols = kernel.shape[-2:]
    if rows % 2 == 0 or cols % 2 == 0:
        raise ValueError(f"kernel sizes must be odd (the centre pixel is the origin), got {rows}x{cols}")
    k = kernel if kernel.is_floating_point() else kernel.float()
    i = torch.arange(rows, dtype=k.dtype, device=k.device) - (rows - 1) / 2
    j = torch.arange(cols, dtype=k.dtype, device=k.device) - (cols - 1) / 2
    r2 = i.view(-1, 1) ** 2 + j.view(1, -1) ** 2
    return ((k * r2).sum(dim=(-2, -1)) / 2).clamp_min(0).sqrt()


@dataclass(frozen=True, slots=True)
class KernelRecord:
    """The extractor's estimates on one LR image.

    Attributes:
        image: the HR image's file stem.
        sigma_k: the width σk of the true isotropic Gaussian kernel (its parameter).
        sigma_n: the true noise level σn (0-255 units).
        true_width: :func:`kernel_width` of the true 15x15 kernel (≈ σk, below it for very narrow kernels).
        est_width: :func:`kernel_width` of the estimated kernel.
        kernel_l2: ``||K_est - K_true||``, the L2 (Frobenius) norm of the difference of the two kernels.
        est_noise: the standard deviation of the estimated noise map (all channels and pixels), times 255.
    """

    image: str
    sigma_k: float
    sigma_n: float
    true_width: float
    est_width: float
    kernel_l2: float
    est_noise: float

    @property
    def width_error(self) -> float:
        """``est_width - true_width``."""
        return self.est_width - self.true_width


@dataclass(frozen=True, slots=True)
class KernelSettingSummary:
    """The estimates of one (σk, σn) setting over all images.

    Attributes:
        sigma_k: the true kernel's σk.
        sigma_n: the true noise level (0-255).
        true_width: :func:`kernel_width` of the true kernel.
        n_images: how many images.
        est_width_mean: the mean estimated width.
        est_width_std: the spread of the estimated widths across images (population standard deviation).
        est_noise_mean: the mean estimated noise level (0-255).
        kernel_l2_mean: the mean ``||K_est - K_true||``.
    """

    sigma_k: float
    sigma_n: float
    true_width: float
    n_images: int
    est_width_mean: float
    est_width_std: float
    est_noise_mean: float
    kernel_l2_mean: float

    def record(self) -> dict[str, float | int]:
        """JSON-friendly fields."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class KernelAnalysis:
    """Every record and their summary.

    Attributes:
        records: one per (image, σk, σn), image-major, then noise level, then kernel width (the order given).
        settings: one summary per (σk, σn), noise level major, in the order given.
        correlation: Pearson correlation of the true and estimated widths over all records; NaN when either is
            constant (e.g. an extractor that returns one kernel whatever the input) or there are fewer than 2.
        mean_abs_width_error: mean ``|est_width - true_width|`` over all records (pixels).
    """

    records: list[KernelRecord]
    settings: list[KernelSettingSummary]
    correlation: float
    mean_abs_width_error: float

    def column(self, name: str) -> NDArray[np.float64]:
        """One numeric field of every record as an array (``"true_width"``, ``"est_width"``, ``"sigma_n"``, ...)."""
        return np.array([getattr(r, name) for r in self.records], dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary (NaN written as None)."""
        return {
            "correlation": _finite_or_none(self.correlation),
            "mean_abs_width_error": _finite_or_none(self.mean_abs_width_error),
            "n_records": len(self.records),
            "settings": [{k: _finite_or_none(v) for k, v in s.record().items()} for s in self.settings],
        }


def _finite_or_none(value: float | int) -> float | int | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _pearson(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Pearson's r over the pairs where both are finite; NaN for fewer than 2 pairs or a constant side."""
    keep = np.isfinite(x) & np.isfinite(y)
    a, b = x[keep], y[keep]
    if a.size < 2:
        return math.nan
    sa, sb = float(a.std()), float(b.std())
    if sa <= 1e-12 * max(1.0, float(np.abs(a).max())) or sb <= 1e-12 * max(1.0, float(np.abs(b).max())):
        return math.nan
    r = float(((a - a.mean()) * (b - b.mean())).mean()) / (sa * sb)
    return float(np.clip(r, -1.0, 1.0))


def summarize_kernel_records(records: Sequence[KernelRecord]) -> KernelAnalysis:
    """Per-(σk, σn) means and spreads, the width correlation and the mean width error of `records`.

    Settings are listed in the order they first appear in `records`.

    Raises:
        ValueError: no records.
    """
    if not records:
        raise ValueError("no records to summarise")
    groups: dict[tuple[float, float], list[KernelRecord]] = {}
    for r in records:
        groups.setdefault((r.sigma_k, r.sigma_n), []).append(r)
    settings = []
    for (sigma_k, sigma_n), group in groups.items():
        est = np.array([r.est_width for r in group], dtype=np.float64)
        settings.append(
            KernelSettingSummary(
                sigma_k=sigma_k,
                sigma_n=sigma_n,
                true_width=group[0].true_width,
                n_images=len(group),
                est_width_mean=float(est.mean()),
                est_width_std=float(est.std()),
                est_noise_mean=float(np.mean([r.est_noise for r in group])),
                kernel_l2_mean=float(np.mean([r.kernel_l2 for r in group])),
            )
        )
    true = np.array([r.true_width for r in records], dtype=np.float64)
    est = np.array([r.est_width for r in records], dtype=np.float64)
    errors = np.abs(est - true)
    errors = errors[np.isfinite(errors)]
    return KernelAnalysis(
        records=list(records),
        settings=settings,
        correlation=_pearson(true, est),
        mean_abs_width_error=float(errors.mean()) if errors.size else math.nan,
    )


def _grid(widths: Sequence[float], noise_levels: Sequence[float]) -> tuple[list[float], list[float]]:
    ws = [float(w) for w in widths]
    ns = [float(n) for n in noise_levels]
    for what, values in (("kernel widths", ws), ("noise levels", ns)):
        if not values:
            raise ValueError(f"no {what} given")
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ValueError(f"{what} must be finite and >= 0, got {', '.join(f'{v:g}' for v in values)}")
        if len(set(values)) != len(values):
            raise ValueError(f"duplicate {what}: {', '.join(f'{v:g}' for v in values)}")
    return ws, ns


def _cell_presets(scale: int, widths: list[float], noise_levels: list[float]) -> list[tuple[float, float, EvalPreset]]:
    """One single-setting copy of the DMSR protocol per (σk, σn), noise-level major."""
    base = get_eval_preset(KERNEL_PROTOCOL)
    template = base.settings_for(scale)[0]
    cells = []
    for sigma_n in noise_levels:
        for sigma_k in widths:
            setting = dataclasses.replace(template, sigma=sigma_k, noise=sigma_n)
            cells.append((sigma_k, sigma_n, dataclasses.replace(base, grid=((scale, (setting,)),))))
    return cells


def analyze_kernels(
    net: DMSRNet,
    bench: BenchmarkSet,
    *,
    scale: int,
    widths: Sequence[float],
    noise_levels: Sequence[float],
    max_images: int = 0,
    crop: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> KernelAnalysis:
    """Run DMSR's degradation extractor on LR images of known blur and noise, and compare its estimates.

    Every HR image (modcropped by `bench`; optionally its centre `crop`) is degraded with every (σk, σn) of the
    grid by DMSR's evaluation protocol (preset ``dmsr-grid``: isotropic 15x15 Gaussian, replicate blur padding,
    MATLAB bicubic, float LR). The noise is seeded by the preset from (dataset, image, scale), the same for every
    cell of an image, so the noise realisations differ between cells only by their level. The extractor runs on
    each LR image in float32 without gradients.

    Args:
        net: the DMSR network (only ``net.extractor`` runs).
        bench: the benchmark set, modcropped to `scale`.
        scale: the model's scale (2, 3 or 4: the scales of the protocol).
        widths: the kernel widths σk (>= 0; 0 is no blur).
        noise_levels: the noise levels σn (0-255 units, >= 0).
        max_images: use only the first N images (0: all).
        crop: use the centre `crop` x `crop` of each HR image (0: whole images).
        device: where the extractor runs.
        progress: a tqdm progress bar (stderr) over the images x settings.

    Returns:
        The records (image-major) and their summary (:func:`summarize_kernel_records`).

    Raises:
        ValueError: bad grid, a scale the protocol lacks or that `bench` is not cropped to, an image too small, or
            an extractor whose kernel size is not the protocol's.
    """
    from tqdm.auto import tqdm

    from blindsr.analysis.idr import center_crop

    ws, ns = _grid(widths, noise_levels)
    if bench.scale != scale:
        raise ValueError(f"the benchmark set is modcropped to x{bench.scale}, not to the scale x{scale}")
    if net.scale != scale:
        raise ValueError(f"the network upscales x{net.scale}, not x{scale}")
    cells = _cell_presets(scale, ws, ns)
    size = cells[0][2].kernel_size
    true_kernels = {
        sigma_k: isotropic_gaussian_kernels(torch.tensor([sigma_k], dtype=torch.float64), size)[0] for sigma_k in ws
    }
    true_widths = {sigma_k: float(kernel_width(k)) for sigma_k, k in true_kernels.items()}
    n_images = min(len(bench), max_images) if max_images > 0 else len(bench)
    if n_images == 0:
        raise ValueError("no images to analyse")

    dev = torch.device(device)
    net = net.to(dev).eval()
    records: list[KernelRecord] = []
    bar = tqdm(total=n_images * len(cells), desc="kernels", unit="img", disable=not progress, leave=False)
    try:
        with torch.no_grad():
            for index in range(n_images):
                item = bench[index]
                hr = center_crop(item.hr, size=crop, scale=scale).to(device=dev, dtype=torch.float32)
                for sigma_k, sigma_n, preset in cells:
                    lr = preset.degrade(hr, scale=scale, setting_index=0, dataset=bench.dataset_name, stem=item.name).lr
                    kernel, noise = net.extractor(lr.float())
                    est = kernel[0].double().cpu()
                    if est.shape != true_kernels[sigma_k].shape:
                        raise ValueError(
                            f"the extractor estimates {est.shape[-1]}x{est.shape[-2]} kernels; the protocol "
                            f"uses {size}x{size}"
                        )
                    records.append(
                        KernelRecord(
                            image=item.name,
                            sigma_k=sigma_k,
                            sigma_n=sigma_n,
                            true_width=true_widths[sigma_k],
                            est_width=float(kernel_width(est)),
                            kernel_l2=float(torch.linalg.vector_norm(est - true_kernels[sigma_k])),
                            est_noise=float(noise[0].double().std(correction=0)) * 255.0,
                        )
                    )
                    bar.update(1)
    finally:
        bar.close()
    return summarize_kernel_records(records)


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelReport:
    """What ``blindsr analyze kernels`` shows and saves: a DMSR extractor's estimates on one benchmark set.

    Attributes:
        analysis: every record and their summary.
        model: the model's name (zoo or file name).
        arch: its architecture id.
        dataset: the benchmark set's name.
        scale: the model's scale.
        n_images: how many HR images.
        crop: the centre crop of each HR image (0: whole images).
    """

    analysis: KernelAnalysis
    model: str
    arch: str
    dataset: str
    scale: int
    n_images: int
    crop: int

    @property
    def widths(self) -> list[float]:
        """The kernel widths σk of the grid, in the order given."""
        return list(dict.fromkeys(s.sigma_k for s in self.analysis.settings))

    @property
    def noise_levels(self) -> list[float]:
        """The noise levels σn of the grid, in the order given."""
        return list(dict.fromkeys(s.sigma_n for s in self.analysis.settings))

    @property
    def score(self) -> str:
        """One line: the correlation of the true and estimated widths, and the mean width error."""
        r = self.analysis.correlation
        r_text = f"{r:.3f}" if math.isfinite(r) else "undefined (a constant width)"
        return (
            f"correlation of true and estimated widths r = {r_text}; "
            f"mean |width error| {self.analysis.mean_abs_width_error:.3f} px"
        )

    def summary(self) -> str:
        """The table of mean estimated widths per (σk, σn), the mean estimated noise per σn, and :attr:`score`."""
        widths, levels = self.widths, self.noise_levels
        cell = {(s.sigma_k, s.sigma_n): s for s in self.analysis.settings}
        lines = [
            f"mean estimated kernel width (px) on {self.dataset} x{self.scale}, {self.n_images} images x "
            f"{len(self.analysis.settings)} settings:",
            f"{'σk':>5}  {'true':>6}  " + "  ".join(f"{'σn ' + format(n, 'g'):>8}" for n in levels),
        ]
        for w in widths:
            row = "  ".join(f"{cell[(w, n)].est_width_mean:>8.3f}" for n in levels)
            lines.append(f"{w:>5g}  {cell[(w, levels[0])].true_width:>6.3f}  {row}")
        noise_means = ", ".join(
            f"σn {n:g}: {sum(cell[(w, n)].est_noise_mean for w in widths) / len(widths):.2f}" for n in levels
        )
        lines.append(f"mean estimated noise level (std(N_est) x 255): {noise_means}")
        lines.append(self.score)
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        """JSON-friendly: the model, set and grid, then :meth:`KernelAnalysis.summary` (NaN written as None)."""
        return {
            "model": self.model,
            "arch": self.arch,
            "dataset": self.dataset,
            "scale": self.scale,
            "protocol": KERNEL_PROTOCOL,
            "widths": self.widths,
            "noise_levels": self.noise_levels,
            "n_images": self.n_images,
            "crop": self.crop,
            **self.analysis.summary(),
        }

    def rows(self) -> list[list[object]]:
        """The CSV table: a header, then one row per record (image, σk, σn and the estimates, as text)."""
        header: list[object] = [
            "image",
            "sigma_k",
            "sigma_n",
            "true_width",
            "est_width",
            "width_error",
            "kernel_l2",
            "est_noise",
        ]
        rows: list[list[object]] = [header]
        for rec in self.analysis.records:
            rows.append(
                [
                    rec.image,
                    f"{rec.sigma_k:g}",
                    f"{rec.sigma_n:g}",
                    f"{rec.true_width:.6f}",
                    f"{rec.est_width:.6f}",
                    f"{rec.width_error:.6f}",
                    f"{rec.kernel_l2:.6f}",
                    f"{rec.est_noise:.4f}",
                ]
            )
        return rows

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write :meth:`record` to the JSON file `path`, atomically; returns the path.

        Raises:
            OutputError: `path` exists and `overwrite` is False, or it is a folder.
        """
        from blindsr.analysis.output import write_json

        return write_json(path, self.record(), overwrite=overwrite)

    def save_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write :meth:`rows` to the CSV file `path`, atomically; returns the path.

        Raises:
            OutputError: `path` exists and `overwrite` is False, or it is a folder.
        """
        from blindsr.analysis.output import write_csv

        return write_csv(path, self.rows(), overwrite=overwrite)


def kernel_report(
    net: DMSRNet,
    bench: BenchmarkSet,
    *,
    scale: int,
    widths: Sequence[float],
    noise_levels: Sequence[float],
    model: str,
    arch: str = "dmsr",
    max_images: int = 0,
    crop: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> KernelReport:
    """:func:`analyze_kernels` with what it ran on: the model, the set and the number of images.

    Args:
        net: the DMSR network.
        bench: the benchmark set, modcropped to `scale`.
        scale: the model's scale.
        widths: the kernel widths σk.
        noise_levels: the noise levels σn (0-255).
        model: the model's name, recorded.
        arch: its architecture id, recorded.
        max_images: use only the first N images (0: all).
        crop: use the centre `crop` x `crop` of each HR image (0: whole images).
        device: where the extractor runs.
        progress: a tqdm progress bar (stderr).

    Raises:
        ValueError: as :func:`analyze_kernels`.
    """
    analysis = analyze_kernels(
        net,
        bench,
        scale=scale,
        widths=widths,
        noise_levels=noise_levels,
        max_images=max_images,
        crop=crop,
        device=device,
        progress=progress,
    )
    return KernelReport(
        analysis=analysis,
        model=model,
        arch=arch,
        dataset=bench.dataset_name,
        scale=scale,
        n_images=min(len(bench), max_images) if max_images > 0 else len(bench),
        crop=crop,
    )
