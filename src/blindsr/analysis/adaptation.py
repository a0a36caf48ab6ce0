"""How fast an MLN adapts to a degradation: PSNR after 0..n inner steps (paper Fig. 9a).

For each (LR, HR) pair of an evaluation preset (default Gaussian8 at the MLN's scale), the MLN starts from its own
weights and takes n plain SGD steps on ``L1(MLN(LR).sr, HR)``, functionally (:func:`~blindsr.methods.meta.inner_adapt`
with ``order="none"``, as the teacher stage adapts it: Alg. 2 l. 4-9). The Upscaler stays fixed
(``MetaLearningNetwork.is_upscaler_parameter``), as in training. After every step the PSNR of the adapted MLN's own SR
output is measured (``sr-y``: MATLAB Y, crop = scale, 8-bit SR). The MLN's weights are never modified.

The adaptation uses the HR image (an oracle, like the teacher's): the curve shows how well the meta-initialisation
can be adapted, which is what MAML trains for. Compare an MLN after bicubic pretraining (stage ``pretrain``) with the
meta-learned one (stage ``meta``).

:func:`adaptation_report` builds the pairs of a preset over a benchmark set and returns an
:class:`AdaptationReport` (its text, JSON and CSV).

MLNs are read from a finished run folder of an MRDA pretrain or meta stage (``config.yaml`` + ``final/``, the weights
``init: from_stage`` loads: ``final/networks.safetensors``), or from a release file written by
``blindsr export RUN_DIR --network mln`` (or a zoo name of such a file).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from blindsr.methods.meta import inner_adapt, meta_parameters
from blindsr.metrics import psnr
from blindsr.nets.mrda import MetaLearningNetwork

if TYPE_CHECKING:  # pragma: no cover
    from blindsr.data.benchmark import BenchmarkSet
    from blindsr.degradations.presets import EvalPreset

__all__ = [
    "AdaptationCurve",
    "AdaptationReport",
    "LoadedMLN",
    "adaptation_psnr",
    "adaptation_report",
    "load_mln",
    "run_adaptation",
    "step_sizes",
]


@dataclass(frozen=True, slots=True)
class LoadedMLN:
    """An MLN and where it came from.

    Attributes:
        mln: the network (eval mode).
        label: its legend label (the run folder's name, or the file's stem).
        source: the weights it was loaded from.
        scale: its upscaling factor.
    """

    mln: MetaLearningNetwork
    label: str
    source: str
    scale: int


def load_mln(source: str | Path, *, device: torch.device | str = "cpu", label: str | None = None) -> LoadedMLN:
    """Load an MLN from a run folder (MRDA pretrain or meta stage), a release file or a zoo name.

    Args:
        source: ``RUN_DIR`` (or ``RUN_DIR/final``) of a finished run whose method has an ``mln`` network, or a
            ``.safetensors`` file / zoo name holding an ``mrda_mln``.
        device: where to put it.
        label: legend label (default: the run folder's name or the file's stem).

    Raises:
        FileNotFoundError: no such folder or file, or a run without final weights.
        ValueError: a run or file without an MLN (the message says what to pass instead).
    """
    path = Path(source)
    if path.is_dir():
        run_dir = path.parent if path.name == "final" and not (path / "config.yaml").is_file() else path
        config = run_dir / "config.yaml"
        if not config.is_file():
            raise FileNotFoundError(f"{path} is not a run folder (no config.yaml)")
        weights = run_dir / "final" / "networks.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} not found: has the run finished? (resume it with blindsr train)")
        from blindsr.config import load_config
        from blindsr.engine.checkpoint import load_network_weights
        from blindsr.methods import build_method

        cfg = load_config(config)
        method = build_method(cfg)
        if "mln" not in method.networks:
            raise ValueError(
                f"{run_dir} (method {cfg.method.name}) keeps no MLN in its final weights: pass the run folder of an "
                "MRDA pretrain or meta stage (mrda_pretrain / mrda_meta)"
            )
        mln = method.networks["mln"]
        load_network_weights(mln, weights, prefix="mln.")
        name, where = run_dir.name, str(weights)
    else:
        from blindsr.zoo import load_model

        loaded = load_model(str(source), device=device)
        if loaded.arch != "mrda_mln":
            raise ValueError(
                f"{source} holds a {loaded.arch} network, not an MRDA MLN (mrda_mln); write one with "
                "`blindsr export RUN_DIR --network mln -o FILE`, or pass the run folder itself"
            )
        mln = loaded.model
        name = loaded.card.name if loaded.card is not None else Path(source).stem
        where = str(loaded.path)
    if not isinstance(mln, MetaLearningNetwork):
        raise ValueError(f"{source}: expected a MetaLearningNetwork, got {type(mln).__name__}")
    mln = mln.to(device).eval()
    return LoadedMLN(mln=mln, label=label or name, source=where, scale=int(mln.scale))


def step_sizes(inner_lr: Sequence[float], steps: int) -> list[float]:
    """One step size per step: a single value repeated, or exactly `steps` values.

    >>> step_sizes([1e-2], 3), step_sizes([1e-2, 5e-3], 2)
    ([0.01, 0.01, 0.01], [0.01, 0.005])
    """
    rates = [float(r) for r in inner_lr]
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if len(rates) == 1:
        rates = rates * steps
    if len(rates) != steps:
        raise ValueError(f"give one inner step size or one per step ({steps}), got {len(inner_lr)}")
    if any(not r > 0 for r in rates):
        raise ValueError(f"inner step sizes must be > 0, got {list(inner_lr)}")
    return rates


def _l1(sr: Tensor, hr: Tensor) -> Tensor:
    return (sr.float() - hr.float()).abs().mean()  # the MRDA stages' inner loss


def adaptation_psnr(
    mln: MetaLearningNetwork,
    lr: Tensor,
    hr: Tensor,
    *,
    inner_lr: Sequence[float],
    protocol: str = "sr-y",
) -> list[float]:
    """PSNR of the MLN's SR after 0, 1, ..., n functional inner steps on one (LR, HR) pair.

    Args:
        mln: the MLN (its own parameters are the start and are never modified).
        lr: (1, 3, h, w) LR image.
        hr: (1, 3, s·h, s·w) its HR image.
        inner_lr: the step size of each inner step (n = ``len(inner_lr)``); see :func:`step_sizes`.
        protocol: the metric protocol (``sr-y``).

    Returns:
        n + 1 PSNR values in dB; the first is the un-adapted MLN's.
    """
    scale = int(mln.scale)
    scores: list[float] = []

    def loss_fn(out: Any) -> Tensor:
        scores.append(float(psnr(out.sr.detach(), hr, scale=scale, protocol=protocol)[0]))
        return _l1(out.sr, hr)

    params = meta_parameters(mln, detach=True)
    for rate in inner_lr:  # one step at a time, so each step's forward also gives that step's PSNR
        params = inner_adapt(
            mln,
            params,
            loss_fn,
            (lr,),
            steps=1,
            lr=rate,
            adapt=lambda name: not MetaLearningNetwork.is_upscaler_parameter(name),
            order="none",
        )
    with torch.no_grad():
        sr = torch.func.functional_call(mln, params, (lr,)).sr
    scores.append(float(psnr(sr, hr, scale=scale, protocol=protocol)[0]))
    return scores


@dataclass(frozen=True, slots=True)
class AdaptationCurve:
    """PSNR per inner step of one MLN over (LR, HR) pairs.

    Attributes:
        label: the MLN's legend label.
        source: its weights file.
        psnr: (n_pairs, steps + 1) dB.
        pairs: ``(image, setting label)`` of each row.
    """

    label: str
    source: str
    psnr: NDArray[np.float64]
    pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def mean(self) -> list[float]:
        """The mean PSNR over all pairs at each step (Gaussian8 averages over every (image, kernel) pair)."""
        return [float(v) for v in self.psnr.mean(axis=0)]

    def per_setting(self) -> dict[str, list[float]]:
        """The mean over images per setting, at each step."""
        out: dict[str, list[float]] = {}
        for setting in dict.fromkeys(s for _, s in self.pairs):
            rows = [i for i, (_, s) in enumerate(self.pairs) if s == setting]
            out[setting] = [float(v) for v in self.psnr[rows].mean(axis=0)]
        return out

    def record(self) -> dict[str, Any]:
        """JSON-friendly: label, source, mean curve, per-setting curves and per-pair values."""
        return {
            "label": self.label,
            "source": self.source,
            "psnr_mean": self.mean,
            "psnr_per_setting": self.per_setting(),
            "per_pair": [
                {"image": image, "setting": setting, "psnr": [float(v) for v in row]}
                for (image, setting), row in zip(self.pairs, self.psnr, strict=True)
            ],
        }


def run_adaptation(
    mlns: Sequence[LoadedMLN],
    pairs: Iterable[tuple[str, str, Tensor, Tensor]],
    *,
    inner_lr: Sequence[float],
    total: int | None = None,
    progress: bool = False,
) -> list[AdaptationCurve]:
    """:func:`adaptation_psnr` of every MLN on every pair.

    Args:
        mlns: the MLNs (same scale).
        pairs: ``(image, setting label, lr (1, 3, h, w), hr (1, 3, H, W))``, on the MLNs' device.
        inner_lr: one step size per inner step.
        total: the number of pairs, for the progress bar.
        progress: tqdm progress bar.

    Raises:
        ValueError: no MLN, MLNs of different scales, or no pairs.
    """
    from tqdm.auto import tqdm

    if not mlns:
        raise ValueError("give at least one MLN")
    scales = {m.scale for m in mlns}
    if len(scales) != 1:
        raise ValueError(f"the MLNs upscale by different factors: {', '.join(f'{m.label} x{m.scale}' for m in mlns)}")
    rows: list[list[list[float]]] = [[] for _ in mlns]
    names: list[tuple[str, str]] = []
    bar = tqdm(
        total=None if total is None else total * len(mlns),
        desc="MLN adaptation",
        unit="run",
        disable=not progress,
        leave=False,
    )
    try:
        for image, setting, lr, hr in pairs:
            names.append((image, setting))
            for i, m in enumerate(mlns):
                rows[i].append(adaptation_psnr(m.mln, lr, hr, inner_lr=inner_lr))
                bar.update(1)
    finally:
        bar.close()
    if not names:
        raise ValueError("no (LR, HR) pairs to adapt on")
    curves = []
    for m, r in zip(mlns, rows, strict=True):
        values = np.asarray(r, dtype=np.float64)
        curves.append(AdaptationCurve(label=m.label, source=m.source, psnr=values, pairs=list(names)))
    return curves


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptationReport:
    """What ``blindsr analyze adaptation`` shows and saves: the adaptation curves of MLNs on one set (Fig. 9a).

    Attributes:
        curves: one per MLN, in the order given.
        dataset: the benchmark set's name.
        scale: the MLNs' scale.
        preset: the evaluation preset of the (LR, HR) pairs.
        metric_protocol: the preset's PSNR protocol (``sr-y``).
        inner_lr: the step size of each inner step (n = ``len(inner_lr)`` steps).
        n_images: how many HR images.
        crop: the centre crop of each HR image (0: whole images).
    """

    curves: list[AdaptationCurve]
    dataset: str
    scale: int
    preset: str
    metric_protocol: str
    inner_lr: list[float]
    n_images: int
    crop: int

    @property
    def steps(self) -> int:
        """The number of inner steps n."""
        return len(self.inner_lr)

    @property
    def n_pairs(self) -> int:
        """The number of (LR, HR) pairs (images x settings)."""
        return int(self.curves[0].psnr.shape[0])

    @property
    def rate_text(self) -> str:
        """The step sizes as text: ``0.01`` when all are equal, ``0.01/0.005`` otherwise, empty for 0 steps."""
        rates = self.inner_lr
        if not rates:
            return ""
        return f"{rates[0]:g}" if len(set(rates)) == 1 else "/".join(f"{r:g}" for r in rates)

    def summary(self) -> str:
        """The header line, then the mean PSNR of every MLN at every step, and the gain over the n steps."""
        labels = [c.label for c in self.curves]
        n_settings = self.n_pairs // self.n_images if self.n_images else 0
        lines = [
            f"MLN adaptation on {self.dataset} x{self.scale}, {self.preset} ({self.n_pairs} pairs = {self.n_images} "
            f"images x {n_settings} settings), inner lr {self.rate_text or '-'}, Upscaler fixed; PSNR (dB, "
            f"{self.metric_protocol})"
        ]
        width = max(8, *(len(label) for label in labels))
        lines.append("step  " + "  ".join(f"{label:>{width}}" for label in labels))
        for k in range(self.steps + 1):
            lines.append(f"{k:>4}  " + "  ".join(f"{c.mean[k]:>{width}.3f}" for c in self.curves))
        if self.steps:
            lines.append("gain  " + "  ".join(f"{c.mean[-1] - c.mean[0]:>+{width}.3f}" for c in self.curves))
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        """JSON-friendly: the set, the preset, the step sizes, and every curve (:meth:`AdaptationCurve.record`)."""
        return {
            "dataset": self.dataset,
            "scale": self.scale,
            "preset": self.preset,
            "metric_protocol": self.metric_protocol,
            "steps": self.steps,
            "inner_lr": list(self.inner_lr),
            "adapted": "all MLN parameters but the Upscaler",
            "n_images": self.n_images,
            "crop": self.crop,
            "n_pairs": self.n_pairs,
            "curves": [c.record() for c in self.curves],
        }

    def rows(self) -> list[list[object]]:
        """The CSV table: a header ``step, <label>...``, then one row per step with every MLN's mean PSNR."""
        header: list[object] = ["step", *(c.label for c in self.curves)]
        body = [[k, *(f"{c.mean[k]:.4f}" for c in self.curves)] for k in range(self.steps + 1)]
        return [header, *body]

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


def adaptation_report(
    mlns: Sequence[LoadedMLN],
    bench: BenchmarkSet,
    preset: EvalPreset,
    *,
    inner_lr: Sequence[float],
    max_images: int = 0,
    crop: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> AdaptationReport:
    """:func:`run_adaptation` of every MLN on the (LR, HR) pairs of `preset` over the images of `bench`.

    Every HR image (modcropped by `bench`; optionally its centre `crop`) is degraded with each setting of `preset`
    at the MLNs' scale (``preset.degrade``: its kernels, padding, bicubic and seeded noise), image-major.

    Args:
        mlns: the MLNs (same scale, that of `bench`).
        bench: the benchmark set, modcropped to the MLNs' scale.
        preset: the evaluation preset of the pairs (Gaussian8 for Fig. 9a).
        inner_lr: the step size of each inner step (:func:`step_sizes`).
        max_images: use only the first N images (0: all).
        crop: use the centre `crop` x `crop` of each HR image (0: whole images).
        device: where the pairs go (the MLNs' device).
        progress: a tqdm progress bar (stderr).

    Raises:
        ValueError: no MLN, MLNs of different scales or of another scale than `bench`, or no pairs.
    """
    from blindsr.analysis.idr import center_crop

    if not mlns:
        raise ValueError("give at least one MLN")
    if len({m.scale for m in mlns}) != 1:
        raise ValueError(f"the MLNs upscale by different factors: {', '.join(f'{m.label} x{m.scale}' for m in mlns)}")
    scale = mlns[0].scale
    if bench.scale != scale:
        raise ValueError(f"the benchmark set is modcropped to x{bench.scale}, not to the MLNs' scale x{scale}")
    settings = preset.settings_for(scale)
    n_images = min(len(bench), max_images) if max_images > 0 else len(bench)
    dev = torch.device(device)

    def pairs() -> Iterator[tuple[str, str, Tensor, Tensor]]:
        for index in range(n_images):
            item = bench[index]
            hr = center_crop(item.hr, size=crop, scale=scale).to(dev).unsqueeze(0)
            for i, setting in enumerate(settings):
                lr = preset.degrade(hr, scale=scale, setting_index=i, dataset=bench.dataset_name, stem=item.name).lr
                yield item.name, setting.label, lr, hr

    rates = [float(r) for r in inner_lr]
    curves = run_adaptation(mlns, pairs(), inner_lr=rates, total=n_images * len(settings), progress=progress)
    return AdaptationReport(
        curves=curves,
        dataset=bench.dataset_name,
        scale=scale,
        preset=preset.name,
        metric_protocol=preset.metric_protocol,
        inner_lr=rates,
        n_images=n_images,
        crop=crop,
    )
