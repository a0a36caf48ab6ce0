"""What a degradation is: distributions to sample from (`DegradationSpec`) and per-sample draws (`DegradationParams`).

The classic blind-SR model is ``y = (x * k) downarrow_s + n`` (blur, MATLAB bicubic downscaling, additive noise).
`Pipeline` holds the protocol choices that are *not* random (blur padding, bicubic border, clipping, 8-bit
quantisation); a `DegradationSpec` adds the random parts; `DegradationParams` is one batch of draws, ready for the
pure function :func:`blindsr.degradations.apply.degrade`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import torch

from blindsr.ops.checks import check_odd_kernel_size

__all__ = ["DegradationParams", "DegradationSpec", "KernelFamily", "Pipeline", "SampleMode"]

KernelFamily = Literal["iso", "aniso", "none"]
SampleMode = Literal["image", "batch"]
_PADDINGS = ("replicate", "reflect", "circular", "zeros")
_BORDERS = ("symmetric", "replicate")


def _check_range(name: str, r: tuple[float, float], *, low: float = 0.0) -> None:
    if len(r) != 2 or not all(math.isfinite(v) for v in r) or r[0] > r[1] or r[0] < low:
        raise ValueError(f"{name} must be a range (lo, hi) with {low} <= lo <= hi, got {r}")


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Deterministic protocol choices of a degradation.

    Attributes:
        blur_padding: border mode of the blur: ``"replicate"`` (SRMD/DMSR) or ``"reflect"`` (DASR/MRDA/IKC).
        bicubic_border: ``"symmetric"`` (MATLAB) or ``"replicate"`` (DASR/MRDA reference code).
        clip: clamp the noisy LR to [0, 1].
        quantize: round the noisy LR to 8 bits (implies clipping), as saving a PNG would.
        quantize_clean: round the clean LR to 8 bits *before* adding noise (SRMD's training code).
    """

    blur_padding: Literal["replicate", "reflect", "circular", "zeros"] = "replicate"
    bicubic_border: Literal["symmetric", "replicate"] = "symmetric"
    clip: bool = False
    quantize: bool = False
    quantize_clean: bool = False

    def __post_init__(self) -> None:
        if self.blur_padding not in _PADDINGS:
            raise ValueError(f"blur_padding must be one of {_PADDINGS}, got {self.blur_padding!r}")
        if self.bicubic_border not in _BORDERS:
            raise ValueError(f"bicubic_border must be one of {_BORDERS}, got {self.bicubic_border!r}")


@dataclass(frozen=True, slots=True)
class DegradationSpec:
    """Distributions of a training degradation (all ranges uniform, ``[lo, hi]``; theta ``[lo, hi)``).

    Attributes:
        kernel_size: odd blur-kernel size.
        kernel: ``"iso"`` (sigma), ``"aniso"`` (lambda1, lambda2, theta) or ``"none"`` (bicubic only).
        sigma: isotropic width range in pixels.
        lambda1: anisotropic standard deviation range along the kernel's first axis.
        lambda2: anisotropic standard deviation range along its second axis.
        theta: rotation range in radians (MRDA paper: ``[0, pi)``).
        noise: noise level range on the 0-255 scale.
        noise_free_prob: probability that a sample's noise level is set to 0 after its draw (our addition, not in
            either paper: a uniform U[0, 75] almost never yields clean inputs, and a model that never sees one
            over-smooths clean photos). ``0`` keeps the paper's distribution and its random stream unchanged.
        per: ``"image"`` draws one degradation per image (DMSR, DASR); ``"batch"`` one per batch, a MAML "task"
            (MRDA).
        pipeline: the deterministic choices (padding, borders, clipping, quantisation).

    >>> DegradationSpec(kernel_size=15, sigma=(0.2, 3.0), noise=(0, 75)).per
    'image'
    """

    kernel_size: int = 15
    kernel: KernelFamily = "iso"
    sigma: tuple[float, float] = (0.2, 3.0)
    lambda1: tuple[float, float] = (0.2, 4.0)
    lambda2: tuple[float, float] = (0.2, 4.0)
    theta: tuple[float, float] = (0.0, math.pi)
    noise: tuple[float, float] = (0.0, 0.0)
    noise_free_prob: float = 0.0
    per: SampleMode = "image"
    pipeline: Pipeline = field(default_factory=Pipeline)

    def __post_init__(self) -> None:
        check_odd_kernel_size(self.kernel_size)
        if self.kernel not in ("iso", "aniso", "none"):
            raise ValueError(f"kernel must be 'iso', 'aniso' or 'none', got {self.kernel!r}")
        if self.per not in ("image", "batch"):
            raise ValueError(f"per must be 'image' or 'batch', got {self.per!r}")
        for name in ("sigma", "noise"):
            _check_range(name, tuple(getattr(self, name)))
        for name in ("lambda1", "lambda2"):
            _check_range(name, tuple(getattr(self, name)), low=1e-6)
        if not 0.0 <= self.noise_free_prob <= 1.0:
            raise ValueError(f"noise_free_prob must be in [0, 1], got {self.noise_free_prob}")
        th = tuple(self.theta)
        if len(th) != 2 or th[0] > th[1]:
            raise ValueError(f"theta must be a range (lo, hi) in radians, got {self.theta}")

    def with_(self, **changes: object) -> DegradationSpec:
        """A copy with some fields changed (e.g. ``per="batch"``)."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class DegradationParams:
    """One batch of sampled degradations, ready to apply.

    Attributes:
        kernels: (B, k, k) blur kernels, each summing to 1.
        noise_sigma: (B,) noise levels on the 0-255 scale.
        pipeline: the deterministic protocol choices.
        kernel_sigma: (B,) isotropic widths, when the kernels are isotropic.
        lambda1, lambda2, theta: (B,) anisotropic parameters (theta in radians), when anisotropic.
    """

    kernels: torch.Tensor
    noise_sigma: torch.Tensor
    pipeline: Pipeline = field(default_factory=Pipeline)
    kernel_sigma: torch.Tensor | None = None
    lambda1: torch.Tensor | None = None
    lambda2: torch.Tensor | None = None
    theta: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.kernels.ndim != 3 or self.kernels.shape[-1] != self.kernels.shape[-2]:
            raise ValueError(f"kernels must be (B, k, k), got {tuple(self.kernels.shape)}")
        check_odd_kernel_size(int(self.kernels.shape[-1]))
        if self.noise_sigma.shape != (self.kernels.shape[0],):
            raise ValueError(
                f"noise_sigma must have shape ({self.kernels.shape[0]},), got {tuple(self.noise_sigma.shape)}"
            )

    @property
    def batch_size(self) -> int:
        return int(self.kernels.shape[0])

    @property
    def kernel_size(self) -> int:
        return int(self.kernels.shape[-1])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> DegradationParams:
        """Move every tensor to `device` (and floating tensors to `dtype`)."""
        changes: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                changes[f.name] = v.to(device=device, dtype=dtype if dtype is not None else v.dtype)
        return replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> list[dict[str, float]]:
        """Per-sample parameters as plain floats (theta in degrees), for logs and JSON."""
        out: list[dict[str, float]] = []
        for b in range(self.batch_size):
            row: dict[str, float] = {"noise": float(self.noise_sigma[b])}
            if self.kernel_sigma is not None:
                row["kernel_sigma"] = float(self.kernel_sigma[b])
            if self.lambda1 is not None and self.lambda2 is not None and self.theta is not None:
                row.update(
                    lambda1=float(self.lambda1[b]),
                    lambda2=float(self.lambda2[b]),
                    theta_deg=math.degrees(float(self.theta[b])),
                )
            out.append(row)
        return out
