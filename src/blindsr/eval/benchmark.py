"""The one benchmark runner: synthesise a preset's LR images, upscale them, score them under the preset's protocol.

Validation during training and ``blindsr eval`` call the same :func:`evaluate`, so there is one copy of the metric
code. A model is any callable ``upscale(lr (1, 3, h, w), scale) -> sr (1, 3, h*scale, w*scale)`` in [0, 1] RGB;
:data:`BUILTIN_MODELS` holds the ones that need no weights (``bicubic``).

An :class:`OracleModel` is also given what blind SR has to do without: the cell's HR image and its true blur kernel
(MRDA's teacher adapts its MLN with the HR image; MRDA_T3 reads the kernel). Its cells carry ``oracle`` (what it was
given), so tables and JSON records can never pass it off as blind SR.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from blindsr.degradations.presets import EvalPreset
from blindsr.metrics.psnr_ssim import psnr_and_ssim
from blindsr.ops.color import quantize_uint8
from blindsr.ops.resize import bicubic_upscale

__all__ = [
    "BUILTIN_MODELS",
    "CellResult",
    "OracleModel",
    "OracleUpscaleFn",
    "UpscaleFn",
    "bicubic_model",
    "evaluate",
    "mean_over_settings",
]

UpscaleFn = Callable[[torch.Tensor, int], torch.Tensor]
OracleUpscaleFn = Callable[[torch.Tensor, int, torch.Tensor, torch.Tensor], torch.Tensor]


def bicubic_model(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB-exact bicubic upscaling: the classic baseline row of every SR table."""
    return bicubic_upscale(lr, scale)


BUILTIN_MODELS: dict[str, UpscaleFn] = {"bicubic": bicubic_model}


@dataclass(frozen=True, slots=True)
class OracleModel:
    """A model that is given the ground truth of each cell besides its LR image: not blind SR.

    Attributes:
        upscale: ``upscale(lr (1, 3, h, w), scale, hr (1, 3, H, W), kernel (1, k, k)) -> sr``: the HR image the LR
            was made from (modcropped, [0, 1] RGB) and the cell's blur kernel (float32), both on the device. It is
            called under ``torch.no_grad`` (not ``inference_mode``), so it may adapt weights with autograd.
        uses: what it reads beyond the LR, for tables and records (e.g. ``"the HR image"``); not empty.
    """

    upscale: OracleUpscaleFn
    uses: str

    def __post_init__(self) -> None:
        if not self.uses.strip():
            raise ValueError("OracleModel.uses must say what the oracle is given (e.g. 'the HR image')")


@dataclass(frozen=True, slots=True)
class CellResult:
    """The score of one (dataset, scale, setting) cell: the mean over its images.

    ``setting`` is the preset's setting label (``k1.3-n15``, ``a2-n10``) or ``"mean"`` for the average over all
    (image, setting) pairs of an ``over_settings`` preset such as Gaussian8. ``oracle`` is empty for blind SR and
    says what an :class:`OracleModel` was given otherwise.
    """

    preset: str
    metric_protocol: str
    model: str
    dataset: str
    scale: int
    setting: str
    params: dict[str, Any]
    n_images: int
    psnr: float
    ssim: float
    per_image: dict[str, tuple[float, float]] = field(default_factory=dict)
    oracle: str = ""

    def record(self) -> dict[str, Any]:
        """A flat JSON record: dataset, scale, the setting's parameters, psnr, ssim, and provenance.

        ``"oracle"`` is true for an oracle model's cells, with ``"oracle_uses"`` saying what it was given.
        """
        out: dict[str, Any] = {"dataset": self.dataset, "scale": self.scale}
        out.update({k: v for k, v in self.params.items() if k != "label"})
        out.update(
            psnr=self.psnr,
            ssim=self.ssim,
            setting=self.setting,
            n_images=self.n_images,
            preset=self.preset,
            metric_protocol=self.metric_protocol,
            model=self.model,
            oracle=bool(self.oracle),
        )
        if self.oracle:
            out["oracle_uses"] = self.oracle
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return float(sum(vals) / len(vals)) if vals else math.nan


def mean_over_settings(cells: Sequence[CellResult]) -> list[CellResult]:
    """For each (dataset, scale): the mean over all (image, setting) pairs, as a cell with setting ``"mean"``.

    With the same images in every setting this equals the mean of the per-setting means (Gaussian8's definition).
    """
    groups: dict[tuple[str, int], list[CellResult]] = {}
    for c in cells:
        if c.setting != "mean":
            groups.setdefault((c.dataset, c.scale), []).append(c)
    out = []
    for (dataset, scale), group in groups.items():
        pairs = [v for c in group for v in c.per_image.values()]
        first = group[0]
        out.append(
            CellResult(
                preset=first.preset,
                metric_protocol=first.metric_protocol,
                model=first.model,
                dataset=dataset,
                scale=scale,
                setting="mean",
                params={"settings": len(group)},
                n_images=first.n_images,
                psnr=_mean(p for p, _ in pairs),
                ssim=_mean(s for _, s in pairs),
                oracle=first.oracle,
            )
        )
    return out


def evaluate(
    model: UpscaleFn | OracleModel,
    preset: EvalPreset,
    *,
    data_root: str | Path,
    datasets: Sequence[str] | None = None,
    scales: Sequence[int] | None = None,
    model_name: str = "model",
    device: torch.device | str = "cpu",
    progress: bool = True,
    max_images: int = 0,
    settings: Collection[str] | None = None,
) -> list[CellResult]:
    """Score `model` on every cell of `preset` for the given datasets and scales.

    Args:
        model: ``upscale(lr, scale) -> sr``; called under ``torch.inference_mode`` with a (1, 3, h, w) float32 LR
            on `device` (unclipped for float-LR presets, 8-bit for the others). Or an :class:`OracleModel`, also
            given the cell's HR image and true kernel (under ``torch.no_grad``); its cells are marked ``oracle``.
        preset: the evaluation preset (degradations, seeding, metric protocol).
        data_root: folder holding ``<Set>/HR/*.png`` benchmark sets.
        datasets: set names (default: those of the preset that exist under `data_root`).
        scales: scales to run (default: all of the preset's).
        model_name: recorded with every result.
        device: where degradation and model run; metrics are computed in float64 on the same device.
        progress: show a progress bar (stderr).
        max_images: score only the first N images of each set (0 = all); for quick validation during training.
        settings: score only the settings with these labels (default: all). The others are skipped, not renumbered,
            so every LR image (and its seeded noise) is the one a full run makes.

    Returns:
        One `CellResult` per (dataset, scale, setting) and, for ``over_settings`` presets, one ``"mean"`` cell per
        (dataset, scale).
    """
    from tqdm.auto import tqdm

    from blindsr.data.benchmark import BenchmarkSet, find_benchmark_sets

    root = Path(data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist (expected folders like {root}/Set5/HR/*.png)")
    if datasets is None:
        available = {n.lower(): n for n in find_benchmark_sets(root)}
        datasets = [available[d.lower()] for d in preset.datasets if d.lower() in available]
        if not datasets:
            raise FileNotFoundError(
                f"none of the preset's datasets ({', '.join(preset.datasets)}) found under {root}; "
                f"found: {', '.join(available.values()) or 'nothing'}"
            )
    run_scales = tuple(scales) if scales is not None else preset.scales
    for s in run_scales:
        preset.settings_for(s)  # validates
    dev = torch.device(device)
    sets = {(d, s): BenchmarkSet(root=root, name=d, scale=s) for d in datasets for s in run_scales}

    def count(bench: BenchmarkSet) -> int:
        return min(len(bench), max_images) if max_images > 0 else len(bench)

    oracle = model.uses if isinstance(model, OracleModel) else ""

    def chosen(scale: int) -> list[int]:
        labels = [st.label for st in preset.settings_for(scale)]
        return [i for i, label in enumerate(labels) if settings is None or label in settings]

    total = sum(count(bs) * len(chosen(s)) for (_, s), bs in sets.items())
    bar = tqdm(total=total, desc=f"{model_name} on {preset.name}", unit="img", disable=not progress, leave=False)
    results: list[CellResult] = []
    try:
        for (_dataset, scale), bench in sets.items():
            all_settings = preset.settings_for(scale)
            indices = chosen(scale)
            if not indices:
                continue
            per_setting: dict[int, dict[str, tuple[float, float]]] = {i: {} for i in indices}
            for index in range(count(bench)):
                item = bench[index]
                hr = item.hr.to(dev).unsqueeze(0)
                for i in indices:
                    setting = all_settings[i]
                    lr = preset.degrade(hr, scale=scale, setting_index=i, dataset=bench.dataset_name, stem=item.name).lr
                    if isinstance(model, OracleModel):
                        kernel = preset.params(setting).kernels.to(device=dev, dtype=torch.float32)
                        with torch.no_grad():
                            sr = model.upscale(lr, scale, hr, kernel)
                    else:
                        with torch.inference_mode():
                            sr = model(lr, scale)
                    if sr.shape[-2:] != hr.shape[-2:]:
                        raise RuntimeError(
                            f"{model_name} returned {tuple(sr.shape[-2:])} for an LR of {tuple(lr.shape[-2:])} at "
                            f"x{scale}; expected {tuple(hr.shape[-2:])}"
                        )
                    p, q = psnr_and_ssim(quantize_uint8(sr.float()), hr, scale=scale, protocol=preset.metric_protocol)
                    per_setting[i][item.name] = (float(p), float(q))
                    bar.update(1)
            cells = []
            for i, scores in per_setting.items():
                setting = all_settings[i]
                cells.append(
                    CellResult(
                        preset=preset.name,
                        metric_protocol=preset.metric_protocol,
                        model=model_name,
                        dataset=bench.dataset_name,
                        scale=scale,
                        setting=setting.label,
                        params=setting.as_dict(),
                        n_images=len(scores),
                        psnr=_mean(p for p, _ in scores.values()),
                        ssim=_mean(s for _, s in scores.values()),
                        per_image=scores,
                        oracle=oracle,
                    )
                )
            results.extend(cells)
            if preset.average == "over_settings" and len(indices) == len(all_settings):
                results.extend(mean_over_settings(cells))  # a mean over a subset would not be the preset's
    finally:
        bar.close()
    return results
