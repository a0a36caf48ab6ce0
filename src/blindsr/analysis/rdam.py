"""The RDAM modulation maps of an MRDA network over an image (paper Fig. 10).

Every RDA conv computes ``M = sigmoid(Conv(F))`` (Eq. 9; ``RDAConv.modulation_map``) and uses it as ``F2 = M·F1 + F``
(Eq. 10). :func:`collect_rdam_maps` records M of every RDA conv during one ordinary forward pass, with forward hooks
on the convs that compute M (``RDAConv.rdam``): the hooks only read the conv's output, so the network's results are
exactly those without hooks, and the hooks are removed when the call returns (also on errors).

M has the LR image's size. With ``rdam_channels = C`` it has one map per channel; they are averaged here. The
paper shows one map per image; :class:`RDAMMaps` gives the mean over all RDA convs, the mean per RDA block (its two
convs), and every conv's map. :func:`rdam_report` runs this over images (LR inputs, or LR synthesised from HR ones)
and returns an :class:`RDAMReport` (its text, its ``.npz``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from blindsr.analysis.synth import MIN_LR_SIDE, setting_label, synthesize_lr
from blindsr.degradations import EvalSetting
from blindsr.nets.mrda import RDAN, MRDAStudent, MRDATeacher, RDAConv

__all__ = [
    "NoRDAMError",
    "RDAMImage",
    "RDAMMaps",
    "RDAMReport",
    "collect_rdam_maps",
    "input_text",
    "rdam_convs",
    "rdam_network",
    "rdam_report",
]


class NoRDAMError(ValueError):
    """The network has no RDAM (built with ``modulation="none"`` or ``"da"``, or not an MRDA network)."""


def rdam_convs(rdan: RDAN, *, name: str = "the model") -> list[tuple[str, RDAConv]]:
    """The RDA convs with RDAM of `rdan`, in forward order: ``[("blocks.0.da_conv1", conv), ...]``.

    Raises:
        NoRDAMError: none has an RDAM (``modulation="none"`` or ``"da"``, Table V's S4/S5).
    """
    convs = []
    for i, block in enumerate(rdan.blocks):
        for attr in ("da_conv1", "da_conv2"):
            conv = getattr(block, attr)
            if isinstance(conv, RDAConv) and conv.rdam is not None:
                convs.append((f"blocks.{i}.{attr}", conv))
    if not convs:
        raise NoRDAMError(f"{name} has no RDAM modulation (built with modulation 'none' or 'da'): nothing to show")
    return convs


@dataclass(frozen=True, slots=True)
class RDAMMaps:
    """The modulation maps of one forward pass.

    Attributes:
        per_conv: (n_convs, B, h, w) M of every RDA conv (channel mean), in forward order, in (0, 1).
        names: the convs' module names (``blocks.0.da_conv1``, ...).
        sr: (B, 3, s·h, s·w) the network's SR output of the same pass.
    """

    per_conv: Tensor
    names: list[str]
    sr: Tensor

    @property
    def mean(self) -> Tensor:
        """(B, h, w) the mean over all RDA convs."""
        return self.per_conv.mean(dim=0)

    @property
    def per_block(self) -> Tensor:
        """(n_blocks, B, h, w) the mean of each RDA block's convs, in block order."""
        blocks: dict[str, list[Tensor]] = {}
        for name, m in zip(self.names, self.per_conv, strict=True):
            blocks.setdefault(name.rsplit(".", 1)[0], []).append(m)
        return torch.stack([torch.stack(ms).mean(dim=0) for ms in blocks.values()])


def rdam_network(model: nn.Module, *, arch: str = "", name: str = "the model") -> MRDAStudent:
    """`model` as an MRDA student with RDAM, or a one-line :class:`NoRDAMError` saying why not.

    Args:
        model: the loaded network.
        arch: its architecture id (``LoadedModel.arch``), for the message.
        name: how to call it in the message.
    """
    if isinstance(model, MRDATeacher):
        raise NoRDAMError(
            f"{name} is an MRDA teacher: it needs the MLN adapted on the HR image; use the student (mrda_s)"
        )
    if not isinstance(model, MRDAStudent):
        raise NoRDAMError(
            f"{name} ({arch or type(model).__name__}) is not an MRDA student: RDAM maps exist in MRDA students only"
        )
    rdam_convs(model.rdan, name=name)
    return model


def collect_rdam_maps(model: nn.Module, lr: Tensor, *, name: str = "the model") -> RDAMMaps:
    """Run an MRDA student on `lr` once and record every RDAM map (forward hooks; the output is unchanged).

    Args:
        model: an MRDA student (``MRDAStudent``); it runs under ``torch.no_grad``.
        lr: (B, 3, h, w) RGB in [0, 1].
        name: how to call the model in errors.

    Returns:
        :class:`RDAMMaps` with the maps and the SR output.

    Raises:
        NoRDAMError: not a student, or a network without RDAM.
    """
    student = rdam_network(model, name=name)
    convs = rdam_convs(student.rdan, name=name)
    maps: list[Tensor] = []
    handles = []

    def record(_module: nn.Module, _args: tuple[Tensor, ...], output: Tensor) -> None:
        maps.append(torch.sigmoid(output.detach()).mean(dim=1))

    try:
        for _, conv in convs:
            assert conv.rdam is not None
            handles.append(conv.rdam.register_forward_hook(record))
        with torch.no_grad():
            sr = student(lr).sr
    finally:
        for h in handles:
            h.remove()
    if len(maps) != len(convs):
        raise RuntimeError(f"recorded {len(maps)} RDAM maps for {len(convs)} RDA convs")
    return RDAMMaps(per_conv=torch.stack(maps), names=[n for n, _ in convs], sr=sr)


@dataclass(frozen=True, slots=True, kw_only=True)
class RDAMImage:
    """The RDAM maps of one image, as NumPy arrays (float32).

    Attributes:
        name: the image's file stem.
        lr: (h, w, 3) the LR image the student ran on.
        shown: (H, W, 3) the image the figure shows above the map: the HR image, or the LR input itself.
        shown_title: what `shown` is (``"HR"`` or ``"LR input"``).
        mean: (h, w) M averaged over all RDA convs (and channels).
        per_block: (n_blocks, h, w) the mean of each RDA block's convs.
        per_conv: (n_convs, h, w) every RDA conv's map.
    """

    name: str
    lr: NDArray[np.float32]
    shown: NDArray[np.float32]
    shown_title: str
    mean: NDArray[np.float32]
    per_block: NDArray[np.float32]
    per_conv: NDArray[np.float32]

    def summary(self) -> str:
        """One line: the LR size and the mean, range and spread of the mean map."""
        m = self.mean
        h, w = m.shape
        return (
            f"{self.name}: LR {w}x{h}, M mean {m.mean():.3f} (min {m.min():.3f}, max {m.max():.3f}, "
            f"std {m.std():.3f}) over {self.per_conv.shape[0]} RDA convs"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RDAMReport:
    """What ``blindsr analyze rdam`` shows and saves: the RDAM maps of one student over images (Fig. 10).

    Attributes:
        images: one per input image, in input order.
        conv_names: the RDA convs with RDAM, in forward order (``blocks.0.da_conv1``, ...).
        model: the model's name (zoo or file name).
        scale: its scale.
        setting: the degradation the LR images were synthesised with from HR inputs; None: the inputs are LR.
        seed: the noise seed of the synthesis.
    """

    images: list[RDAMImage]
    conv_names: list[str]
    model: str
    scale: int
    setting: EvalSetting | None
    seed: int

    @property
    def what(self) -> str:
        """What the student ran on (:func:`input_text`)."""
        return input_text(self.setting)

    def summary(self) -> str:
        """One line per image (:meth:`RDAMImage.summary`)."""
        return "\n".join(image.summary() for image in self.images)

    def arrays(self) -> dict[str, Any]:
        """The arrays :meth:`save` writes: ``names``, ``conv_names``, ``model``, ``scale``, ``degradation`` (the
        setting as JSON, ``null`` for LR inputs), ``seed``, then ``mean_<i>``, ``per_block_<i>``, ``per_conv_<i>`` and
        ``lr_<i>`` (h, w, 3) of every image i."""
        arrays: dict[str, Any] = {
            "names": np.array([image.name for image in self.images]),
            "conv_names": np.array(self.conv_names),
            "model": np.array(self.model),
            "scale": np.array(self.scale),
            "degradation": np.array(json.dumps(self.setting.as_dict() if self.setting is not None else None)),
            "seed": np.array(self.seed),
        }
        for i, image in enumerate(self.images):
            arrays[f"mean_{i}"] = image.mean
            arrays[f"per_block_{i}"] = image.per_block
            arrays[f"per_conv_{i}"] = image.per_conv
            arrays[f"lr_{i}"] = image.lr
        return arrays

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write :meth:`arrays` to the ``.npz`` file `path`, atomically; returns the path.

        Raises:
            OutputError: `path` exists and `overwrite` is False, or it is a folder.
        """
        from blindsr.analysis.output import write_npz

        return write_npz(path, self.arrays(), overwrite=overwrite)


def input_text(setting: EvalSetting | None) -> str:
    """What an RDAM figure shows maps of: ``LR synthesised with σ 2.6`` (HR inputs and a setting) or ``LR inputs``."""
    return f"LR synthesised with {setting_label(setting)}" if setting is not None else "LR inputs"


def _hwc(image: Tensor) -> NDArray[np.float32]:
    out: NDArray[np.float32] = image.permute(1, 2, 0).float().cpu().numpy()
    return out


def rdam_report(
    student: MRDAStudent,
    images: Iterable[tuple[str, Tensor]],
    *,
    model: str,
    scale: int,
    setting: EvalSetting | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    total: int | None = None,
    progress: bool = False,
) -> RDAMReport:
    """The RDAM maps of `student` over images: LR inputs as they are, or LR synthesised from HR inputs.

    With `setting`, each image is an HR image: it is modcropped to `scale` and its LR is synthesised with
    :func:`~blindsr.analysis.synth.synthesize_lr` (seed `seed`, keyed by the file stem). Without, each image is the
    LR input itself. Then :func:`collect_rdam_maps`.

    Args:
        student: an MRDA student with RDAM (:func:`rdam_network`).
        images: ``(path, image)`` pairs, image (3, H, W) float RGB in [0, 1] (read lazily); the path's stem names
            the image, errors quote the path.
        model: the model's name, recorded and quoted in errors.
        scale: the model's scale.
        setting: the degradation of HR inputs; None: the inputs are LR images.
        seed: the noise seed of the synthesis.
        device: where the network runs.
        total: the number of images, for the progress bar.
        progress: a tqdm progress bar over the images (stderr).

    Raises:
        ValueError: no images, or an image too small (an LR side below
            :data:`~blindsr.analysis.synth.MIN_LR_SIDE` px).
        NoRDAMError: a network without RDAM.
    """
    from tqdm.auto import tqdm

    from blindsr.ops.crop import modcrop

    dev = torch.device(device)
    student = student.to(dev).eval()
    shown_images: list[RDAMImage] = []
    conv_names: list[str] = []
    for path, image in tqdm(images, desc="RDAM", unit="img", total=total, disable=not progress):
        stem = PurePath(path).stem
        if setting is not None:
            hr = modcrop(image, scale)
            try:
                lr = synthesize_lr(hr.to(dev), [setting], scale=scale, seed=seed, key=(stem,))
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None
            shown, shown_title = hr, "HR"
        else:
            h, w = image.shape[-2:]
            if min(h, w) < MIN_LR_SIDE:
                raise ValueError(f"image too small: {path} is {w}x{h} (at least {MIN_LR_SIDE} px per side needed)")
            lr = image.unsqueeze(0).to(dev)
            shown, shown_title = image, "LR input"
        maps = collect_rdam_maps(student, lr, name=model)
        conv_names = maps.names
        shown_images.append(
            RDAMImage(
                name=stem,
                lr=_hwc(lr[0]),
                shown=_hwc(shown),
                shown_title=shown_title,
                mean=maps.mean[0].float().cpu().numpy(),
                per_block=maps.per_block[:, 0].float().cpu().numpy(),
                per_conv=maps.per_conv[:, 0].float().cpu().numpy(),
            )
        )
    if not shown_images:
        raise ValueError("no images to analyse")
    return RDAMReport(images=shown_images, conv_names=conv_names, model=model, scale=scale, setting=setting, seed=seed)
