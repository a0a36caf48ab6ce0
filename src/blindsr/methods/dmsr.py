"""DMSR training: on-the-fly classic degradations, L = L_RE + 10 L_DR + 1 L_DC (paper Eq. 5-8), ablation switches.

DMSR: "Degradation-guided Meta-restoration Network for Blind Super-Resolution", arXiv 2207.00943.
Spec: ``docs/specs/dmsr.md`` sections 2, 4, 5, 8 (A3, A6-A8, A13, A14, A20), 9.

Paper -> code:
    Eq. 1, Sec. 4.1 degradation (15x15 iso, sigma_k U[0.2, 3], sigma_n U[0, 75]) ... degradation preset ``dmsr``
    Eq. 6  L_RE = mean |I_HR - I_SR| ...................................... ``loss_re``
    Eq. 7  L_DR = ||N_GT - N_est||^2 + ||K_GT - K_est||^2 ................. ``loss_dr`` (MSE per term by default)
    Eq. 8  L_DC = ||I_sim - I_LR||^2 + ||N_sim - N_est||^2 + ||K_sim - K_est||^2, with
           I_sim = (I_HR * K_est) downarrow_s + N_est, (K_sim, N_sim) = DE(I_sim) ... ``loss_dc``
    Eq. 5  L = 1 L_RE + 10 L_DR + 1 L_DC (Sec. 4.1) ........................ ``DMSROptions.lambda_*``
    Tables 2-4 ablations ....................... ``dc_terms``, ``lambda_dr``, ``noise_input``, ``n_mbm``
    DMSR-nf (Sec. 4.2): fine-tuning with the noise fixed at 0 ............. ``noise_free``
    FC(225 -> 15) "initialized by the PCA matrix" (SRMD convention) ........ :func:`kernel_pca_matrix`

Gradient flow (spec A7, A8): L_RE reaches the extractor through the estimated (not detached) degradations; L_DC
re-degrades the *ground-truth* HR with the estimates, so it reaches only the extractor; the re-estimation targets
``K_est``, ``N_est`` are detached (pseudo-labels) unless ``detach_dc_targets`` is off.

Patch borders (A20): the HR patch handed to the method carries a margin of ``margin`` HR pixels on every side.
The whole patch is degraded, then LR and HR are centre-cropped, so L_RE, L_DR and L_DC never see blur-padding
artefacts. With ``margin = 0`` the simple route (degrade the patch with padding, as IKC/DAN) is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn

from blindsr.degradations import (
    DegradationSpec,
    blur_downscale,
    degrade,
    isotropic_gaussian_kernels,
    sample_degradation,
)
from blindsr.nets.dmsr import DMSRNet, MetaDeblur
from blindsr.types import StepOutput, UpscaleFn

__all__ = ["DMSRMethod", "DMSROptions", "default_margin", "kernel_pca_matrix"]


@dataclass(frozen=True, slots=True)
class DMSROptions:
    """``method.options`` of DMSR (paper values are the defaults).

    Architecture: ``n_feats``, ``n_groups``, ``n_blocks``, ``extractor_channels``, ``mnm_kernel_size`` (1, A1),
    ``n_mbm`` (0-3, Table 4), ``noise_input`` (``map`` or ``sigma``: MNM with a scalar sigma map, Table 3).

    Losses: ``lambda_re/dr/dc`` (1, 10, 1), ``reduction`` (``mean`` per term, or ``sum`` as Eq. 7-8 literally
    write), ``kernel_reduction`` (the reduction of the kernel terms of L_DR and L_DC; empty = ``reduction``;
    ``sum`` = the squared L2 norm of the 15x15 difference per image, Eq. 7 literally), ``dc_image_norm`` (``l2`` or
    ``l1``), ``dc_terms`` (``all``; ``lr`` = DC on the LR image only; ``kn`` = DC on kernel + noise only; ``none``;
    Table 2), ``detach_dc_targets``.

    Data: ``margin`` HR pixels cropped after degrading (-1 = automatic: 7 + 2s rounded up to a multiple of s),
    ``noise_free`` (DMSR-nf fine-tuning: sigma_n = 0), ``pca_samples``/``pca_seed`` for the FC initialisation.

    Stage: ``extractor_only`` (our addition, not in the paper) trains the degradation extractor alone on
    ``lambda_dr * L_DR``; the SR network is not run and gets no gradient. A pre-training stage for the extractor,
    which the joint loss lets collapse to one average kernel on short (CPU) budgets; see ``docs/results.md``.
    """

    n_feats: int = 64
    n_groups: int = 5
    n_blocks: int = 20
    extractor_channels: int = 64
    mnm_kernel_size: int = 1
    n_mbm: int = 1
    noise_input: Literal["map", "sigma"] = "map"
    lambda_re: float = 1.0
    lambda_dr: float = 10.0
    lambda_dc: float = 1.0
    reduction: Literal["mean", "sum"] = "mean"
    kernel_reduction: Literal["", "mean", "sum"] = ""
    dc_image_norm: Literal["l2", "l1"] = "l2"
    dc_terms: Literal["all", "lr", "kn", "none"] = "all"
    detach_dc_targets: bool = True
    margin: int = -1
    noise_free: bool = False
    extractor_only: bool = False
    pca_samples: int = 30000
    pca_seed: int = 0

    def arch_kwargs(self, scale: int) -> dict[str, Any]:
        """The :class:`~blindsr.nets.dmsr.DMSRNet` constructor arguments."""
        return {
            "scale": scale,
            "n_feats": self.n_feats,
            "n_groups": self.n_groups,
            "n_blocks": self.n_blocks,
            "extractor_channels": self.extractor_channels,
            "mnm_kernel_size": self.mnm_kernel_size,
            "n_mbm": self.n_mbm,
            "noise_input": self.noise_input,
        }


def default_margin(scale: int, kernel_size: int = 15) -> int:
    """HR margin for the border-free route (A20): ``r + 2s`` rounded up to a multiple of s (12, 15, 16 for x2-x4).

    >>> [default_margin(s) for s in (2, 3, 4)]
    [12, 15, 16]
    """
    r = kernel_size // 2
    return math.ceil((r + 2 * scale) / scale) * scale


def kernel_pca_matrix(
    *, n_samples: int = 30000, sigma: tuple[float, float] = (0.2, 3.0), size: int = 15, dims: int = 15, seed: int = 0
) -> torch.Tensor:
    """SRMD-style PCA of DMSR's kernel family: top eigenvectors of the uncentred second moment (spec section 9).

    Returns:
        (dims, size * size) float32 matrix with orthonormal rows (row-major kernel flattening).
    """
    g = torch.Generator().manual_seed(seed)
    sig = sigma[0] + (sigma[1] - sigma[0]) * torch.rand(n_samples, generator=g, dtype=torch.float64)
    x = isotropic_gaussian_kernels(sig, size).reshape(n_samples, -1)  # (N, 225)
    second_moment = x.T @ x
    _, vectors = torch.linalg.eigh(second_moment)  # ascending eigenvalues
    top = vectors[:, -dims:].flip(1).T.contiguous()
    # a deterministic sign: the largest-magnitude entry of each row positive
    signs = torch.sign(top.gather(1, top.abs().argmax(dim=1, keepdim=True)))
    return (top * signs).float()


def _reduce(diff: torch.Tensor, reduction: str, *, squared: bool = True) -> torch.Tensor:
    values = diff.pow(2) if squared else diff.abs()
    if reduction == "mean":
        return values.mean()
    return values.flatten(1).sum(dim=1).mean()  # literal ||.||^2 per image, averaged over the batch


class DMSRMethod:
    """Joint training of DMSR's degradation extractor and SR network (one network: ``networks["dmsr"]``)."""

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: DMSROptions) -> None:
        if degradation.kernel_size != 15:
            raise ValueError(f"DMSR estimates 15x15 kernels; the degradation preset uses {degradation.kernel_size}")
        self.scale = scale
        self.options = options
        self.degradation = degradation.with_(noise=(0.0, 0.0)) if options.noise_free else degradation
        self.margin = default_margin(scale) if options.margin < 0 else options.margin
        if self.margin % scale:
            raise ValueError(f"method.options.margin ({self.margin}) must be a multiple of the scale ({scale})")
        net = DMSRNet(**options.arch_kwargs(scale))
        pca = kernel_pca_matrix(n_samples=options.pca_samples, seed=options.pca_seed)
        for module in net.modules():
            if isinstance(module, MetaDeblur):
                module.init_code_from_pca(pca)
        self.networks = nn.ModuleDict({"dmsr": net})

    def release(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Architecture id and constructor kwargs of each network, for ``blindsr export``."""
        return {"dmsr": ("dmsr", self.options.arch_kwargs(self.scale))}

    def describe(self) -> dict[str, Any]:
        return {"options": asdict(self.options), "margin": self.margin}

    def training_step(
        self, hr: torch.Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        o = self.options
        s, m = self.scale, self.margin
        if hr.shape[-1] <= 2 * m or hr.shape[-2] <= 2 * m:
            raise ValueError(f"HR patches of {hr.shape[-1]} px leave nothing inside a {m}-px margin")
        deg = sample_degradation(self.degradation, hr.shape[0], generator).to(hr.device)
        out = degrade(hr, deg, scale=s, generator=generator)
        lr_m = m // s

        def crop_lr(t: torch.Tensor) -> torch.Tensor:
            return t[..., lr_m : t.shape[-2] - lr_m, lr_m : t.shape[-1] - lr_m] if lr_m else t

        lr, noise_gt = crop_lr(out.lr), crop_lr(out.noise_map)
        hr_c = hr[..., m : hr.shape[-2] - m, m : hr.shape[-1] - m] if m else hr
        kernel_gt = deg.kernels

        if o.extractor_only:
            extractor = nets["dmsr"].get_submodule("extractor")
            kernel_only, noise_only = extractor(lr)
            k_red = o.kernel_reduction or o.reduction
            dr_noise = _reduce(noise_only.float() - noise_gt, o.reduction)
            dr_kernel = _reduce(kernel_only.float() - kernel_gt, k_red)
            return StepOutput(
                loss=o.lambda_dr * (dr_noise + dr_kernel),
                logs={"dr_noise": dr_noise.detach(), "dr_kernel": dr_kernel.detach()},
            )

        pipeline = deg.pipeline

        def resimulate(kernel_est: torch.Tensor, noise_est: torch.Tensor) -> torch.Tensor:
            # Eq. 8: re-degrade the ground-truth HR (with its margin) with the estimates
            clean = blur_downscale(
                hr,
                kernel_est.to(hr.dtype),
                scale=s,
                padding=pipeline.blur_padding,
                bicubic_border=pipeline.bicubic_border,
            )
            return crop_lr(clean) + noise_est

        need_dc = o.lambda_dc > 0 and o.dc_terms != "none"
        res = nets["dmsr"](lr, resimulate=resimulate if need_dc else None)
        loss_re = (res.sr.float() - hr_c).abs().mean()
        kernel_est, noise_est = res.kernel.float(), res.noise.float()
        loss_dr_noise = _reduce(noise_est - noise_gt, o.reduction)
        k_reduction = o.kernel_reduction or o.reduction
        loss_dr_kernel = _reduce(kernel_est - kernel_gt, k_reduction)
        loss_dr = loss_dr_noise + loss_dr_kernel
        logs: dict[str, float | torch.Tensor] = {
            "re": loss_re.detach(),
            "dr_noise": loss_dr_noise.detach(),
            "dr_kernel": loss_dr_kernel.detach(),
        }
        loss_dc = torch.zeros((), device=hr.device)
        if need_dc:
            assert res.lr_sim is not None and res.kernel_sim is not None and res.noise_sim is not None
            k_target = kernel_est.detach() if o.detach_dc_targets else kernel_est
            n_target = noise_est.detach() if o.detach_dc_targets else noise_est
            if o.dc_terms in ("all", "lr"):
                image = _reduce(res.lr_sim.float() - lr, o.reduction, squared=o.dc_image_norm == "l2")
                loss_dc = loss_dc + image
                logs["dc_image"] = image.detach()
            if o.dc_terms in ("all", "kn"):
                kn = _reduce(res.kernel_sim.float() - k_target, k_reduction) + _reduce(
                    res.noise_sim.float() - n_target, o.reduction
                )
                loss_dc = loss_dc + kn
                logs["dc_kn"] = kn.detach()
        loss = o.lambda_re * loss_re + o.lambda_dr * loss_dr + o.lambda_dc * loss_dc
        return StepOutput(loss=loss, logs=logs)

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        net = nets["dmsr"]

        def upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
            if scale != self.scale:
                raise ValueError(f"this DMSR model upscales x{self.scale}, asked for x{scale}")
            return net(lr).sr

        return upscale
