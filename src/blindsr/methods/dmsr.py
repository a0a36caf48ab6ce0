"""DMSR training: on-the-fly classic degradations, L = L_RE + 10 L_DR + 1 L_DC (paper Eq. 5-8), ablation switches.

DMSR: "Degradation-guided Meta-restoration Network for Blind Super-Resolution", arXiv 2207.00943.
Spec: ``docs/specs/dmsr.md`` sections 2, 4, 5, 8 (A3, A6-A8, A13, A14, A20), 9.

Paper -> code (the network, including the MBM and its PCA-initialised FC, is mapped in ``nets/dmsr.py``):
    Eq. 1, Sec. 4.1 degradation (15x15 iso, sigma_k U[0.2, 3], sigma_n U[0, 75]) ... degradation preset ``dmsr``
    Eq. 5  L = 1 L_RE + 10 L_DR + 1 L_DC (Sec. 4.1) .... ``DMSRMethod.training_step``, ``DMSROptions.lambda_*``
    Eq. 6  L_RE = mean |I_HR - I_SR| ............ :func:`blindsr.losses.dmsr.reconstruction_loss`
    Eq. 7  L_DR = ||N_GT - N_est||^2 + ||K_GT - K_est||^2 (MSE per term by default)
           ..................................... :func:`blindsr.losses.dmsr.degradation_reconstruction_loss`
    Eq. 8  L_DC = ||I_sim - I_LR||^2 + ||N_sim - N_est||^2 + ||K_sim - K_est||^2
           ..................................... :func:`blindsr.losses.dmsr.degradation_consistency_loss`
           I_sim = (I_HR * K_est) downarrow_s + N_est ... ``resimulate`` in ``DMSRMethod._degrade``;
           (K_sim, N_sim) = DE(I_sim) ................ ``DMSRNet.forward(lr, resimulate=...)``
    Tables 2-4 ablations ....................... ``dc_terms``, ``lambda_dr``, ``noise_input``, ``n_mbm``
    DMSR-nf (Sec. 4.2): fine-tuning with the noise fixed at 0 ............. ``noise_free``
    FC(225 -> 15) "initialized by the PCA matrix" (SRMD convention): the matrix :func:`kernel_pca_matrix`, set
           by ``DMSRNet.init_code_from_pca``

Gradient flow (docs/specs/dmsr.md items A7, A8): L_RE reaches the extractor through the estimated (not detached)
degradations; L_DC re-degrades the *ground-truth* HR with the estimates, so it reaches only the extractor; the
re-estimation targets ``K_est``, ``N_est`` are detached (pseudo-labels) unless ``detach_dc_targets`` is off.

Patch borders (docs/specs/dmsr.md A20): the HR patch handed to the method carries a margin of ``margin`` HR pixels on
every side. The whole patch is degraded, then LR and HR are centre-cropped, so L_RE, L_DR and L_DC never see
blur-padding artefacts. With ``margin = 0`` the simple route (degrade the patch with padding, as IKC/DAN) is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from blindsr.degradations import (
    DegradationSpec,
    blur_downscale,
    degrade,
    isotropic_gaussian_kernels,
    sample_degradation,
)
from blindsr.losses.dmsr import (
    ConsistencyLoss,
    DegradationLoss,
    degradation_consistency_loss,
    degradation_reconstruction_loss,
    reconstruction_loss,
)
from blindsr.nets.dmsr import DMSRNet, DMSROutput
from blindsr.types import StepOutput, UpscaleFn

__all__ = ["DMSRMethod", "DMSROptions", "default_margin", "kernel_pca_matrix"]


@dataclass(frozen=True, slots=True)
class DMSROptions:
    """``method.options`` of DMSR (paper values are the defaults).

    Architecture: ``n_feats``, ``n_groups``, ``n_blocks``, ``extractor_channels``, ``mnm_kernel_size``
    (1, docs/specs/dmsr.md A1), ``n_mbm`` (0-3, Table 4), ``noise_input`` (``map`` or ``sigma``: MNM with a scalar
    sigma map, Table 3).

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
    """HR margin for the border-free route: ``r + 2s`` rounded up to a multiple of s (12, 15, 16 for x2-x4).

    Why a margin: docs/specs/dmsr.md A20.

    >>> [default_margin(s) for s in (2, 3, 4)]
    [12, 15, 16]
    """
    r = kernel_size // 2
    return math.ceil((r + 2 * scale) / scale) * scale


def kernel_pca_matrix(
    *, n_samples: int = 30000, sigma: tuple[float, float] = (0.2, 3.0), size: int = 15, dims: int = 15, seed: int = 0
) -> torch.Tensor:
    """SRMD-style PCA of DMSR's kernel family: top eigenvectors of the uncentred second moment (docs/specs/dmsr.md §9).

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


class _Batch(NamedTuple):
    """One step's data: the centre crops (margin removed) and Eq. 8's re-simulation of the whole HR patch."""

    hr: torch.Tensor  # (B, 3, H, W) ground-truth HR, margin cropped
    lr: torch.Tensor  # (B, 3, h, w) I_LR, margin cropped
    kernel: torch.Tensor  # (B, 15, 15) K_GT
    noise: torch.Tensor  # (B, 3, h, w) N_GT, margin cropped
    resimulate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (K_est, N_est) -> I_sim


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
        net.init_code_from_pca(kernel_pca_matrix(n_samples=options.pca_samples, seed=options.pca_seed))
        self.networks = nn.ModuleDict({"dmsr": net})

    def release(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Architecture id and constructor kwargs of each network, for ``blindsr export``."""
        return {"dmsr": ("dmsr", self.options.arch_kwargs(self.scale))}

    def training_step(
        self, hr: torch.Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """``L = lambda_re L_RE + lambda_dr L_DR + lambda_dc L_DC`` (Eq. 5) on one batch of HR patches (with margin).

        Logs ``re``, ``dr_noise``, ``dr_kernel`` and, when used, ``dc_image`` and ``dc_kn`` (the terms, unweighted).
        """
        o = self.options
        batch = self._degrade(hr, generator)
        if o.extractor_only:
            kernel_est, noise_est = nets["dmsr"].get_submodule("extractor")(batch.lr)
            dr = self._l_dr(kernel_est, noise_est, batch)
            return StepOutput(
                loss=o.lambda_dr * dr.total, logs={"dr_noise": dr.noise.detach(), "dr_kernel": dr.kernel.detach()}
            )
        need_dc = o.lambda_dc > 0 and o.dc_terms != "none"
        res = nets["dmsr"](batch.lr, resimulate=batch.resimulate if need_dc else None)
        l_re = reconstruction_loss(res.sr, batch.hr)
        dr = self._l_dr(res.kernel, res.noise, batch)
        dc = self._l_dc(res, batch) if need_dc else ConsistencyLoss(total=torch.zeros((), device=hr.device))
        logs: dict[str, float | torch.Tensor] = {
            "re": l_re.detach(),
            "dr_noise": dr.noise.detach(),
            "dr_kernel": dr.kernel.detach(),
        }
        if dc.image is not None:
            logs["dc_image"] = dc.image.detach()
        if dc.kn is not None:
            logs["dc_kn"] = dc.kn.detach()
        return StepOutput(loss=o.lambda_re * l_re + o.lambda_dr * dr.total + o.lambda_dc * dc.total, logs=logs)

    def _l_dr(self, kernel_est: torch.Tensor, noise_est: torch.Tensor, batch: _Batch) -> DegradationLoss:
        o = self.options
        return degradation_reconstruction_loss(
            kernel_est=kernel_est,
            noise_est=noise_est,
            kernel_gt=batch.kernel,
            noise_gt=batch.noise,
            reduction=o.reduction,
            kernel_reduction=o.kernel_reduction or None,
        )

    def _l_dc(self, res: DMSROutput, batch: _Batch) -> ConsistencyLoss:
        o = self.options
        assert res.lr_sim is not None and res.kernel_sim is not None and res.noise_sim is not None
        assert o.dc_terms != "none"
        return degradation_consistency_loss(
            lr_sim=res.lr_sim,
            lr=batch.lr,
            kernel_sim=res.kernel_sim,
            kernel_est=res.kernel,
            noise_sim=res.noise_sim,
            noise_est=res.noise,
            terms=o.dc_terms,
            reduction=o.reduction,
            kernel_reduction=o.kernel_reduction or None,
            image_norm=o.dc_image_norm,
            detach_targets=o.detach_dc_targets,
        )

    def _degrade(self, hr: torch.Tensor, generator: torch.Generator) -> _Batch:
        """Degrade the patch (Eq. 1), crop the margin (docs/specs/dmsr.md A20), bind Eq. 8's re-simulation to the HR."""
        s, m = self.scale, self.margin
        if hr.shape[-1] <= 2 * m or hr.shape[-2] <= 2 * m:
            raise ValueError(f"HR patches of {hr.shape[-1]} px leave nothing inside a {m}-px margin")
        deg = sample_degradation(self.degradation, hr.shape[0], generator).to(hr.device)
        out = degrade(hr, deg, scale=s, generator=generator)
        lr_m = m // s

        def crop_lr(t: torch.Tensor) -> torch.Tensor:
            return t[..., lr_m : t.shape[-2] - lr_m, lr_m : t.shape[-1] - lr_m] if lr_m else t

        pipeline = deg.pipeline

        def resimulate(kernel_est: torch.Tensor, noise_est: torch.Tensor) -> torch.Tensor:
            # Eq. 8: I_sim = (I_HR * K_est) downarrow_s + N_est, from the ground-truth HR with its margin
            clean = blur_downscale(
                hr,
                kernel_est.to(hr.dtype),
                scale=s,
                padding=pipeline.blur_padding,
                bicubic_border=pipeline.bicubic_border,
            )
            return crop_lr(clean) + noise_est

        hr_c = hr[..., m : hr.shape[-2] - m, m : hr.shape[-1] - m] if m else hr
        return _Batch(
            hr=hr_c, lr=crop_lr(out.lr), kernel=deg.kernels, noise=crop_lr(out.noise_map), resimulate=resimulate
        )

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        net = nets["dmsr"]

        def upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
            if scale != self.scale:
                raise ValueError(f"this DMSR model upscales x{self.scale}, asked for x{scale}")
            return net(lr).sr

        return upscale
