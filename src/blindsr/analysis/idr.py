"""The implicit degradation representation (IDR) of an MRDA student over a set of degradations (paper Fig. 7, 8).

For every HR image of a benchmark set and every degradation of a set (:mod:`blindsr.analysis.synth`), the LR image
is synthesised and DEN_S maps it to its IDR ``D_S`` (``MRDAStudent(lr).idr``, the 256-d vector that guides RDAN).
The IDRs are then embedded in 2-D with t-SNE (:mod:`blindsr.analysis.tsne`) and the separability of the
degradation labels is measured in the IDR space itself (:mod:`blindsr.analysis.separability`).

:func:`idr_report` does all of it for a benchmark set and returns an :class:`IDRReport` (its text, its ``.npz``).

Only the student has an IDR computed from the LR image alone: the teacher's needs the MLN adapted on the HR image
(an oracle), the MLN and DMSR have none (DMSR estimates an explicit kernel and noise map). :func:`idr_network`
says so in one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from blindsr.analysis.separability import Separability, measure_separability
from blindsr.analysis.synth import set_labels, synthesize_lr
from blindsr.analysis.tsne import TSNEResult, run_tsne
from blindsr.degradations import EvalSetting
from blindsr.nets.mrda import MRDAStudent

if TYPE_CHECKING:  # pragma: no cover
    from blindsr.data.benchmark import BenchmarkSet

__all__ = [
    "IDRAnalysis",
    "IDRReport",
    "IDRSamples",
    "NoIDRError",
    "analyze_idr",
    "center_crop",
    "collect_idr",
    "idr_network",
    "idr_report",
]


class NoIDRError(ValueError):
    """The model has no implicit degradation representation computed from the LR image."""


_NO_IDR = {
    "mrda_t": "is an MRDA teacher: its IDR needs the MLN adapted on the HR image (an oracle); analyse the student "
    "(mrda_s) of the same run",
    "mrda_mln": "is an MRDA meta-learning network (MLN): it has no IDR; see `blindsr analyze adaptation --mln`",
    "dmsr": "is a DMSR model: it has no implicit degradation representation (it estimates an explicit blur kernel "
    "and noise map instead)",
}


def idr_network(model: nn.Module, *, arch: str = "", name: str = "the model") -> MRDAStudent:
    """`model` as an MRDA student, or a one-line :class:`NoIDRError` saying why it has no IDR.

    Args:
        model: the loaded network.
        arch: its architecture id (``LoadedModel.arch``), for the message (default: looked up from its class).
        name: how to call it in the message (file or zoo name).
    """
    if isinstance(model, MRDAStudent):
        return model
    if not arch:
        from blindsr.archs import ARCHS

        arch = next((key for key, cls in ARCHS.items() if type(model) is cls), "")
    why = _NO_IDR.get(arch, f"({arch or type(model).__name__}) has no IDR: only MRDA students (mrda_s) have one")
    raise NoIDRError(f"{name} {why}")


def center_crop(hr: torch.Tensor, *, size: int, scale: int) -> torch.Tensor:
    """The centre `size` x `size` region of (3, H, W) `hr` (rounded down to a multiple of `scale`); 0 keeps it all."""
    if size <= 0:
        return hr
    side = size - size % scale
    h, w = hr.shape[-2:]
    ch, cw = min(side, h), min(side, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    top -= top % scale
    left -= left % scale
    return hr[..., top : top + ch, left : left + cw]


@dataclass(frozen=True, slots=True)
class IDRSamples:
    """IDRs of (image, degradation) pairs.

    Attributes:
        idr: (N, d) float32 IDR vectors, image-major (all degradations of image 0, then image 1, ...).
        labels: (N,) int index into `label_names` (the degradation).
        label_names: legend text per degradation.
        images: (N,) file stem of each sample's HR image.
        settings: the degradations, as their ``EvalSetting.as_dict()``.
    """

    idr: NDArray[np.float32]
    labels: NDArray[np.int64]
    label_names: list[str]
    images: list[str]
    settings: list[dict[str, float | str | int]] = field(default_factory=list)


def collect_idr(
    student: MRDAStudent,
    images: Iterable[tuple[str, torch.Tensor]],
    settings: Sequence[EvalSetting],
    *,
    scale: int,
    seed: int,
    dataset: str = "",
    crop: int = 0,
    device: torch.device | str = "cpu",
    total: int | None = None,
    progress: bool = False,
) -> IDRSamples:
    """DEN_S's IDR of every image under every degradation.

    Args:
        student: the MRDA student (only its DEN_S runs: ``student.den(lr)`` is ``student(lr).idr``).
        images: ``(name, hr)`` pairs, hr (3, H, W) float RGB in [0, 1] modcropped to `scale` (read lazily).
        settings: the degradations.
        scale: the model's scale.
        seed: the noise seed (see :func:`~blindsr.analysis.synth.synthesize_lr`).
        dataset: part of the noise seed.
        crop: use the centre crop of this HR size (0: whole images).
        device: where the network runs.
        total: the number of images, for the progress bar.
        progress: tqdm progress bar over the images.

    Raises:
        ValueError: no images, or an image too small for the scale.
    """
    from tqdm.auto import tqdm

    dev = torch.device(device)
    student = student.to(dev).eval()
    rows: list[NDArray[np.float32]] = []
    names: list[str] = []
    for name, hr in tqdm(images, desc="IDR", unit="img", total=total, disable=not progress, leave=False):
        hr_used = center_crop(hr, size=crop, scale=scale).to(dev)
        try:
            lr = synthesize_lr(hr_used, settings, scale=scale, seed=seed, key=(dataset, name))
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        with torch.no_grad():
            idr = student.den(lr)
        rows.append(idr.float().cpu().numpy())
        names.extend([name] * len(settings))
    if not rows:
        raise ValueError("no images to analyse")
    labels = np.tile(np.arange(len(settings), dtype=np.int64), len(rows))
    return IDRSamples(
        idr=np.concatenate(rows).astype(np.float32),
        labels=labels,
        label_names=set_labels(settings),
        images=names,
        settings=[s.as_dict() for s in settings],
    )


@dataclass(frozen=True, slots=True)
class IDRAnalysis:
    """IDR samples, their t-SNE embedding and their separability.

    Attributes:
        samples: the IDRs and labels.
        tsne: the 2-D embedding (with its seed and perplexity).
        separability: silhouette and k-NN accuracy of the labels in the IDR space.
    """

    samples: IDRSamples
    tsne: TSNEResult
    separability: Separability

    def arrays(self, **extra: object) -> dict[str, Any]:
        """The arrays :meth:`save` writes: ``idr``, ``labels``, ``label_names``, ``images``, ``embedding``, the t-SNE
        seed, perplexity, iterations and KL divergence, the scores, then `extra` (each as ``np.asarray``)."""
        s, t, q = self.samples, self.tsne, self.separability
        arrays: dict[str, Any] = {
            "idr": s.idr,
            "labels": s.labels,
            "label_names": np.array(s.label_names),
            "images": np.array(s.images),
            "embedding": t.embedding,
            "tsne_seed": t.seed,
            "tsne_perplexity": t.perplexity,
            "tsne_iterations": t.n_iter,
            "tsne_kl": t.kl_divergence,
            "silhouette": q.silhouette,
            "knn_accuracy": q.knn_accuracy,
            "knn_k": q.k,
        }
        arrays.update({k: np.asarray(v) for k, v in extra.items()})
        return arrays

    def save(self, path: str | Path, *, overwrite: bool = False, **extra: object) -> Path:
        """Write :meth:`arrays` (with `extra`) to the ``.npz`` file `path`, atomically; returns the path.

        Raises:
            OutputError: `path` exists and `overwrite` is False, or it is a folder.
        """
        from blindsr.analysis.output import write_npz

        return write_npz(path, self.arrays(**extra), overwrite=overwrite)


def analyze_idr(
    samples: IDRSamples,
    *,
    seed: int = 0,
    perplexity: float = 30.0,
    n_iter: int = 1000,
    k: int = 5,
    progress: bool = False,
) -> IDRAnalysis:
    """t-SNE of the IDRs (seeded) and the separability of their labels in IDR space.

    Args:
        samples: from :func:`collect_idr`.
        seed: the t-SNE seed.
        perplexity: t-SNE perplexity (capped for few points).
        n_iter: t-SNE iterations.
        k: neighbours of the k-NN accuracy.
        progress: progress bar over the t-SNE iterations.
    """
    embedding = run_tsne(samples.idr, perplexity=perplexity, n_iter=n_iter, seed=seed, progress=progress)
    return IDRAnalysis(
        samples=samples, tsne=embedding, separability=measure_separability(samples.idr, samples.labels, k=k)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class IDRReport:
    """What ``blindsr analyze idr`` shows and saves: the IDR analysis of one model on one benchmark set.

    Attributes:
        analysis: the IDRs, their t-SNE embedding and their separability.
        model: the model's name (zoo or file name).
        arch: its architecture id.
        scale: its scale.
        dataset: the benchmark set's name.
        kind: the degradation set (``iso``, ``aniso`` or ``noise``).
        n_images: how many HR images were degraded.
        crop: the centre crop of each HR image (0: whole images).
        seed: the seed of the noise and of t-SNE.
    """

    analysis: IDRAnalysis
    model: str
    arch: str
    scale: int
    dataset: str
    kind: str
    n_images: int
    crop: int
    seed: int

    @property
    def n_samples(self) -> int:
        """The number of (image, degradation) samples."""
        return len(self.analysis.samples.labels)

    def summary(self) -> str:
        """Two lines: the number of samples, and the separability of the degradations in IDR space."""
        n_settings = len(self.analysis.samples.settings)
        return (
            f"IDR: {self.n_samples} samples ({self.n_images} images of {self.dataset} x {n_settings} degradations)\n"
            f"separability in IDR space: {self.analysis.separability.summary()}"
        )

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the ``.npz`` file `path`: :meth:`IDRAnalysis.arrays`, then ``seed``, ``model``, ``arch``, ``scale``,
        ``dataset``, ``kind``, ``crop`` and ``settings`` (the degradations as JSON); atomically. Returns the path.

        Raises:
            OutputError: `path` exists and `overwrite` is False, or it is a folder.
        """
        return self.analysis.save(
            path,
            overwrite=overwrite,
            seed=self.seed,
            model=self.model,
            arch=self.arch,
            scale=self.scale,
            dataset=self.dataset,
            kind=self.kind,
            crop=self.crop,
            settings=json.dumps(self.analysis.samples.settings),
        )


def _first(bench: BenchmarkSet, n: int) -> Iterator[tuple[str, torch.Tensor]]:
    for index in range(n):
        item = bench[index]
        yield item.name, item.hr


def idr_report(
    student: MRDAStudent,
    bench: BenchmarkSet,
    settings: Sequence[EvalSetting],
    *,
    scale: int,
    kind: str,
    model: str,
    arch: str = "mrda_s",
    seed: int = 0,
    max_images: int = 0,
    crop: int = 0,
    perplexity: float = 30.0,
    n_iter: int = 1000,
    k: int = 5,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> IDRReport:
    """The IDR of every image of `bench` under every degradation, its t-SNE and its separability (Fig. 7, 8).

    :func:`collect_idr` over the first `max_images` images, then :func:`analyze_idr`.

    Args:
        student: the MRDA student.
        bench: the benchmark set, modcropped to `scale`.
        settings: the degradations (:func:`~blindsr.analysis.synth.degradation_set`).
        scale: the model's scale.
        kind: the name of the degradation set, recorded.
        model: the model's name, recorded.
        arch: its architecture id, recorded.
        seed: the seed of the noise and of t-SNE.
        max_images: use only the first N images (0: all).
        crop: use the centre `crop` x `crop` of each HR image (0: whole images).
        perplexity: t-SNE perplexity.
        n_iter: t-SNE iterations.
        k: neighbours of the k-NN accuracy.
        device: where the network runs.
        progress: progress bars (stderr).

    Raises:
        ValueError: `bench` not modcropped to `scale`, no images, an image too small, or fewer than 4 samples.
    """
    if bench.scale != scale:
        raise ValueError(f"the benchmark set is modcropped to x{bench.scale}, not to the scale x{scale}")
    n_images = min(len(bench), max_images) if max_images > 0 else len(bench)
    samples = collect_idr(
        student,
        _first(bench, n_images),
        settings,
        scale=scale,
        seed=seed,
        dataset=bench.dataset_name,
        crop=crop,
        device=device,
        total=n_images,
        progress=progress,
    )
    n = len(samples.labels)
    if n < 4:
        raise ValueError(f"only {n} samples: use more images or degradations (t-SNE needs at least 4)")
    analysis = analyze_idr(samples, seed=seed, perplexity=perplexity, n_iter=n_iter, k=k, progress=progress)
    return IDRReport(
        analysis=analysis,
        model=model,
        arch=arch,
        scale=scale,
        dataset=bench.dataset_name,
        kind=kind,
        n_images=n_images,
        crop=crop,
        seed=seed,
    )
