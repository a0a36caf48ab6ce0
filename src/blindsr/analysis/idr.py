"""The implicit degradation representation (IDR) of an MRDA student over a set of degradations (paper Fig. 7, 8).

For every HR image of a benchmark set and every degradation of a set (:mod:`blindsr.analysis.synth`), the LR image
is synthesised and DEN_S maps it to its IDR ``D_S`` (``MRDAStudent(lr).idr``, the 256-d vector that guides RDAN).
The IDRs are then embedded in 2-D with t-SNE (:mod:`blindsr.analysis.tsne`) and the separability of the
degradation labels is measured in the IDR space itself (:mod:`blindsr.analysis.separability`).

Only the student has an IDR computed from the LR image alone: the teacher's needs the MLN adapted on the HR image
(an oracle), the MLN and DMSR have none (DMSR estimates an explicit kernel and noise map). :func:`idr_network`
says so in one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from blindsr.analysis.separability import Separability, measure_separability
from blindsr.analysis.synth import set_labels, synthesize_lr
from blindsr.analysis.tsne import TSNEResult, run_tsne
from blindsr.degradations import EvalSetting
from blindsr.nets.mrda import MRDAStudent

__all__ = ["IDRAnalysis", "IDRSamples", "NoIDRError", "analyze_idr", "center_crop", "collect_idr", "idr_network"]


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
        from blindsr.nets import ARCHS

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

    def save_npz(self, path: str | Path, **extra: object) -> None:
        """Write ``idr``, ``labels``, ``label_names``, ``images``, ``embedding``, the seeds and scores to `path`."""
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
        from blindsr.files import atomic_write

        atomic_write(path, lambda fh: np.savez(fh, **arrays))


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
