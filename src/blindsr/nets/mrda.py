"""MRDA: Meta-Learning based Degradation Representation for Blind Super-Resolution.

Xia et al., IEEE TIP 2023, arXiv:2207.13963. Reference code (no licence; read, not copied): Zj-BinXia/MRDA@36f9c65.
Built from ``docs/specs/mrda.md`` sections 2, 3 and 9. DASR's DA conv (ablation S4/S5) is in ``nets/dasr.py``, the
dynamic depthwise branch in ``nets/layers/dynamic_depthwise.py``.

Paper → code:
    MLN, meta-learning network (Sec. III-B, Fig. 2a) ......... MetaLearningNetwork
    its first 7 convs, whose output is D′_T (Alg. 2 l. 10) ... MLNTrunk; MetaLearningNetwork.degradation_features
    its Upscaler (frozen after bicubic pretraining) .......... MetaLearningNetwork.upscaler (is_upscaler_parameter)
    DEN_T / DEN_S (Sec. III-C/D, Fig. 2b-c) .................. DegradationExtractionNetwork(in_channels=128 | 3)
    RDA conv: DynamicConv + RDAM (Sec. III-E, Eq. 8-10) ...... RDAConv
    RDA block (Fig. 2, yellow box) ........................... RDABlock
    RDAN (Sec. III-E, Fig. 2, blue box) ...................... RDAN
    RDAN's widths and ablation switches (one object) ......... RDANOptions (passed to RDABlock, RDAN, MRDA_T, MRDA_S)
    MRDA_T, the teacher (Sec. III-C, Alg. 2) ................. MRDATeacher (DEN_T + RDAN_T; the MLN stays outside)
    MRDA_S, the student (Sec. III-D; the deployed model) ..... MRDAStudent (DEN_S + RDAN_S)
    Table V: S4 (DA module instead of RDAM) .................. RDANOptions(modulation="da") (DAConv in every block)
             S5 (S4 with ordinary convs) ..................... RDANOptions(modulation="da", kernel="static")
             T3 (DEN_T → 5 FC layers on the true kernel) ..... BlurKernelEncoder; MRDATeacher(idr_source="kernel"),
                                                               called as ``teacher(lr, blur_kernels=k)``

Conventions: images are (B, 3, H, W) RGB in [0, 1]. The IDR is the DEN's 256-d output (the paper's "4C" entries
of Eq. 4-5); RDAN compresses it to C = 64 itself (docs/specs/mrda.md §2.2). LReLU = LeakyReLU(0.1) everywhere, no
normalisation.

Names: a bare "kernel" is a convolution kernel (``kernel_size``, ``kernel="dynamic" | "static"``,
``rdam_kernel_size``); the degradation's blur kernels always say "blur" (``BlurKernelEncoder``,
``blur_kernel_size``, ``blur_kernels``, the ``blur_encoder`` member). One exception is kept: the value
``idr_source="kernel"`` (MRDA_T3), which configs, release files and ``blindsr eval`` output spell that way.

Constructors are keyword-only. RDAN's architecture (width, depth, IDR length and the Table V switches) is one frozen
:class:`RDANOptions`, passed as ``options=`` to ``RDABlock`` / ``RDAN`` and as ``rdan_options=`` to ``MRDATeacher`` /
``MRDAStudent``, whose own arguments are those of their DEN (or blur-kernel encoder). Release files store the flat
fields (``arch_kwargs``); ``blindsr.archs.mrda.gather_rdan_options`` gathers them into an ``RDANOptions``.

Teacher contract (docs/specs/mrda.md §4.3). ``MRDATeacher`` holds DEN_T and RDAN_T only; it takes the adapted MLN's
features D′_T, so the training stage owns the frozen meta-initialised MLN and adapts it functionally, never in place::

    params = dict(mln.named_parameters())                 # θ_M: a fresh dict per batch is the per-batch reset
    loss_of = lambda p: l1(torch.func.functional_call(mln, p, (lr,), {"lr_bic": lr_bic}).sr, hr)
    adapted = inner_adapt(params, loss_of, ..., trainable=lambda n: not mln.is_upscaler_parameter(n))
    features = mln.degradation_features(lr, params=adapted).detach()     # D′_T, (B, 128, h, w)
    out = teacher(lr, features)                                          # MRDAOutput(sr, idr = D_T)

The student reads the LR image only: ``student(lr) -> MRDAOutput(sr, idr = D_S)``. Its ``rdan.*`` state-dict keys
are the teacher's, so ``student.rdan.load_state_dict(teacher.rdan.state_dict(), strict=True)`` is the stage-3 init.

Parameter counts (learnable parameters, default widths)::

    component                      ×2          ×3          ×4
    MLN                     1,482,883   2,220,803   2,073,219
    DEN_T                   1,348,992   1,348,992   1,348,992
    DEN_S                   1,276,992   1,276,992   1,276,992
    RDAN                    4,414,009   4,598,649   4,561,721
    MRDA_T (DEN_T + RDAN)   5,763,001   5,947,641   5,910,713
    MRDA_S (DEN_S + RDAN)   5,691,001   5,875,641   5,838,713

    RDA conv 41,025; RDA block 155,906; DA conv 46,144; BlurKernelEncoder (T3, 21×21 blur kernels, d = 256) 376,320.

docs/specs/mrda.md §2.4 and the reference code count 24 more in RDAN, MRDA_T and MRDA_S (MRDA_S ×4: 5,838,737): the
reference's mean shifts are two frozen 1×1 convs (3·3 weights + 3 biases each). Here the mean shift is a constant,
non-persistent buffer (docs/specs/mrda.md §2.3), so it is not a parameter: ``REFERENCE_MEAN_SHIFT_PARAMS`` = 24 bridges
the two. Ablations at ×4 (MRDA_S): S4 6,115,139; S5 3,934,403; no RDAM 5,835,203; C-channel RDAM map 6,059,843; 3×3 RDAM
map 5,866,361. MRDA_T3 at ×4 (BlurKernelEncoder + RDAN): 4,938,041.

MRDA_T3, the oracle-kernel teacher (Table V; paper: "Comparison with Non-Blind SR"): ``MRDATeacher(idr_source=
"kernel")`` holds a ``BlurKernelEncoder`` (member ``blur_encoder``, state-dict keys ``blur_encoder.*``) instead of
DEN_T and reads the true blur kernels of the batch, ``teacher(lr, blur_kernels=k)`` with k (B, k, k); no MLN is
involved. Its ``rdan.*`` keys are those of every other teacher. Weights written before the rename (keys
``kernel_encoder.*``) load unchanged: ``MRDATeacher`` maps the old prefix when a state dict is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from blindsr.nets.dasr import DAConv
from blindsr.nets.layers.dynamic_depthwise import DepthwiseBranch, KernelSource
from blindsr.nets.layers.rcan import Upsampler
from blindsr.ops.checks import MAX_DEPTH, MAX_KERNEL, MAX_WIDTH, check_counts, check_image_batch, check_odd_kernel_size
from blindsr.ops.resize import Border, bicubic_upscale
from blindsr.types import Scale

__all__ = [
    "REFERENCE_MEAN_SHIFT_PARAMS",
    "BlurKernelEncoder",
    "DegradationExtractionNetwork",
    "IDRSource",
    "MLNOutput",
    "MLNTrunk",
    "MRDAOutput",
    "MRDAStudent",
    "MRDATeacher",
    "MetaLearningNetwork",
    "Modulation",
    "RDABlock",
    "RDAConv",
    "RDAMInput",
    "RDAN",
    "RDANOptions",
]

# "rdam": MRDA's RDA conv (Eq. 8-10); "none": the RDA conv without RDAM (F2 = F1 + F, i.e. M ≡ 1);
# "da": DASR's DA conv in every block (Table V, S4).
Modulation = Literal["rdam", "none", "da"]
# What RDAM's map is computed from: the conv input F (Eq. 9, reference code) or the dynamic branch F1 (the text).
RDAMInput = Literal["F", "F1"]
# What the teacher's IDR is computed from: the adapted MLN's features D′ by DEN_T (MRDA_T2, the paper's teacher) or
# the true blur kernel by BlurKernelEncoder (Table V, MRDA_T3; "kernel" is the blur kernel here, see the module text).
IDRSource = Literal["mln", "kernel"]

REFERENCE_MEAN_SHIFT_PARAMS: Final = 24
"""Parameters the reference code (and docs/specs/mrda.md §2.4) give the two fixed mean shifts; 0 here (buffers)."""

_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K, × rgb_range = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RDANOptions:
    """RDAN's architecture: its widths and the Table V switches, one object for RDABlock, RDAN, MRDA_T and MRDA_S.

    The defaults are the paper's. The fields are checked where they are used (``RDAN``, ``RDABlock``, ``RDAConv``),
    with the same messages as a misspelt constructor argument would get.

    Attributes:
        n_feats: C, RDAN's width and the length of the code every block reads (64).
        n_blocks: RDA blocks (27).
        idr_dim: d, the IDR length (256): the output of DEN (or of MRDA_T3's blur-kernel encoder) and RDAN's input.
        kernel_size: side of the depthwise conv kernels of the degradation-aware convs (3); the plain convs are 3×3.
        modulation: "rdam" (MRDA's RDA conv, Eq. 8-10), "none" (the RDA conv without RDAM: F2 = F1 + F) or "da"
            (DASR's DA conv in every block, Table V S4).
        kernel: "dynamic" (conv kernels predicted from the code: the paper) or "static" (ordinary learned depthwise
            kernels; Table V S5 with ``modulation="da"``). "static" needs "da": with RDAM or none, nothing would read
            the IDR.
        rdam_channels: channels of RDAM's map M: 1 (default, the reference code) or C (the text, M ∈ R^{C×H×W}).
        rdam_input: what M is computed from: "F" (Eq. 9, default) or "F1" (the text: "based on the F1").
        rdam_kernel_size: odd side of the conv computing M (1).
        da_reduction: DAConv's channel-attention reduction r (8); only with ``modulation="da"``.
    """

    n_feats: int = 64
    n_blocks: int = 27
    idr_dim: int = 256
    kernel_size: int = 3
    modulation: Modulation = "rdam"
    kernel: KernelSource = "dynamic"
    rdam_channels: int = 1
    rdam_input: RDAMInput = "F"
    rdam_kernel_size: int = 1
    da_reduction: int = 8


def _rdan_options(options: Any, *, owner: str) -> RDANOptions:
    """`options`, checked to be an :class:`RDANOptions` (None: the paper's)."""
    if options is None:
        return RDANOptions()
    if not isinstance(options, RDANOptions):
        raise TypeError(f"{owner}: RDAN's architecture must be an RDANOptions, got {type(options).__name__}")
    return options


def _conv3x3(in_channels: int, out_channels: int, *, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.1)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _check_scale(scale: int) -> None:
    if scale not in (2, 3, 4):
        raise ValueError(f"scale must be 2, 3 or 4, got {scale}")


def _check_vector(x: Tensor, batch: int, dim: int, *, name: str) -> None:
    if x.ndim != 2 or tuple(x.shape) != (batch, dim):
        raise ValueError(f"{name} must have shape ({batch}, {dim}), got {tuple(x.shape)}")


# ================================================================================================================
# MLN: meta-learning network (Sec. III-B, Fig. 2a; docs/specs/mrda.md §2.1)
# ================================================================================================================


class MLNOutput(NamedTuple):
    """What ``MetaLearningNetwork`` returns.

    Attributes:
        sr: (B, 3, s·h, s·w) the MLN's own SR estimate (what the inner loop's L1 is computed on).
        features: (B, C′, h, w) the body output after its LReLU: the degradation information D′.
    """

    sr: Tensor
    features: Tensor


class MLNTrunk(nn.Module):
    """Head Conv(3 → C′) + LReLU, then `n_body` × [Conv(C′ → C′) + LReLU]; the output is D′ (B, C′, h, w)."""

    def __init__(self, *, n_feats: int = 128, n_body: int = 6) -> None:
        super().__init__()
        self.head = _conv3x3(3, n_feats)
        self.body = nn.ModuleList(_conv3x3(n_feats, n_feats) for _ in range(n_body))

    def forward(self, lr: Tensor) -> Tensor:
        """Map (B, 3, h, w) to the body features (B, C′, h, w)."""
        x = _lrelu(self.head(lr))
        for conv in self.body:
            x = _lrelu(conv(x))
        return x


class MetaLearningNetwork(nn.Module):
    """MLN: trunk (8 convs in all with `out`) → Upscaler → Conv(C′ → 3), plus a bicubic global skip.

    ``sr = out(upscaler(trunk(lr))) + skip(lr)``, with ``skip`` the LR upsampled by MATLAB-geometry bicubic,
    clamped to [0, 1] and rounded to 1/255 (the reference code's ``lr_bic``; docs/specs/mrda.md §2.1 and
    docs/specs/degradations_and_protocols.md §3.5). No mean shift. The network is stateless apart from its parameters,
    so ``torch.func.functional_call(mln, params, (lr,))`` with an adapted parameter dict is the adapted network (MAML,
    docs/specs/mrda.md §4.2).

    Args:
        scale: upscaling factor s (2, 3 or 4).
        n_feats: C′, the width (128).
        n_body: body convs after the head (6).
        skip_border: bicubic border handling of the skip: "replicate" (the reference code, default) or
            "symmetric" (MATLAB).
        skip_quantize: clamp the skip to [0, 1] and round it to 1/255, as the reference code does (default).
    """

    def __init__(
        self,
        *,
        scale: Scale,
        n_feats: int = 128,
        n_body: int = 6,
        skip_border: Border = "replicate",
        skip_quantize: bool = True,
    ) -> None:
        super().__init__()
        _check_scale(scale)
        check_counts("MetaLearningNetwork", maximum=MAX_WIDTH, n_feats=n_feats)
        check_counts("MetaLearningNetwork", maximum=MAX_DEPTH, n_body=n_body)
        if skip_border not in ("replicate", "symmetric"):
            raise ValueError(f"skip_border must be 'replicate' or 'symmetric', got {skip_border!r}")
        self.scale = scale
        self.n_feats = n_feats
        self.skip_border: Border = skip_border
        self.skip_quantize = skip_quantize
        self.trunk = MLNTrunk(n_feats=n_feats, n_body=n_body)
        self.upscaler = Upsampler(scale=scale, channels=n_feats, activation_after=False)
        self.out = _conv3x3(n_feats, 3)

    @staticmethod
    def is_upscaler_parameter(name: str) -> bool:
        """Whether a parameter name (``named_parameters()`` style) belongs to the paper's Upscaler.

        The paper freezes the Upscaler after bicubic pretraining (Alg. 1 l. 10, 14; Alg. 2 l. 8). Its "8
        convolutional layers" are head, 6 body convs and `out`, so `out` is adapted. The reference code's ``tail``
        (frozen in its student stage only) is ``upscaler`` + ``out``.
        """
        return name.startswith("upscaler.")

    def bicubic_skip(self, lr: Tensor) -> Tensor:
        """The global skip: bicubic ×s of `lr` (B, 3, h, w), clamped and rounded to 1/255 when `skip_quantize`."""
        up = bicubic_upscale(lr, self.scale, border=self.skip_border)
        if self.skip_quantize:
            up = torch.round(up.clamp(0.0, 1.0) * 255.0) / 255.0
        return up

    def forward(self, lr: Tensor, *, lr_bic: Tensor | None = None) -> MLNOutput:
        """Super-resolve `lr` and return the degradation features on the way.

        Args:
            lr: (B, 3, h, w) RGB in [0, 1].
            lr_bic: the precomputed ``bicubic_skip(lr)`` (B, 3, s·h, s·w), so an inner loop computes it once per
                batch; None computes it here.

        Returns:
            ``MLNOutput(sr, features)``.
        """
        check_image_batch(lr, name="lr", channels=3)
        B, _, h, w = lr.shape
        if lr_bic is None:
            lr_bic = self.bicubic_skip(lr)
        elif tuple(lr_bic.shape) != (B, 3, h * self.scale, w * self.scale):
            raise ValueError(
                f"lr_bic must have shape {(B, 3, h * self.scale, w * self.scale)}, got {tuple(lr_bic.shape)}"
            )
        features = self.trunk(lr)
        sr = self.out(self.upscaler(features)) + lr_bic
        return MLNOutput(sr=sr, features=features)

    def degradation_features(self, lr: Tensor, *, params: Mapping[str, Tensor] | None = None) -> Tensor:
        """D′ alone, with the module's or an adapted parameter set (skips the Upscaler: over 3× the trunk's cost at ×4).

        Args:
            lr: (B, 3, h, w) RGB in [0, 1].
            params: None for the module's own parameters, or a full ``named_parameters()``-style dict (adapted
                weights); its ``trunk.*`` entries are used, all of them required (strict).

        Returns:
            (B, C′, h, w).
        """
        check_image_batch(lr, name="lr", channels=3)
        if params is None:
            out: Tensor = self.trunk(lr)
            return out
        trunk_params = {k.removeprefix("trunk."): v for k, v in params.items() if k.startswith("trunk.")}
        out = torch.func.functional_call(self.trunk, trunk_params, (lr,), strict=True)
        return out

    def parameter_counts(self) -> dict[str, int]:
        """``{"trunk": head + body, "upscaler": ..., "out": ..., "total": ...}``."""
        counts = {"trunk": _count(self.trunk), "upscaler": _count(self.upscaler), "out": _count(self.out)}
        return {**counts, "total": sum(counts.values())}


# ================================================================================================================
# DEN: degradation extraction network, T and S (Sec. III-C/D, Fig. 2b-c; docs/specs/mrda.md §2.2); T3's blur encoder
# ================================================================================================================


class DegradationExtractionNetwork(nn.Module):
    """DEN: six 3×3 convs with LReLU (widths w, w, 2w, 2w, 4w, 4w; the 3rd and 5th with stride 2), global average
    pool, ``Linear(4w → d) → LReLU → Linear(d → d)``. No normalisation (DASR's encoder has BatchNorm; MRDA drops it).

    DEN_T reads D′ (``in_channels = 128``), DEN_S the LR image as it is (``in_channels = 3``, no mean shift, like the
    reference code).

    Args:
        in_channels: C_in of the first conv.
        channels: w (64).
        idr_dim: d, the IDR length (256).
    """

    def __init__(self, *, in_channels: int, channels: int = 64, idr_dim: int = 256) -> None:
        super().__init__()
        w = channels
        layout = [
            (in_channels, w, 1),
            (w, w, 1),
            (w, 2 * w, 2),
            (2 * w, 2 * w, 1),
            (2 * w, 4 * w, 2),
            (4 * w, 4 * w, 1),
        ]
        self.in_channels = in_channels
        self.idr_dim = idr_dim
        self.convs = nn.ModuleList(_conv3x3(c_in, c_out, stride=s) for c_in, c_out, s in layout)
        self.mlp = nn.Sequential(nn.Linear(4 * w, idr_dim), nn.LeakyReLU(0.1), nn.Linear(idr_dim, idr_dim))

    def forward(self, x: Tensor) -> Tensor:
        """Map (B, C_in, h, w) to the IDR (B, d); any h, w >= 1."""
        check_image_batch(x, name="DEN input", channels=self.in_channels)
        for conv in self.convs:
            x = _lrelu(conv(x))
        out: Tensor = self.mlp(x.mean(dim=(2, 3)))
        return out


class BlurKernelEncoder(nn.Module):
    """MRDA_T3's IDR encoder (Table V): five fully connected layers on the flattened true blur kernel.

    ``Linear(k² → d) → LReLU → 3 × [Linear(d → d) → LReLU] → Linear(d → d)``: LReLU(0.1) between the layers, none
    after the last (like DEN's MLP head). The paper gives only "5 FC layers"; the hidden width d (the IDR length) is
    our choice. The blur kernels' entries are read as they are (each kernel sums to 1), without normalisation.

    Args:
        blur_kernel_size: k, the side of the square blur kernels (21 for the MRDA presets).
        idr_dim: d, the IDR length and the hidden width (256).
        n_layers: the number of linear layers (5).
    """

    def __init__(self, *, blur_kernel_size: int = 21, idr_dim: int = 256, n_layers: int = 5) -> None:
        super().__init__()
        check_odd_kernel_size(blur_kernel_size)
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.blur_kernel_size = blur_kernel_size
        self.idr_dim = idr_dim
        widths = [blur_kernel_size * blur_kernel_size] + [idr_dim] * n_layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))

    def forward(self, blur_kernels: Tensor) -> Tensor:
        """Map (B, k, k) blur kernels to the IDR (B, d)."""
        k = self.blur_kernel_size
        if blur_kernels.ndim != 3 or tuple(blur_kernels.shape[1:]) != (k, k):
            raise ValueError(f"blur_kernels must have shape (B, {k}, {k}), got {tuple(blur_kernels.shape)}")
        x = blur_kernels.flatten(1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = _lrelu(x)
        return x


# ================================================================================================================
# RDA conv, RDA block, RDAN (Sec. III-E, Eq. 8-10, Fig. 2; docs/specs/mrda.md §2.3)
# ================================================================================================================


class RDAConv(nn.Module):
    """RDA conv: ``F1 = LReLU(DWConv(F; w(k)))`` (Eq. 8), ``M = sigmoid(Conv(F))`` (Eq. 9), ``F2 = M·F1 + F`` (Eq. 10).

    The kernels w are one k×k depthwise kernel per (sample, channel), predicted from the code k by
    ``Linear(C → C) → LReLU → Linear(C → C·k²)`` (no biases). M defaults to 1 channel from a 1×1 conv on F, which
    broadcasts over channels (reference code; it reproduces the paper's 5.84 M, docs/specs/mrda.md §2.3).

    Args:
        n_feats: C, the feature channels and the code length (64).
        kernel_size: side of the depthwise kernels (3).
        kernel: "dynamic" (the paper) or "static" (ordinary depthwise kernels).
        rdam: False drops the modulation: ``F2 = F1 + F``.
        rdam_channels: channels of M: 1 (default) or C (the paper's text, "M ∈ R^{C×H×W}").
        rdam_input: "F" (Eq. 9, default) or "F1" (the text: "based on the F1").
        rdam_kernel_size: odd size of the conv computing M (1).
    """

    def __init__(
        self,
        *,
        n_feats: int = 64,
        kernel_size: int = 3,
        kernel: KernelSource = "dynamic",
        rdam: bool = True,
        rdam_channels: int = 1,
        rdam_input: RDAMInput = "F",
        rdam_kernel_size: int = 1,
    ) -> None:
        super().__init__()
        if rdam_channels not in (1, n_feats):
            raise ValueError(f"rdam_channels must be 1 or n_feats={n_feats}, got {rdam_channels}")
        if rdam_input not in ("F", "F1"):
            raise ValueError(f"rdam_input must be 'F' or 'F1', got {rdam_input!r}")
        check_odd_kernel_size(rdam_kernel_size)
        self.depthwise = DepthwiseBranch(code_dim=n_feats, channels=n_feats, kernel_size=kernel_size, kernel=kernel)
        self.rdam = nn.Conv2d(n_feats, rdam_channels, rdam_kernel_size, padding=rdam_kernel_size // 2) if rdam else None
        self.map_from_f1 = rdam_input == "F1"

    def _map(self, x: Tensor, f1: Tensor) -> Tensor:
        assert self.rdam is not None
        return torch.sigmoid(self.rdam(f1 if self.map_from_f1 else x))

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        """Apply the RDA conv.

        Args:
            x: (B, C, H, W) features F.
            code: (B, C) degradation code.

        Returns:
            (B, C, H, W) F2.
        """
        f1 = _lrelu(self.depthwise(x, code))
        if self.rdam is None:
            return f1 + x
        return self._map(x, f1) * f1 + x

    def modulation_map(self, x: Tensor, code: Tensor) -> Tensor:
        """The RDAM coefficients M (B, rdam_channels, H, W) in (0, 1) that `forward` uses (Fig. 10's maps)."""
        if self.rdam is None:
            raise ValueError("this RDAConv was built with rdam=False: it has no modulation map")
        f1 = _lrelu(self.depthwise(x, code)) if self.map_from_f1 else x
        return self._map(x, f1)


class RDABlock(nn.Module):
    """``x → DAC₁ → LReLU → Conv3×3 → LReLU → DAC₂ → LReLU → Conv3×3 → + x``; DAC = RDAConv, or DAConv (S4).

    Args:
        options: RDAN's architecture (:class:`RDANOptions`; None: the paper's). A block reads ``n_feats``,
            ``kernel_size``, ``modulation`` ("rdam": RDAConv, "none": RDAConv without RDAM, "da": DASR's DAConv),
            ``kernel`` (both degradation-aware convs), ``rdam_*`` (only with "rdam") and ``da_reduction`` (only with
            "da"); ``n_blocks`` and ``idr_dim`` are RDAN's.
    """

    def __init__(self, *, options: RDANOptions | None = None) -> None:
        super().__init__()
        o = _rdan_options(options, owner="RDABlock")
        if o.modulation not in ("rdam", "none", "da"):
            raise ValueError(f"modulation must be 'rdam', 'none' or 'da', got {o.modulation!r}")

        def make() -> nn.Module:
            if o.modulation == "da":
                return DAConv(n_feats=o.n_feats, kernel_size=o.kernel_size, reduction=o.da_reduction, kernel=o.kernel)
            return RDAConv(
                n_feats=o.n_feats,
                kernel_size=o.kernel_size,
                kernel=o.kernel,
                rdam=o.modulation == "rdam",
                rdam_channels=o.rdam_channels,
                rdam_input=o.rdam_input,
                rdam_kernel_size=o.rdam_kernel_size,
            )

        self.da_conv1 = make()
        self.conv1 = _conv3x3(o.n_feats, o.n_feats)
        self.da_conv2 = make()
        self.conv2 = _conv3x3(o.n_feats, o.n_feats)

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        """Map (B, C, H, W) features and a (B, C) code to (B, C, H, W)."""
        out = _lrelu(self.da_conv1(x, code))
        out = _lrelu(self.conv1(out))
        out = _lrelu(self.da_conv2(out, code))
        return self.conv2(out) + x


class RDAN(nn.Module):
    """RDAN: mean shift → head → `n_blocks` RDA blocks → Conv → + head output → upsampler → Conv(C → 3) → mean.

    The IDR (B, d) is compressed once by ``Linear(d → C, no bias) + LReLU`` into the code every block uses. One
    group of 27 blocks, without a group-level conv or residual (the reference code comments them out), no bicubic
    skip. The upsampler is EDSR's (×2, ×4: Conv(C → 4C) + PixelShuffle(2) per factor 2; ×3: Conv(C → 9C) +
    PixelShuffle(3)), without activation.

    Args:
        scale: upscaling factor s (2, 3 or 4).
        options: the architecture (:class:`RDANOptions`: C, the number of blocks, d and the Table V switches; None:
            the paper's). Kept as :attr:`options`.
    """

    rgb_mean: Tensor

    def __init__(self, *, scale: Scale, options: RDANOptions | None = None) -> None:
        super().__init__()
        o = _rdan_options(options, owner="RDAN")
        _check_scale(scale)
        check_counts("RDAN", maximum=MAX_WIDTH, n_feats=o.n_feats, rdam_channels=o.rdam_channels)
        check_counts("RDAN", maximum=4 * MAX_WIDTH, idr_dim=o.idr_dim)
        check_counts("RDAN", maximum=MAX_DEPTH, n_blocks=o.n_blocks)
        check_counts("RDAN", maximum=MAX_WIDTH, da_reduction=o.da_reduction)
        check_counts("RDAN", maximum=MAX_KERNEL, kernel_size=o.kernel_size, rdam_kernel_size=o.rdam_kernel_size)
        if o.kernel == "static" and o.modulation != "da":
            raise ValueError(
                f"kernel='static' with modulation={o.modulation!r} leaves the IDR unused; use modulation='da' (S5)"
            )
        self.scale = scale
        self.options = o
        self.idr_dim = o.idr_dim
        self.register_buffer("rgb_mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.compress = nn.Linear(o.idr_dim, o.n_feats, bias=False)
        self.head = _conv3x3(3, o.n_feats)
        self.blocks = nn.ModuleList(RDABlock(options=o) for _ in range(o.n_blocks))
        self.body_conv = _conv3x3(o.n_feats, o.n_feats)
        self.upsampler = Upsampler(scale=scale, channels=o.n_feats, activation_after=False)
        self.tail = _conv3x3(o.n_feats, 3)

    def forward(self, lr: Tensor, idr: Tensor) -> Tensor:
        """Super-resolve `lr` guided by its IDR.

        Args:
            lr: (B, 3, h, w) RGB in [0, 1].
            idr: (B, d) implicit degradation representation (D_T or D_S).

        Returns:
            (B, 3, s·h, s·w), not clipped.
        """
        check_image_batch(lr, name="lr", channels=3)
        _check_vector(idr, lr.shape[0], self.idr_dim, name="idr")
        code = _lrelu(self.compress(idr))
        f0 = self.head(lr - self.rgb_mean)
        x = f0
        for block in self.blocks:
            x = block(x, code)
        x = self.body_conv(x) + f0
        sr: Tensor = self.tail(self.upsampler(x)) + self.rgb_mean
        return sr


# ================================================================================================================
# MRDA_T and MRDA_S (Fig. 2b-c)
# ================================================================================================================


class MRDAOutput(NamedTuple):
    """What ``MRDATeacher`` and ``MRDAStudent`` return.

    Attributes:
        sr: (B, 3, s·h, s·w) the SR image.
        idr: (B, d) the DEN's IDR (D_T or D_S): the KD target or prediction (Eq. 4-5) and RDAN's guide.
    """

    sr: Tensor
    idr: Tensor


_LEGACY_BLUR_ENCODER_PREFIX: Final = "kernel_encoder."
"""The state-dict prefix of MRDA_T3's blur-kernel encoder in files written before it was named ``blur_encoder``."""


def _rename_legacy_blur_encoder_keys(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, *_args: Any, **_kwargs: Any
) -> None:
    """``load_state_dict`` pre-hook of MRDATeacher: ``<prefix>kernel_encoder.*`` → ``<prefix>blur_encoder.*``.

    Run folders and release files of MRDA_T3 written before the rename keep loading strictly (resume, ``init:``,
    ``blindsr eval --teacher-run``, ``load_model``); a state dict that has both spellings is left alone, so the
    strict load reports it.
    """
    old = prefix + _LEGACY_BLUR_ENCODER_PREFIX
    new = prefix + "blur_encoder."
    legacy = [k for k in state_dict if k.startswith(old)]
    if not legacy or any(k.startswith(new) for k in state_dict):
        return
    for key in legacy:
        state_dict[new + key[len(old) :]] = state_dict.pop(key)


class MRDATeacher(nn.Module):
    """MRDA_T: ``idr = DEN_T(D′)``, ``sr = RDAN_T(lr, idr)``, with D′ the adapted MLN's features (module docstring).

    With ``idr_source="kernel"`` it is Table V's MRDA_T3: ``idr = BlurKernelEncoder(blur_kernels)`` from the true blur
    kernels (B, k, k) instead of DEN_T (no ``den`` member then; ``blur_encoder`` instead), called as
    ``teacher(lr, blur_kernels=...)``.

    Args:
        scale: upscaling factor s (2, 3 or 4).
        rdan_options: RDAN_T's architecture (:class:`RDANOptions`; None: the paper's); its ``idr_dim`` d is also
            DEN_T's (or the blur-kernel encoder's) output length.
        den_channels: DEN_T's base width w (64); unused with ``idr_source="kernel"``.
        mln_channels: C′, the channels of D′ (the MLN's width, 128); unused with ``idr_source="kernel"``.
        idr_source: "mln" (DEN_T on D′, the paper's teacher) or "kernel" (MRDA_T3, the true blur kernel).
        blur_kernel_size: k, the side of the true blur kernels (21); only with ``idr_source="kernel"``.
    """

    def __init__(
        self,
        *,
        scale: Scale,
        rdan_options: RDANOptions | None = None,
        den_channels: int = 64,
        mln_channels: int = 128,
        idr_source: IDRSource = "mln",
        blur_kernel_size: int = 21,
    ) -> None:
        super().__init__()
        rdan = _rdan_options(rdan_options, owner="MRDATeacher")
        check_counts("MRDATeacher", maximum=MAX_WIDTH, den_channels=den_channels, mln_channels=mln_channels)
        check_counts("MRDATeacher", maximum=MAX_KERNEL, blur_kernel_size=blur_kernel_size)
        check_counts("MRDATeacher", maximum=4 * MAX_WIDTH, idr_dim=rdan.idr_dim)
        if idr_source not in ("mln", "kernel"):
            raise ValueError(f"idr_source must be 'mln' or 'kernel', got {idr_source!r}")
        self.scale = scale
        self.idr_source: IDRSource = idr_source
        self.den: DegradationExtractionNetwork | None = None
        self.blur_encoder: BlurKernelEncoder | None = None
        if idr_source == "mln":
            self.den = DegradationExtractionNetwork(
                in_channels=mln_channels, channels=den_channels, idr_dim=rdan.idr_dim
            )
        else:
            self.blur_encoder = BlurKernelEncoder(blur_kernel_size=blur_kernel_size, idr_dim=rdan.idr_dim)
        self.rdan = RDAN(scale=scale, options=rdan)
        self.register_load_state_dict_pre_hook(_rename_legacy_blur_encoder_keys)

    def encode(self, lr: Tensor, features: Tensor | None = None, *, blur_kernels: Tensor | None = None) -> Tensor:
        """The IDR (B, d): DEN_T(D′), or BlurKernelEncoder(blur_kernels) for MRDA_T3 (arguments as in ``forward``)."""
        check_image_batch(lr, name="lr", channels=3)
        if self.blur_encoder is not None:
            if blur_kernels is None or features is not None:
                raise ValueError(
                    "MRDA_T3 (idr_source='kernel') reads the true blur kernels: call it with blur_kernels="
                )
            if blur_kernels.shape[0] != lr.shape[0]:
                raise ValueError(
                    f"blur_kernels must be (B, k, k) with B = {lr.shape[0]}, got {tuple(blur_kernels.shape)}"
                )
            idr: Tensor = self.blur_encoder(blur_kernels.to(lr.dtype))
            return idr
        assert self.den is not None
        if features is None or blur_kernels is not None:
            raise ValueError("MRDA_T (idr_source='mln') reads the adapted MLN's features D′, not blur kernels")
        check_image_batch(features, name="features", channels=self.den.in_channels)
        if features.shape[0] != lr.shape[0] or features.shape[2:] != lr.shape[2:]:
            raise ValueError(
                f"features (B, C′, h, w) must match lr in B, h, w; got {tuple(features.shape)} and {tuple(lr.shape)}"
            )
        idr = self.den(features)
        return idr

    def forward(self, lr: Tensor, features: Tensor | None = None, *, blur_kernels: Tensor | None = None) -> MRDAOutput:
        """Super-resolve `lr` with the degradation information of the adapted MLN (or the true blur kernels: T3).

        Args:
            lr: (B, 3, h, w) RGB in [0, 1].
            features: (B, C′, h, w) D′ from ``MetaLearningNetwork.degradation_features`` with the adapted
                parameters (detach it unless the MLN is meant to be trained through the teacher); None for MRDA_T3.
            blur_kernels: MRDA_T3 only (``idr_source="kernel"``): the true blur kernels (B, k, k) of the batch.

        Returns:
            ``MRDAOutput(sr, idr = D_T)``.

        Raises:
            ValueError: the input the teacher does not read (blur kernels for MRDA_T, features for MRDA_T3), or
                shapes that do not match.
        """
        idr = self.encode(lr, features, blur_kernels=blur_kernels)
        return MRDAOutput(sr=self.rdan(lr, idr), idr=idr)

    def parameter_counts(self) -> dict[str, int]:
        """``{"den": DEN_T, "rdan": RDAN_T, "total": both}`` (learnable; the MLN is not part of the teacher).

        MRDA_T3 (``idr_source="kernel"``): ``{"blur_encoder": ..., "rdan": ..., "total": ...}``.
        """
        encoder = self.den if self.den is not None else self.blur_encoder
        assert encoder is not None
        counts = {"den" if self.den is not None else "blur_encoder": _count(encoder), "rdan": _count(self.rdan)}
        return {**counts, "total": sum(counts.values())}


class MRDAStudent(nn.Module):
    """MRDA_S, the deployed blind SR model: ``idr = DEN_S(lr)``, ``sr = RDAN_S(lr, idr)``.

    Args:
        scale: upscaling factor s (2, 3 or 4).
        rdan_options: RDAN_S's architecture (:class:`RDANOptions`; None: the paper's); its ``idr_dim`` d is also
            DEN_S's output length.
        den_channels: DEN_S's base width w (64).
    """

    def __init__(self, *, scale: Scale, rdan_options: RDANOptions | None = None, den_channels: int = 64) -> None:
        super().__init__()
        rdan = _rdan_options(rdan_options, owner="MRDAStudent")
        check_counts("MRDAStudent", maximum=MAX_WIDTH, den_channels=den_channels)
        check_counts("MRDAStudent", maximum=4 * MAX_WIDTH, idr_dim=rdan.idr_dim)
        self.scale = scale
        self.den = DegradationExtractionNetwork(in_channels=3, channels=den_channels, idr_dim=rdan.idr_dim)
        self.rdan = RDAN(scale=scale, options=rdan)

    def forward(self, lr: Tensor) -> MRDAOutput:
        """Blind SR of `lr` (B, 3, h, w) RGB in [0, 1]; returns ``MRDAOutput(sr, idr = D_S)``."""
        check_image_batch(lr, name="lr", channels=3)
        idr = self.den(lr)
        return MRDAOutput(sr=self.rdan(lr, idr), idr=idr)

    def parameter_counts(self) -> dict[str, int]:
        """``{"den": DEN_S, "rdan": RDAN_S, "total": both}`` (learnable; see ``REFERENCE_MEAN_SHIFT_PARAMS``)."""
        counts = {"den": _count(self.den), "rdan": _count(self.rdan)}
        return {**counts, "total": sum(counts.values())}
