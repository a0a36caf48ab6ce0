"""The degradations the analysis commands synthesise LR images with, and a seeded, exact way to apply them.

Each degradation is an :class:`~blindsr.degradations.EvalSetting` (iso or aniso Gaussian kernel + noise level), applied
as MRDA's evaluation presets do (``gaussian8``): 21x21 kernel, reflect blur padding, MATLAB-exact bicubic
downscaling, the LR clipped and rounded to 8 bits. Noise is seeded per (seed, image, setting), as the evaluation
presets seed theirs (docs/specs/degradations_and_protocols.md §7), so a figure is reproducible on any device.

Sets of degradations (paper Sec. IV-C):

* ``iso`` (Fig. 7): isotropic widths, by default the Gaussian8 widths of the scale (x4: 1.8, 2.0, ..., 3.2);
* ``aniso`` (Fig. 8a, c): the anisotropic kernels of MRDA Table III (preset ``mrda-aniso``), duplicates dropped;
* ``noise`` (Fig. 8b, d): one kernel (default: none, i.e. bicubic only) and several noise levels (0, 5, ..., 25,
  the range of the ``mrda-aniso-noise`` training preset).

Text form of one degradation (``--degradation`` of ``blindsr analyze rdam``)::

    bicubic            no blur
    iso:SIGMA          isotropic Gaussian, e.g. iso:2.6
    aniso:L1,L2,THETA  anisotropic Gaussian (standard deviations, angle in degrees), e.g. aniso:3.5,1.5,20

>>> parse_degradation("aniso:3.5,1.5,20", noise=10).as_dict()["lambda1"]
3.5
>>> set_labels(degradation_set(kind="noise", scale=4, noise_levels=(0, 15)))
['σn 0', 'σn 15']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import torch
from torch import Tensor

from blindsr.degradations import DegradationParams, EvalSetting, Pipeline, degrade, get_eval_preset
from blindsr.degradations.noise import derive_seed, standard_normal

__all__ = [
    "DEFAULT_NOISE_LEVELS",
    "KERNEL_SIZE",
    "MIN_LR_SIDE",
    "DegradationKind",
    "degradation_set",
    "parse_degradation",
    "set_labels",
    "setting_label",
    "synthesize_lr",
]

DegradationKind = Literal["iso", "aniso", "noise"]

KERNEL_SIZE: Final = 21
"""MRDA's kernel size (all its evaluation presets)."""

DEFAULT_NOISE_LEVELS: Final = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
"""Noise levels of the ``noise`` set: the range of MRDA's aniso + noise training (U[0, 25])."""

MIN_LR_SIDE: Final = 8
"""Smallest LR side the analysis accepts (as ``blindsr upscale``)."""


def _pipeline() -> Pipeline:
    return get_eval_preset("gaussian8").pipeline


def degradation_set(
    *,
    kind: DegradationKind,
    scale: int,
    widths: Sequence[float] | None = None,
    noise_levels: Sequence[float] | None = None,
    kernel_sigma: float = 0.0,
) -> list[EvalSetting]:
    """The degradations of one analysis set, in plotting order.

    Args:
        kind: ``"iso"``, ``"aniso"`` or ``"noise"`` (see the module text).
        scale: the model's scale (picks the Gaussian8 widths).
        widths: iso widths instead of Gaussian8's (``iso`` only).
        noise_levels: noise levels on the 0-255 scale (``noise`` only; default :data:`DEFAULT_NOISE_LEVELS`).
        kernel_sigma: the isotropic kernel width of the ``noise`` set (0 = no blur).

    Returns:
        At least two distinct settings.

    Raises:
        ValueError: an unknown kind, negative or duplicate values, fewer than two degradations.
    """
    if kind == "iso":
        if widths is None:
            widths = [s.sigma for s in get_eval_preset("gaussian8").settings_for(scale)]
        settings = [EvalSetting(kernel="iso", sigma=float(w)) for w in widths]
    elif kind == "aniso":
        settings = []
        for s in get_eval_preset("mrda-aniso").settings_for(4):
            if s.noise == 0.0:
                plain = EvalSetting(
                    kernel="aniso",
                    lambda1=s.lambda1,
                    lambda2=s.lambda2,
                    theta_deg=s.theta_deg,
                    kernel_index=s.kernel_index,
                )
                if all((o.lambda1, o.lambda2, o.theta_deg) != (s.lambda1, s.lambda2, s.theta_deg) for o in settings):
                    settings.append(plain)
    elif kind == "noise":
        levels = DEFAULT_NOISE_LEVELS if noise_levels is None else noise_levels
        settings = [EvalSetting(kernel="iso", sigma=float(kernel_sigma), noise=float(n)) for n in levels]
    else:
        raise ValueError(f"kind must be 'iso', 'aniso' or 'noise', got {kind!r}")
    for s in settings:
        if min(s.sigma, s.noise, s.lambda1, s.lambda2) < 0:
            raise ValueError(f"kernel widths and noise levels must be >= 0, got {s.as_dict()}")
    keys = [(s.kernel, s.sigma, s.lambda1, s.lambda2, s.theta_deg, s.noise) for s in settings]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate degradations: {', '.join(setting_label(s) for s in settings)}")
    if len(settings) < 2:
        raise ValueError(f"give at least two degradations to compare, got {len(settings)}")
    return settings


def parse_degradation(text: str, *, noise: float = 0.0) -> EvalSetting:
    """One degradation from its text form (module text), with a noise level on the 0-255 scale.

    Raises:
        ValueError: text that is not one of the forms, or negative values.
    """
    t = text.strip().lower()
    try:
        if t in ("bicubic", "none"):
            setting = EvalSetting(kernel="iso", sigma=0.0, noise=float(noise))
        elif t.startswith("iso:"):
            setting = EvalSetting(kernel="iso", sigma=float(t[4:]), noise=float(noise))
        elif t.startswith("aniso:"):
            l1, l2, theta = (float(v) for v in t[6:].split(","))
            setting = EvalSetting(kernel="aniso", lambda1=l1, lambda2=l2, theta_deg=theta, noise=float(noise))
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"bad degradation {text!r}: use bicubic, iso:SIGMA (e.g. iso:2.6) or aniso:L1,L2,THETA "
            "(e.g. aniso:3.5,1.5,20)"
        ) from None
    if min(setting.sigma, setting.lambda1, setting.lambda2, setting.noise) < 0:
        raise ValueError(f"bad degradation {text!r} (noise {noise}): widths and noise must be >= 0")
    if setting.kernel == "aniso" and min(setting.lambda1, setting.lambda2) <= 0:
        raise ValueError(f"bad degradation {text!r}: anisotropic widths must be > 0")
    return setting


def _kernel_text(setting: EvalSetting) -> str:
    if setting.kernel == "aniso":
        return f"λ {setting.lambda1:.3g}/{setting.lambda2:.3g} θ {setting.theta_deg:.3g}°"
    return f"σ {setting.sigma:.3g}"


def setting_label(setting: EvalSetting) -> str:
    """A short label of one degradation: ``σ 2.6`` (iso), ``λ 3.5/1.5 θ 20°`` (aniso), plus ``, σn 15`` if noisy."""
    kernel = _kernel_text(setting)
    return f"{kernel}, σn {setting.noise:.3g}" if setting.noise > 0 else kernel


def set_labels(settings: Sequence[EvalSetting]) -> list[str]:
    """Legend labels of a set of degradations: only what varies across the set (``σn 5`` for a noise set).

    >>> set_labels([EvalSetting(kernel="iso", sigma=1.2, noise=n) for n in (0.0, 5.0)])
    ['σn 0', 'σn 5']
    """
    kernels = [_kernel_text(s) for s in settings]
    noises = [f"σn {s.noise:.3g}" for s in settings]
    kernel_varies = len(set(kernels)) > 1
    noise_varies = len(set(noises)) > 1
    out = []
    for k, n, s in zip(kernels, noises, settings, strict=True):
        parts = []
        if kernel_varies or not noise_varies:
            parts.append(k)
        if noise_varies or (s.noise > 0 and not kernel_varies):
            parts.append(n)
        out.append(", ".join(parts))
    return out


def synthesize_lr(
    hr: Tensor, settings: Sequence[EvalSetting], *, scale: int, seed: int, key: Sequence[object] = ()
) -> Tensor:
    """LR images of one HR image under several degradations, in one batch.

    Args:
        hr: (3, H, W) or (1, 3, H, W) float RGB in [0, 1], H and W multiples of `scale` (modcropped).
        settings: the degradations, one LR each.
        scale: the downscaling factor.
        seed: the analysis seed; the noise of setting i is drawn from ``derive_seed("blindsr-analyze", seed, *key, i)``.
        key: what identifies the image in the seed (e.g. dataset and file stem).

    Returns:
        (len(settings), 3, H / s, W / s) 8-bit-valued float32 LR on `hr`'s device.

    Raises:
        ValueError: an LR side below :data:`MIN_LR_SIDE` pixels, or an HR size not divisible by `scale`.
    """
    x = hr.unsqueeze(0) if hr.ndim == 3 else hr
    _, c, h, w = x.shape
    if h % scale or w % scale:
        raise ValueError(f"hr size {h}x{w} is not divisible by scale {scale}; modcrop it first")
    if min(h, w) // scale < MIN_LR_SIDE:
        raise ValueError(
            f"image too small: {w}x{h} gives a {w // scale}x{h // scale} LR at x{scale} "
            f"(at least {MIN_LR_SIDE} px per side needed)"
        )
    n = len(settings)
    kernels = torch.stack([s.kernel_tensor(KERNEL_SIZE) for s in settings])
    sigma = torch.tensor([s.noise for s in settings], dtype=torch.float64)
    deg = DegradationParams(kernels=kernels, noise_sigma=sigma, pipeline=_pipeline()).to(x.device, dtype=x.dtype)
    noise = None
    if bool((sigma > 0).any()):
        draws = []
        for i in range(n):
            g = torch.Generator().manual_seed(derive_seed("blindsr-analyze", seed, *key, f"x{scale}", i))
            draws.append(standard_normal((c, h // scale, w // scale), generator=g))
        noise = torch.stack(draws).to(x.device)
    lr: Tensor = degrade(x.expand(n, -1, -1, -1).contiguous(), deg, scale=scale, noise=noise).lr
    return lr
