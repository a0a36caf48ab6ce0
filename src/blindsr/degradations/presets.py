"""Named degradation presets: training distributions and the fixed evaluation protocols of the papers.

Training presets (:func:`get_training_preset`) are `DegradationSpec` objects:

========================  ==================================================================================
``bicubic``               no blur, no noise: plain MATLAB bicubic downscaling (classic non-blind SR)
``dmsr``                  DMSR: iso 15x15, sigma_k ~ U[0.2, 3.0], sigma_n ~ U[0, 75], per image, replicate blur
                          padding, float LR (no clip/round)
``mrda-iso-x4``           MRDA classic x4: iso 21x21, sigma ~ U[0.2, 4.0], noise-free, per batch (MAML task),
                          reflect padding, LR clipped and rounded to 8 bits
``mrda-iso-x2``           MRDA classic x2: as above with sigma ~ U[0.2, 2.0]
``mrda-iso-x3``           MRDA classic x3 (not in the paper; docs/specs/mrda.md §4.6): as above with the IKC-style
                          U[0.2, 3.0]
``mrda-aniso-noise``      MRDA aniso + noise x4: lambda1, lambda2 ~ U[0.2, 4], theta ~ U[0, pi),
                          sigma_n ~ U[0, 25], per batch, reflect padding, 8-bit LR
========================  ==================================================================================

Evaluation presets (:func:`get_eval_preset`, ``blindsr protocols``) are frozen `EvalPreset` objects listing every
(kernel, noise) setting per scale, with the padding, bicubic border, LR storage, noise seeding and metric protocol.
A ``-xS`` suffix restricts a preset to one scale (``gaussian8-x4``, ``gaussian8-x4.mrda``).

Noise seeding (docs/specs/degradations_and_protocols.md §7): the noise of image ``stem`` of ``dataset`` at scale ``s``
and setting index ``i`` is drawn from a CPU generator seeded with ``derive_seed(preset, dataset, stem, "x{s}", i)``, so
every number is reproducible on any device and independent of the order and number of images.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

import torch

from blindsr.degradations.apply import DegradationResult, degrade
from blindsr.degradations.kernels import anisotropic_gaussian_kernels, isotropic_gaussian_kernels
from blindsr.degradations.noise import derive_seed, standard_normal
from blindsr.degradations.spec import DegradationParams, DegradationSpec, Pipeline

__all__ = [
    "EVAL_PRESETS",
    "TRAINING_PRESETS",
    "EvalPreset",
    "EvalSetting",
    "eval_preset_names",
    "get_eval_preset",
    "get_training_preset",
]

# ----------------------------------------------------------------------------------------------------------------
# Training presets
# ----------------------------------------------------------------------------------------------------------------

_FLOAT_REPLICATE = Pipeline(blur_padding="replicate", bicubic_border="symmetric", clip=False, quantize=False)
_UINT8_REFLECT = Pipeline(blur_padding="reflect", bicubic_border="symmetric", clip=True, quantize=True)

TRAINING_PRESETS: Final[Mapping[str, DegradationSpec]] = MappingProxyType(
    {
        "bicubic": DegradationSpec(
            kernel_size=15, kernel="none", noise=(0.0, 0.0), per="image", pipeline=_FLOAT_REPLICATE
        ),
        "dmsr": DegradationSpec(
            kernel_size=15, kernel="iso", sigma=(0.2, 3.0), noise=(0.0, 75.0), per="image", pipeline=_FLOAT_REPLICATE
        ),
        "mrda-iso-x4": DegradationSpec(
            kernel_size=21, kernel="iso", sigma=(0.2, 4.0), noise=(0.0, 0.0), per="batch", pipeline=_UINT8_REFLECT
        ),
        "mrda-iso-x2": DegradationSpec(
            kernel_size=21, kernel="iso", sigma=(0.2, 2.0), noise=(0.0, 0.0), per="batch", pipeline=_UINT8_REFLECT
        ),
        "mrda-iso-x3": DegradationSpec(
            kernel_size=21, kernel="iso", sigma=(0.2, 3.0), noise=(0.0, 0.0), per="batch", pipeline=_UINT8_REFLECT
        ),
        "mrda-aniso-noise": DegradationSpec(
            kernel_size=21,
            kernel="aniso",
            lambda1=(0.2, 4.0),
            lambda2=(0.2, 4.0),
            theta=(0.0, math.pi),
            noise=(0.0, 25.0),
            per="batch",
            pipeline=_UINT8_REFLECT,
        ),
    }
)


def _closest(name: str, names: list[str]) -> str:
    import difflib

    hits = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    return f" (did you mean {', '.join(repr(h) for h in hits)}?)" if hits else ""


def get_training_preset(name: str, *, per: Literal["image", "batch"] | None = None) -> DegradationSpec:
    """A training `DegradationSpec` by name, optionally switching per-image / per-batch sampling.

    >>> get_training_preset("dmsr").noise
    (0.0, 75.0)
    >>> get_training_preset("dmsr", per="batch").per
    'batch'
    """
    if name not in TRAINING_PRESETS:
        raise KeyError(
            f"unknown training preset {name!r}{_closest(name, list(TRAINING_PRESETS))}; "
            f"known: {', '.join(TRAINING_PRESETS)}"
        )
    spec = TRAINING_PRESETS[name]
    return spec if per is None else spec.with_(per=per)


# ----------------------------------------------------------------------------------------------------------------
# Evaluation presets
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvalSetting:
    """One fixed (kernel, noise) cell of an evaluation preset.

    Attributes:
        kernel: ``"iso"`` or ``"aniso"``.
        sigma: isotropic width (0 = delta kernel).
        lambda1, lambda2, theta_deg: anisotropic parameters (standard-deviation convention, degrees).
        kernel_index: 1-based kernel number for anisotropic presets (the paper's column), else 0.
        noise: noise level on the 0-255 scale.
    """

    kernel: Literal["iso", "aniso"]
    noise: float = 0.0
    sigma: float = 0.0
    lambda1: float = 0.0
    lambda2: float = 0.0
    theta_deg: float = 0.0
    kernel_index: int = 0

    @property
    def label(self) -> str:
        """Stable label used in reports, JSON and folder names: ``k1.3-n15`` (iso) or ``a2-n10`` (aniso)."""
        if self.kernel == "iso":
            return f"k{self.sigma:g}-n{self.noise:g}"
        return f"a{self.kernel_index}-n{self.noise:g}"

    def kernel_tensor(self, size: int) -> torch.Tensor:
        """The (size, size) float64 kernel of this setting."""
        if self.kernel == "iso":
            return isotropic_gaussian_kernels(torch.tensor([self.sigma], dtype=torch.float64), size)[0]
        return anisotropic_gaussian_kernels(
            torch.tensor([self.lambda1], dtype=torch.float64),
            torch.tensor([self.lambda2], dtype=torch.float64),
            torch.tensor([math.radians(self.theta_deg)], dtype=torch.float64),
            size,
        )[0]

    def as_dict(self) -> dict[str, float | str | int]:
        """JSON-friendly description (the keys used in evaluation records)."""
        if self.kernel == "iso":
            return {"label": self.label, "kernel": "iso", "kernel_sigma": self.sigma, "noise": self.noise}
        return {
            "label": self.label,
            "kernel": "aniso",
            "kernel_index": self.kernel_index,
            "lambda1": self.lambda1,
            "lambda2": self.lambda2,
            "theta_deg": self.theta_deg,
            "noise": self.noise,
        }


@dataclass(frozen=True, slots=True)
class EvalPreset:
    """A named, frozen evaluation protocol: which LR images to synthesise and how to score them.

    Attributes:
        name: canonical name (``dmsr-grid``, ``gaussian8``, ...).
        description: one line for listings.
        source: where the protocol comes from (paper table / reference code).
        grid: ``((scale, settings), ...)``: the settings of each scale, in the paper's order. A setting's position
            in its tuple is its index for noise seeding.
        datasets: the benchmark sets the papers report.
        kernel_size: odd kernel size.
        pipeline: blur padding, bicubic border, clipping / 8-bit quantisation of the LR.
        lr_format: ``"float"`` (kept as float32, e.g. ``.npy``) or ``"uint8"`` (clamped and rounded, PNG-lossless).
        metric_protocol: the metric protocol name (``sr-y``: PSNR/SSIM on MATLAB Y, crop = scale, 8-bit SR).
        average: how a table cell averages: ``"per_setting"`` (one cell per setting) or ``"over_settings"``
            (Gaussian8: the mean over all (image, setting) pairs; per-setting values are reported too).
        visual_only: True when the papers use the preset only for figures.
        paper_tables: published tables with numbers for this preset (see ``blindsr.eval.paper_results``).
        notes: caveats users must know before comparing.
    """

    name: str
    description: str
    source: str
    grid: tuple[tuple[int, tuple[EvalSetting, ...]], ...]
    datasets: tuple[str, ...]
    kernel_size: int
    pipeline: Pipeline
    lr_format: Literal["float", "uint8"]
    metric_protocol: str = "sr-y"
    average: Literal["per_setting", "over_settings"] = "per_setting"
    visual_only: bool = False
    paper_tables: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(s for s, _ in self.grid)

    def settings_for(self, scale: int) -> tuple[EvalSetting, ...]:
        """The settings of `scale`, in order (their index is the seeding index)."""
        for s, settings in self.grid:
            if s == scale:
                return settings
        raise ValueError(
            f"preset {self.name!r} has no scale x{scale}; it has {', '.join(f'x{s}' for s in self.scales)}"
        )

    def cells(self, scales: tuple[int, ...] | None = None) -> Iterator[tuple[int, int, EvalSetting]]:
        """Every ``(scale, setting_index, setting)`` of the preset (optionally for some scales only)."""
        for s, settings in self.grid:
            if scales is None or s in scales:
                for i, setting in enumerate(settings):
                    yield s, i, setting

    def restricted(self, scales: tuple[int, ...]) -> EvalPreset:
        """A copy limited to `scales` (the name is unchanged, so seeds are unchanged)."""
        for s in scales:
            self.settings_for(s)
        from dataclasses import replace

        return replace(self, grid=tuple((s, st) for s, st in self.grid if s in scales))

    def noise_seed(self, *, dataset: str, stem: str, scale: int, setting_index: int) -> int:
        """The noise seed of one (dataset, image, scale, setting) cell (docs/specs/degradations_and_protocols.md §7)."""
        return derive_seed(self.name, dataset, stem, f"x{scale}", setting_index)

    def params(self, setting: EvalSetting) -> DegradationParams:
        """The setting as a one-sample `DegradationParams` (float64 kernel; cast when applying)."""
        kernel = setting.kernel_tensor(self.kernel_size).unsqueeze(0)
        return DegradationParams(
            kernels=kernel,
            noise_sigma=torch.tensor([setting.noise], dtype=torch.float64),
            pipeline=self.pipeline,
        )

    def degrade(
        self,
        hr: torch.Tensor,
        *,
        scale: int,
        setting_index: int,
        dataset: str,
        stem: str,
    ) -> DegradationResult:
        """Synthesise the LR image of one cell, with its seeded noise.

        Args:
            hr: (3, H, W) or (1, 3, H, W) float RGB in [0, 1], H and W divisible by `scale` (modcropped).
            scale: the scale factor.
            setting_index: index into ``settings_for(scale)``.
            dataset: the benchmark set's name (part of the noise seed).
            stem: the image's file stem (part of the noise seed).

        Returns:
            A `DegradationResult` with a batch dimension of 1, on ``hr``'s device. For ``lr_format="uint8"``
            presets the LR is already clamped and rounded to 8 bits.
        """
        setting = self.settings_for(scale)[setting_index]
        x = hr.unsqueeze(0) if hr.ndim == 3 else hr
        if x.shape[0] != 1:
            raise ValueError("EvalPreset.degrade takes a single image")
        _, c, h, w = x.shape
        noise = None
        if setting.noise > 0:
            g = torch.Generator().manual_seed(
                self.noise_seed(dataset=dataset, stem=stem, scale=scale, setting_index=setting_index)
            )
            noise = standard_normal((c, h // scale, w // scale), generator=g).unsqueeze(0)
        deg = self.params(setting).to(x.device, dtype=x.dtype)
        return degrade(x, deg, scale=scale, noise=noise)


def _iso(sigmas: tuple[float, ...], noises: tuple[float, ...] = (0.0,)) -> tuple[EvalSetting, ...]:
    """Noise-major order (all kernels at the first noise level, then the next), as the papers' tables."""
    return tuple(EvalSetting(kernel="iso", sigma=s, noise=n) for n in noises for s in sigmas)


def _aniso(kernels: tuple[tuple[float, float, float], ...], noises: tuple[float, ...]) -> tuple[EvalSetting, ...]:
    return tuple(
        EvalSetting(kernel="aniso", lambda1=l1, lambda2=l2, theta_deg=t, kernel_index=i + 1, noise=n)
        for n in noises
        for i, (l1, l2, t) in enumerate(kernels)
    )


def _linspace(a: float, b: float, n: int) -> tuple[float, ...]:
    return tuple(round(a + (b - a) * i / (n - 1), 10) for i in range(n))


_DMSR_GRID = _iso((0.2, 1.3, 2.6), (15.0, 50.0)) + _iso((0.2,), (0.0,))
_G8 = {2: _linspace(0.8, 1.6, 8), 3: _linspace(1.35, 2.4, 8), 4: _linspace(1.8, 3.2, 8)}
_MRDA_TABLE3_KERNELS = (
    (4.0, 0.9, 0.0),
    (3.5, 1.5, 20.0),
    (3.0, 2.0, 45.0),
    (2.5, 2.5, 0.0),
    (3.0, 2.0, 0.0),
    (3.5, 1.5, 20.0),
    (4.0, 1.1, 40.0),
    (3.5, 2.5, 60.0),
    (4.0, 4.0, 0.0),
)
_DASR_TABLE3_KERNELS = (
    (2.0, 0.2, 0.0),
    (2.0, 1.0, 10.0),
    (3.5, 1.5, 30.0),
    (3.5, 2.0, 45.0),
    (3.5, 2.0, 90.0),
    (4.0, 1.5, 120.0),
    (4.0, 2.0, 135.0),
    (4.0, 3.0, 165.0),
    (4.0, 4.0, 180.0),
)
_FLOAT_REPLICATE_EVAL = Pipeline(blur_padding="replicate", bicubic_border="symmetric")
_UINT8_REFLECT_SYM = Pipeline(blur_padding="reflect", bicubic_border="symmetric", clip=True, quantize=True)
_UINT8_REFLECT_REP = Pipeline(blur_padding="reflect", bicubic_border="replicate", clip=True, quantize=True)
_SETS_CLASSIC = ("Set5", "Set14", "B100", "Urban100", "Manga109")

_PRESET_LIST: tuple[EvalPreset, ...] = (
    EvalPreset(
        name="dmsr-grid",
        description="DMSR Table 1: iso 15x15 sigma_k {0.2, 1.3, 2.6} x sigma_n {15, 50}, plus noise-free [0.2, 0]",
        source="DMSR paper, Table 1 (SRMD test protocol)",
        grid=tuple((s, _DMSR_GRID) for s in (2, 3, 4)),
        datasets=("Set5", "Set14", "B100"),
        kernel_size=15,
        pipeline=_FLOAT_REPLICATE_EVAL,
        lr_format="float",
        paper_tables=("DMSR Table 1",),
        notes=(
            "LR kept in float32: not clipped, not rounded (SRMD's MATLAB test code).",
            "Replicate blur padding: SRMD's imfilter(..., 'replicate'); the DMSR paper does not say.",
            "The [0.2, 0] cell is the DMSR-nf row of Table 1.",
        ),
    ),
    EvalPreset(
        name="dmsr-nf",
        description="DMSR Table 1 noise-free row: iso 15x15 sigma_k 0.2, no noise",
        source="DMSR paper, Table 1 (DMSR-nf row)",
        grid=tuple((s, _iso((0.2,), (0.0,))) for s in (2, 3, 4)),
        datasets=("Set5", "Set14", "B100"),
        kernel_size=15,
        pipeline=_FLOAT_REPLICATE_EVAL,
        lr_format="float",
        paper_tables=("DMSR Table 1",),
    ),
    EvalPreset(
        name="dmsr-window",
        description="DMSR Fig. C.9 window: sigma_k {0.3, 1.2, 2.1, 3.0} x sigma_n {0, 15, ..., 75} (visual)",
        source="DMSR paper, Fig. C.9",
        grid=tuple((s, _iso((0.3, 1.2, 2.1, 3.0), (0.0, 15.0, 30.0, 45.0, 60.0, 75.0))) for s in (2, 3, 4)),
        datasets=("Set5", "Set14", "B100"),
        kernel_size=15,
        pipeline=_FLOAT_REPLICATE_EVAL,
        lr_format="float",
        visual_only=True,
    ),
    EvalPreset(
        name="gaussian8",
        description="Gaussian8 (IKC): 8 iso 21x21 widths per scale, noise-free, 8-bit LR; mean over all pairs",
        source="IKC paper; MRDA Table II (x4)",
        grid=tuple((s, _iso(_G8[s])) for s in (2, 3, 4)),
        datasets=_SETS_CLASSIC,
        kernel_size=21,
        pipeline=_UINT8_REFLECT_SYM,
        lr_format="uint8",
        average="over_settings",
        paper_tables=("MRDA Table II (x4)",),
        notes=(
            "Widths: x2 linspace(0.8, 1.6, 8); x3 linspace(1.35, 2.4, 8); x4 linspace(1.8, 3.2, 8).",
            "MATLAB-exact bicubic with symmetric borders; use gaussian8.mrda to match MRDA's reference code.",
            "Urban100 and Manga109 are not in the shared data: pass your own HR folders.",
        ),
    ),
    EvalPreset(
        name="gaussian8.mrda",
        description="Gaussian8 as MRDA/KDSR's reference code computes it: replicate bicubic borders",
        source="MRDA reference code (Zj-BinXia/MRDA@36f9c65)",
        grid=tuple((s, _iso(_G8[s])) for s in (2, 3, 4)),
        datasets=_SETS_CLASSIC,
        kernel_size=21,
        pipeline=_UINT8_REFLECT_REP,
        lr_format="uint8",
        average="over_settings",
        paper_tables=("MRDA Table II (x4)",),
    ),
    EvalPreset(
        name="gaussian8.kdsr",
        description="Gaussian8 x2 variant of the KDSR code: sigma 0.9, 1.0, ..., 1.6; replicate bicubic borders",
        source="KDSR reference code",
        grid=((2, _iso(_linspace(0.9, 1.6, 8))),),
        datasets=_SETS_CLASSIC,
        kernel_size=21,
        pipeline=_UINT8_REFLECT_REP,
        lr_format="uint8",
        average="over_settings",
    ),
    EvalPreset(
        name="mrda-aniso",
        description="MRDA Table III (approximate): Set14 x4, 9 aniso 21x21 kernels x noise {0, 10, 20}",
        source="MRDA paper, Table III; kernels fitted to the paper's thumbnails (only #2 is published exactly)",
        grid=((4, _aniso(_MRDA_TABLE3_KERNELS, (0.0, 10.0, 20.0))),),
        datasets=("Set14",),
        kernel_size=21,
        pipeline=_UINT8_REFLECT_REP,
        lr_format="uint8",
        paper_tables=("MRDA Table III",),
        notes=(
            "Approximate Table III: kernel parameters are not published; all but #2 are fitted (+-0.25, +-5 deg).",
            "Kernel #6 is very likely a duplicate of #2 (identical scores in the paper); kept as a duplicate.",
            "Noise is seeded per image here; the reference code draws unseeded noise.",
        ),
    ),
    EvalPreset(
        name="dasr-iso",
        description="DASR Table 2 iso widths per scale (0 = bicubic only), noise-free, 8-bit LR",
        source="DASR paper, Table 2; MRDA Table VI (x4, Urban100)",
        grid=(
            (2, _iso((0.0, 0.6, 1.2, 1.8))),
            (3, _iso((0.0, 0.8, 1.6, 2.4))),
            (4, _iso((0.0, 1.2, 2.4, 3.6))),
        ),
        datasets=("Set5", "Set14", "B100", "Urban100"),
        kernel_size=21,
        pipeline=_UINT8_REFLECT_REP,
        lr_format="uint8",
        paper_tables=("MRDA Table VI (teacher, x4, Urban100)",),
    ),
    EvalPreset(
        name="dasr-aniso",
        description="DASR Table 3: x4, 9 aniso 21x21 kernels x noise {0, 5, 10}",
        source="DASR paper, Table 3 (kernels as given in I2-Multimedia-Lab/DSAT#2)",
        grid=((4, _aniso(_DASR_TABLE3_KERNELS, (0.0, 5.0, 10.0))),),
        datasets=("B100",),
        kernel_size=21,
        pipeline=_UINT8_REFLECT_REP,
        lr_format="uint8",
        notes=("The noise levels and the dataset (B100) are not verified against the DASR paper.",),
    ),
)

EVAL_PRESETS: Final[Mapping[str, EvalPreset]] = MappingProxyType({p.name: p for p in _PRESET_LIST})
_ALIASES: Final[Mapping[str, str]] = MappingProxyType({"mrda-aniso-noise": "mrda-aniso", "dmsr": "dmsr-grid"})
_SCALE_SUFFIX = re.compile(r"^(?P<base>.+?)-x(?P<scale>\d+)(?P<tag>\.[a-z0-9]+)?$")


def eval_preset_names() -> tuple[str, ...]:
    """Canonical evaluation preset names, in listing order."""
    return tuple(EVAL_PRESETS)


def get_eval_preset(name: str) -> EvalPreset:
    """An evaluation preset by name; ``NAME-xS[.tag]`` restricts it to scale S (e.g. ``gaussian8-x4.mrda``).

    >>> get_eval_preset("gaussian8-x4").scales
    (4,)
    >>> [s.label for s in get_eval_preset("dmsr-grid").settings_for(4)][:3]
    ['k0.2-n15', 'k1.3-n15', 'k2.6-n15']
    """
    key = _ALIASES.get(name, name)
    if key in EVAL_PRESETS:
        return EVAL_PRESETS[key]
    m = _SCALE_SUFFIX.match(name)
    if m:
        base = _ALIASES.get(m["base"], m["base"]) + (m["tag"] or "")
        if base in EVAL_PRESETS:
            return EVAL_PRESETS[base].restricted((int(m["scale"]),))
    known = list(EVAL_PRESETS) + list(_ALIASES)
    raise KeyError(f"unknown evaluation preset {name!r}{_closest(name, known)}; known: {', '.join(EVAL_PRESETS)}")
