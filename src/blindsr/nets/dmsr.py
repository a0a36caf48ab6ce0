"""DMSR: Degradation-guided Meta-restoration Network for Blind Super-Resolution.

arXiv:2207.00943 (with its supplementary Tables B.5–B.7). No public implementation exists; built from the paper
and ``docs/specs/dmsr.md`` (sections 1, 3, 8, 10). RCAN blocks in ``nets/layers/rcan.py``.

Paper → code (the losses, Eq. 5-8, are mapped in ``methods/dmsr.py``):
    Degradation extractor, DE (Sec. 3.2, Table B.6) ......... DegradationExtractor
    ResBlock(64) in the DE (Table B.6 rows 1-2) .............. ResBlock
    Meta-deNoise Module, MNM (Sec. 3.1, Eq. 3; B.7 1-0..1-1)  MetaDenoise
    Meta-deBlur Module, MBM (Sec. 3.1, Eq. 4; B.7 2-0..2-3,
        Conv(3, 3) 0-5) ...................................... MetaDeblur
    its DynamicConv, the per-pixel filter (B.7 0-4) .......... dynamic_filter (layers.dynamic_conv; the only
        implementation, with a "traceable" variant that the ONNX export selects: MetaDeblur.filter_impl)
    its FC "initialized by the PCA matrix" (Sec. 3.1) ........ DMSRNet.init_code_from_pca (each
        MetaDeblur.init_code_from_pca); the matrix: blindsr.methods.dmsr.kernel_pca_matrix
    Residual groups, upsampler (B.7 0-0..0-3; RCAN) .......... ResidualGroup, Upsampler (layers.rcan)
    Full model: DE + SR network (Fig. 2, Table B.5) .......... DMSRNet
    Second DE pass on I_sim for L_DC (Eq. 8) ................. DMSRNet.forward(lr, resimulate=...)
    MNM-σ ablation (Table 3) ................................. DMSRNet(noise_input="sigma"), noise_level_map
    Several MBMs in a row (Table 4) .......................... DMSRNet(n_mbm=2 | 3)

Conventions: images at the public boundary are (B, 3, H, W) RGB in [0, 1]. ``K_est`` is (B, k, k), row-major,
non-negative, summing to 1. ``N_est`` is a signed noise realisation (B, 3, h, w) in [0, 1] image units, the same
units as ``N_GT = LR − LR_clean``.

Input scalings (docs/specs/dmsr.md A18):
    DE:  sees ``lr − mean`` (unit range, centred) and outputs ``N_est`` directly in [0, 1] units. Unit range keeps the
         225 blur logits of order 1 at initialisation, so the first ``K_est`` is a smooth kernel rather than a
         saturated softmax.
    SR:  RCAN style: ``a(x) = (x − mean)·img_range``, ``b(N) = N·img_range`` (the image's scale, so a 1×1 MNM can form
         ``x − N``), and ``y0 = out(t) = t / img_range + mean``; the MBM filters y0 in [0, 1].
    mean = DIV2K RGB mean (0.4488, 0.4371, 0.4040), a constant non-persistent buffer.

Parameter counts with the defaults: DE 484,516; SR network 7,892,136 (×2), 8,076,776 (×3), 8,039,848 (×4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from blindsr.nets.layers.dynamic_conv import FilterImpl, Padding, dynamic_filter
from blindsr.nets.layers.rcan import ResidualGroup, Upsampler
from blindsr.ops.checks import MAX_DEPTH, MAX_KERNEL, MAX_WIDTH, check_counts, check_image_batch, check_odd_kernel_size
from blindsr.types import Scale

__all__ = [
    "DMSRNet",
    "DMSROutput",
    "DegradationExtractor",
    "MetaDeblur",
    "MetaDenoise",
    "ResBlock",
    "noise_level_map",
]

NoiseInput = Literal["map", "sigma"]

_RGB_MEAN = (0.4488, 0.4371, 0.4040)
# A softmax can only approach a one-hot filter: this centre logit leaves 1e-5 of the mass off-centre.
_SOFTMAX_IDENTITY_LOGIT = math.log(224 * 1e5)


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def _mean_buffer() -> Tensor:
    return torch.tensor(_RGB_MEAN).view(1, 3, 1, 1)


class DMSROutput(NamedTuple):
    """What ``DMSRNet`` returns.

    Attributes:
        sr: (B, 3, s·h, s·w) the final output (after the last MBM; equal to `y0` when there is no MBM).
        kernel: (B, k, k) the blur kernel the SR branch used (``K_est`` from ``forward``).
        noise: (B, 3, h, w) the noise map the SR branch was given (``N_est`` from ``forward``), in [0, 1] units;
            with ``noise_input="sigma"`` this is still the map, before its reduction to σ.
        y0: (B, 3, s·h, s·w) the image before the MBMs (Table B.7 row 0-3), in [0, 1] units.
        lr_sim, kernel_sim, noise_sim: with ``forward(lr, resimulate=fn)`` (training, the DC loss of Eq. 8): the
            re-degraded image ``I_sim = fn(K_est, N_est)`` and the extractor's estimates on it; else None.
    """

    sr: Tensor
    kernel: Tensor
    noise: Tensor
    y0: Tensor
    lr_sim: Tensor | None = None
    kernel_sim: Tensor | None = None
    noise_sim: Tensor | None = None


def noise_level_map(noise: Tensor) -> Tensor:
    """Reduce a noise realisation to a constant per-image σ map (the MNM-σ ablation's input).

    σ is the population standard deviation (divisor 3·h·w) over all channels and pixels of each image, floored at
    1e-6 so its gradient stays finite on a constant map.

    Args:
        noise: (B, C, h, w) signed noise in [0, 1] units.

    Returns:
        (B, C, h, w), every entry of image b equal to σ_b.
    """
    check_image_batch(noise, name="noise")
    var = noise.flatten(1).var(dim=1, correction=0)
    sigma = var.clamp_min(1e-12).sqrt()
    return sigma.view(-1, 1, 1, 1).expand_as(noise)


class ResBlock(nn.Module):
    """Conv3×3 → ReLU → Conv3×3, plus the identity skip (docs/specs/dmsr.md A23: two convs match the 0.48 M)."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(channels, channels)
        self.conv2 = _conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x).relu())


class DegradationExtractor(nn.Module):
    """Estimates ``(K_est, N_est)`` from an LR image (Table B.6; docs/specs/dmsr.md §3.1).

    Trunk: Conv(3, C) + ReLU, two ResBlock(C). Noise branch: Conv(C, 3), no activation. Blur branch:
    Conv(C, 2C) + ReLU, Conv(2C, k²) + ReLU, global average pool, softmax over the k² values, row-major reshape.
    All convs 3×3. With C = 64 and k = 15 (Table B.6): 484,516 parameters.

    Args:
        channels: trunk width C (64 in the paper); the blur branch's hidden width is 2C (128 in the paper).
        kernel_size: k, the side of the estimated kernel (15 in the paper).
    """

    rgb_mean: Tensor

    def __init__(self, *, channels: int = 64, kernel_size: int = 15) -> None:
        super().__init__()
        check_odd_kernel_size(kernel_size)
        self.kernel_size = kernel_size
        self.register_buffer("rgb_mean", _mean_buffer(), persistent=False)
        self.head = _conv3x3(3, channels)
        self.trunk = nn.Sequential(ResBlock(channels=channels), ResBlock(channels=channels))
        self.noise_branch = _conv3x3(channels, 3)
        self.blur_branch = nn.Sequential(
            _conv3x3(channels, 2 * channels),
            nn.ReLU(),
            _conv3x3(2 * channels, kernel_size * kernel_size),
            nn.ReLU(),
        )

    def forward(self, lr: Tensor) -> tuple[Tensor, Tensor]:
        """Estimate the degradation of `lr`.

        Args:
            lr: (B, 3, h, w) RGB in [0, 1] (any size; not clipped).

        Returns:
            kernel: (B, k, k), non-negative, each summing to 1, row-major.
            noise: (B, 3, h, w) signed, in [0, 1] image units.
        """
        feats = self.features(lr)
        noise = self.noise(feats)
        kernel = self.kernel_from_logits(self.blur_map(feats).mean(dim=(2, 3)))
        return kernel, noise

    # The pieces of ``forward``, for tiled inference (``blindsr.inference``): the blur branch's pre-pool map can be
    # summed tile by tile and pooled once for the whole image, while the noise branch stays local.

    def features(self, lr: Tensor) -> Tensor:
        """The shared trunk: (B, 3, h, w) RGB in [0, 1] → (B, C, h, w). Receptive field 11×11 (5 convs)."""
        check_image_batch(lr, name="lr", channels=3)
        return self.trunk(self.head(lr - self.rgb_mean).relu())

    def noise(self, feats: Tensor) -> Tensor:
        """``N_est`` from trunk features: (B, C, h, w) → (B, 3, h, w), signed, [0, 1] units (13×13 from the LR)."""
        return self.noise_branch(feats)

    def blur_map(self, feats: Tensor) -> Tensor:
        """The blur branch before its global average pool: (B, C, h, w) → (B, k², h, w) (15×15 from the LR)."""
        return self.blur_branch(feats)

    def kernel_from_logits(self, logits: Tensor) -> Tensor:
        """Pooled blur logits (B, k²) → ``K_est`` (B, k, k): softmax, row-major reshape."""
        return logits.softmax(dim=1).view(-1, self.kernel_size, self.kernel_size)


class MetaDenoise(nn.Module):
    """MNM, the SR network's head: ``F = Conv(Concat(a(I_LR), b(N)))`` (Eq. 3; Table B.7 rows 1-0, 1-1).

    With ``kernel_size=1`` (docs/specs/dmsr.md A1, default) each noise value only shifts the bias at its own position
    (the paper's "meta-biases"); 3 is the option that follows Sec. 4.1's "all convolutions 3×3".

    Args:
        n_feats: output channels (64).
        kernel_size: 1 or another odd size.
    """

    def __init__(self, *, n_feats: int = 64, kernel_size: int = 1) -> None:
        super().__init__()
        check_odd_kernel_size(kernel_size)
        self.conv = nn.Conv2d(6, n_feats, kernel_size, padding=kernel_size // 2)

    def forward(self, image: Tensor, noise: Tensor) -> Tensor:
        """Map `image` and `noise` (B, 3, h, w), both in the network's internal scaling, to (B, n_feats, h, w)."""
        return self.conv(torch.cat([image, noise], dim=1))


class MetaDeblur(nn.Module):
    """MBM: per-pixel filters from ``K_est`` and the image, applied to the image (Table B.7, docs/specs/dmsr.md §3.5).

    ``c = FC(vec(K_est))`` (225 → 15, PCA-initialised by ``init_code_from_pca``), repeated to the HR grid,
    concatenated with the image y, ``Kp = Conv3×3(18 → f²)``, ``z = DynamicConv(y, Kp)`` with one f×f filter per
    pixel shared by R, G and B (reflect padding; :func:`~blindsr.nets.layers.dynamic_conv.dynamic_filter`), output
    ``Conv3×3(3 → 3)(z)``. 40,149 parameters with defaults.

    The attribute ``filter_impl`` selects how ``dynamic_filter`` runs: ``"autograd"`` (default) or
    ``"traceable"``, which the ONNX exporter sets on its copy of the network (:mod:`blindsr.zoo.onnx`). It is not
    part of the state dict.

    Args:
        kernel_size: k, the side of ``K_est`` (15); the FC takes k² inputs.
        code_dim: length of the kernel code (15).
        filter_size: f, the side of the per-pixel filters (15).
        normalize_kernels: softmax over each pixel's f² filter taps (docs/specs/dmsr.md A9 option); off by default.
        identity_init: start as the identity map (docs/specs/dmsr.md §3.5): the filter-predicting conv has zero weights
            and a bias that selects the centre tap, and the output conv is the identity. Then output == input exactly
            (with `normalize_kernels`, up to 1e-5 of the mass off-centre). False keeps PyTorch's default init.
        padding: how the image is extended beyond its border for the per-pixel filters.
    """

    def __init__(
        self,
        *,
        kernel_size: int = 15,
        code_dim: int = 15,
        filter_size: int = 15,
        normalize_kernels: bool = False,
        identity_init: bool = True,
        padding: Padding = "reflect",
    ) -> None:
        super().__init__()
        check_odd_kernel_size(kernel_size)
        check_odd_kernel_size(filter_size)
        self.normalize_kernels = normalize_kernels
        self.padding: Padding = padding
        self.filter_size = filter_size
        self.filter_impl: FilterImpl = "autograd"
        self.code = nn.Linear(kernel_size * kernel_size, code_dim)
        self.meta = _conv3x3(3 + code_dim, filter_size * filter_size)
        self.out = _conv3x3(3, 3)
        if identity_init:
            self._init_identity(filter_size)

    @torch.no_grad()
    def _init_identity(self, filter_size: int) -> None:
        centre = (filter_size * filter_size) // 2
        assert self.meta.bias is not None and self.out.bias is not None
        self.meta.weight.zero_()
        self.meta.bias.zero_()
        self.meta.bias[centre] = _SOFTMAX_IDENTITY_LOGIT if self.normalize_kernels else 1.0
        self.out.weight.zero_()
        self.out.bias.zero_()
        for c in range(3):
            self.out.weight[c, c, 1, 1] = 1.0

    @torch.no_grad()
    def init_code_from_pca(self, matrix: Tensor) -> None:
        """Set the FC weight to a PCA projection matrix (rows = principal directions) and its bias to 0.

        Args:
            matrix: (code_dim, k²), acting on row-major ``vec(K_est)``; copied to the layer's device and dtype.
        """
        if tuple(matrix.shape) != tuple(self.code.weight.shape):
            raise ValueError(f"PCA matrix must have shape {tuple(self.code.weight.shape)}, got {tuple(matrix.shape)}")
        self.code.weight.copy_(matrix)
        self.code.bias.zero_()

    def forward(self, image: Tensor, kernel: Tensor) -> Tensor:
        """Deblur `image` (B, 3, H, W) in [0, 1] units guided by `kernel` (B, k, k); returns (B, 3, H, W)."""
        code = self.code(kernel.flatten(1))
        spread = code[:, :, None, None].expand(-1, -1, *image.shape[2:])
        filters = self.meta(torch.cat([image, spread], dim=1))
        if self.normalize_kernels:
            filters = filters.softmax(dim=1)
        z = dynamic_filter(image, filters, padding=self.padding, impl=self.filter_impl, kernel_size=self.filter_size)
        return self.out(z)


class DMSRNet(nn.Module):
    """DMSR: degradation extractor + SR network (MNM → RCAN body → upsampler → MBMs).

    Args:
        scale: upscaling factor s.
        n_feats: SR network width (64).
        n_groups: residual groups (5).
        n_blocks: RCABs per group (20).
        reduction: channel-attention reduction (16).
        extractor_channels: DE trunk width (64).
        kernel_size: side of ``K_est`` and of the MBM's per-pixel filters (15).
        mnm_kernel_size: MNM conv size, 1 (docs/specs/dmsr.md A1) or 3.
        n_mbm: MBMs in a row, 0–3 (Table 4); 0 returns y0 as `sr`.
        noise_input: what MNM receives next to the image: "map" (the noise map, the paper's model) or "sigma"
            (Table 3's MNM-σ ablation: the map reduced by ``noise_level_map`` to a constant per-image σ map).
        mbm_normalize_kernels: softmax the MBM's per-pixel filters (docs/specs/dmsr.md A9 option).
        mbm_identity_init: identity-initialise every MBM (docs/specs/dmsr.md §3.5), so `sr` == `y0` at step 0.
        img_range: the SR branch's internal scale (docs/specs/dmsr.md A18): 255 (RCAN) or 1.
    """

    rgb_mean: Tensor

    def __init__(
        self,
        *,
        scale: Scale,
        n_feats: int = 64,
        n_groups: int = 5,
        n_blocks: int = 20,
        reduction: int = 16,
        extractor_channels: int = 64,
        kernel_size: int = 15,
        mnm_kernel_size: int = 1,
        n_mbm: int = 1,
        noise_input: NoiseInput = "map",
        mbm_normalize_kernels: bool = False,
        mbm_identity_init: bool = True,
        img_range: Literal[1, 255] = 255,
    ) -> None:
        super().__init__()
        check_counts("DMSRNet", maximum=MAX_WIDTH, n_feats=n_feats, extractor_channels=extractor_channels)
        check_counts("DMSRNet", maximum=MAX_WIDTH, reduction=reduction)
        check_counts("DMSRNet", maximum=MAX_DEPTH, n_groups=n_groups, n_blocks=n_blocks)
        check_counts("DMSRNet", maximum=MAX_KERNEL, kernel_size=kernel_size, mnm_kernel_size=mnm_kernel_size)
        check_counts("DMSRNet", minimum=2, maximum=8, scale=scale)
        if not 0 <= n_mbm <= 3:
            raise ValueError(f"n_mbm must be 0, 1, 2 or 3, got {n_mbm}")
        if noise_input not in ("map", "sigma"):
            raise ValueError(f"noise_input must be 'map' or 'sigma', got {noise_input!r}")
        if img_range not in (1, 255):
            raise ValueError(f"img_range must be 1 or 255, got {img_range}")
        self.scale = scale
        self.kernel_size = kernel_size
        self.noise_input: NoiseInput = noise_input
        self.img_range = float(img_range)
        self.register_buffer("rgb_mean", _mean_buffer(), persistent=False)
        self.extractor = DegradationExtractor(channels=extractor_channels, kernel_size=kernel_size)
        self.mnm = MetaDenoise(n_feats=n_feats, kernel_size=mnm_kernel_size)
        self.head = _conv3x3(n_feats, n_feats)
        self.body = nn.Sequential(
            *(ResidualGroup(channels=n_feats, n_blocks=n_blocks, reduction=reduction) for _ in range(n_groups))
        )
        # RCAN's body-closing conv: not in Table B.7, but part of RCAN and needed for 7.89 M (docs/specs/dmsr.md A22).
        self.body_conv = _conv3x3(n_feats, n_feats)
        self.upsampler = Upsampler(scale=scale, channels=n_feats, activation_after=True)
        self.tail = _conv3x3(n_feats, 3)
        self.mbms = nn.ModuleList(
            MetaDeblur(
                kernel_size=kernel_size,
                filter_size=kernel_size,
                normalize_kernels=mbm_normalize_kernels,
                identity_init=mbm_identity_init,
            )
            for _ in range(n_mbm)
        )

    def forward(self, lr: Tensor, *, resimulate: Callable[[Tensor, Tensor], Tensor] | None = None) -> DMSROutput:
        """Estimate the degradation of `lr` and super-resolve it (estimates not detached, docs/specs/dmsr.md A8).

        Args:
            lr: (B, 3, h, w) RGB in [0, 1]; any h, w.
            resimulate: training only (Eq. 8): ``fn(K_est, N_est) -> I_sim``, the ground-truth HR re-degraded with
                the estimates (the degradation engine lives outside ``nets``). The extractor's second pass on
                ``I_sim`` then runs inside this same call, which DDP needs (one forward per step).

        Returns:
            ``DMSROutput(sr, kernel=K_est, noise=N_est, y0)``, plus ``lr_sim``, ``kernel_sim``, ``noise_sim``
            when `resimulate` is given.
        """
        kernel, noise = self.extractor(lr)
        out = self.restore(lr, kernel, noise)
        if resimulate is None:
            return out
        lr_sim = resimulate(kernel, noise)
        kernel_sim, noise_sim = self.extractor(lr_sim)
        return out._replace(lr_sim=lr_sim, kernel_sim=kernel_sim, noise_sim=noise_sim)

    def restore(self, lr: Tensor, kernel: Tensor, noise: Tensor) -> DMSROutput:
        """The SR branch with given degradations (teacher forcing, user overrides, tiles with a fixed kernel).

        Args:
            lr: (B, 3, h, w) RGB in [0, 1].
            kernel: (B, k, k) blur kernel, row-major (normally non-negative and summing to 1).
            noise: (B, 3, h, w) signed noise realisation in [0, 1] units. With ``noise_input="sigma"`` it is
                reduced to its per-image σ here, so pass a realisation (or any map with that standard deviation).

        Returns:
            ``DMSROutput(sr, kernel, noise, y0)`` with `kernel` and `noise` as given.
        """
        check_image_batch(lr, name="lr", channels=3)
        check_image_batch(noise, name="noise", channels=3)
        B, _, h, w = lr.shape
        k = self.kernel_size
        if tuple(kernel.shape) != (B, k, k):
            raise ValueError(f"kernel must have shape {(B, k, k)}, got {tuple(kernel.shape)}")
        if tuple(noise.shape) != (B, 3, h, w):
            raise ValueError(f"noise must have the shape of lr {(B, 3, h, w)}, got {tuple(noise.shape)}")
        y0 = self.tail(self.upsampler(self.features(lr, noise))) / self.img_range + self.rgb_mean
        sr = y0
        for mbm in self.mbms:
            sr = mbm(sr, kernel)
        return DMSROutput(sr=sr, kernel=kernel, noise=noise, y0=y0)

    def features(self, lr: Tensor, noise: Tensor) -> Tensor:
        """The SR branch at LR resolution: MNM → head → RCAN body (+ long skip) → (B, n_feats, h, w).

        The part of ``restore`` before the upsampler (tiled inference runs it alone to pool the body's channel
        attention over the whole image). Shapes are checked by ``restore``.
        """
        noise_in = noise if self.noise_input == "map" else noise_level_map(noise)
        feats = self.mnm((lr - self.rgb_mean) * self.img_range, noise_in * self.img_range)
        f0 = self.head(feats)
        return self.body_conv(self.body(f0)) + f0

    @torch.no_grad()
    def init_code_from_pca(self, matrix: Tensor) -> None:
        """Initialise every MBM's FC(k² → 15) from the PCA matrix (15, k²) (docs/specs/dmsr.md §9); bias 0."""
        for mbm in self.mbms:
            assert isinstance(mbm, MetaDeblur)
            mbm.init_code_from_pca(matrix)

    def parameter_counts(self) -> dict[str, int]:
        """Parameter counts: ``{"extractor": DE, "sr": everything else, "total": both}``."""
        extractor = sum(p.numel() for p in self.extractor.parameters())
        total = sum(p.numel() for p in self.parameters())
        return {"extractor": extractor, "sr": total - extractor, "total": total}
