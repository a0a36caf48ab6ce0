"""``method.options`` of the four MRDA stages (paper values are the defaults), checked when a config is loaded.

The classes build on each other: :class:`MLNOptions` (the MLN's architecture) → :class:`AdaptationOptions` (its inner
loop) → :class:`SRNetOptions` (DEN + RDAN, shared by teacher and student) → one class per stage. The YAML keys are the
field names; they are flat, and RDAN's are gathered into a :class:`~blindsr.nets.mrda.RDANOptions` by
:meth:`SRNetOptions.rdan_options`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from blindsr.losses.distill import KDLossKind
from blindsr.nets.layers.dynamic_depthwise import KernelSource
from blindsr.nets.mrda import IDRSource, MetaLearningNetwork, Modulation, RDAMInput, RDANOptions
from blindsr.ops.resize import Border
from blindsr.types import Scale

__all__ = [
    "AdaptationOptions",
    "MLNOptions",
    "MRDAMetaOptions",
    "MRDAPretrainOptions",
    "MRDAStudentOptions",
    "MRDATeacherOptions",
    "SRNetOptions",
]


@dataclass(frozen=True, slots=True)
class MLNOptions:
    """The MLN's architecture (docs/specs/mrda.md §2.1), shared by every stage that builds or loads an MLN.

    Attributes:
        mln_feats: C′, the MLN width (128); also DEN_T's input channels.
        mln_body: body convs after the head (6).
        mln_skip_border: bicubic border of the global skip ("replicate", the reference code's).
        mln_skip_quantize: clamp and round the skip to 1/255 (the reference code's).
    """

    mln_feats: int = 128
    mln_body: int = 6
    mln_skip_border: Border = "replicate"
    mln_skip_quantize: bool = True

    def mln_kwargs(self, scale: Scale) -> dict[str, Any]:
        """The :class:`~blindsr.nets.mrda.MetaLearningNetwork` constructor arguments (also its release kwargs)."""
        return {
            "scale": scale,
            "n_feats": self.mln_feats,
            "n_body": self.mln_body,
            "skip_border": self.mln_skip_border,
            "skip_quantize": self.mln_skip_quantize,
        }


@dataclass(frozen=True, slots=True)
class MRDAPretrainOptions(MLNOptions):
    """``method.options`` of ``mrda_pretrain`` (stage 1a): the MLN's architecture only (see :class:`MLNOptions`)."""


@dataclass(frozen=True, slots=True)
class AdaptationOptions(MLNOptions):
    """The MLN's inner loop (Alg. 1 l. 9-11, Alg. 2 l. 4-9), shared by the meta, teacher and student stages.

    Attributes:
        inner_steps: n, the SGD steps per adaptation (5).
        inner_lr: alpha, one float (1e-2, constant: the paper) or one value per step (the reference code's
            adaptation: ``[1e-2, 5e-3, 5e-3, 5e-3, 5e-3]``).
        adapt_upscaler: also adapt (and in the meta stage, meta-train) the Upscaler; the paper freezes it (False).
        log_adaptation: log the inner L1 before and after adaptation (one extra MLN forward, without gradients).
    """

    inner_steps: int = 5
    inner_lr: float | tuple[float, ...] = 1e-2
    adapt_upscaler: bool = False
    log_adaptation: bool = True

    def __post_init__(self) -> None:
        if self.inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps}")
        rates = self.step_sizes()
        if len(rates) != self.inner_steps:
            raise ValueError(f"inner_lr lists {len(rates)} step sizes for inner_steps = {self.inner_steps}")
        if not all(r > 0 for r in rates):
            raise ValueError(f"inner_lr must be > 0, got {self.inner_lr}")

    def step_sizes(self) -> list[float]:
        """alpha of each inner step."""
        if isinstance(self.inner_lr, (int, float)):
            return [float(self.inner_lr)] * self.inner_steps
        return [float(v) for v in self.inner_lr]

    def adapts(self, name: str) -> bool:
        """Whether the MLN parameter `name` is adapted in the inner loop."""
        return self.adapt_upscaler or not MetaLearningNetwork.is_upscaler_parameter(name)


@dataclass(frozen=True, slots=True)
class MRDAMetaOptions(AdaptationOptions):
    """``method.options`` of ``mrda_meta`` (stage 1b, Alg. 1); the inner loop as in :class:`AdaptationOptions`.

    Attributes:
        tasks: m, the tasks per meta-step (5).
        order: "first" (first-order MAML, the reference code's) or "second" (full MAML).
        task_split: "disjoint" (each task its own HR patches: the batch is m chunks of support + query, so it must be
            a multiple of 2m) or "shared" (the reference code: every task degrades the whole batch; support = first
            half, query = second half).
        outer_reduction: "mean" over tasks (Alg. 1 l. 14, the reference code) or "sum".
    """

    tasks: int = 5
    order: Literal["first", "second"] = "first"
    task_split: Literal["disjoint", "shared"] = "disjoint"
    outer_reduction: Literal["mean", "sum"] = "mean"

    def __post_init__(self) -> None:
        AdaptationOptions.__post_init__(self)
        if self.tasks < 1:
            raise ValueError(f"tasks must be >= 1, got {self.tasks}")


@dataclass(frozen=True, slots=True)
class SRNetOptions(AdaptationOptions):
    """DEN + RDAN architecture (docs/specs/mrda.md §2.2-2.3) and the MLN adaptation, shared by teacher and student.

    Attributes:
        n_feats, n_blocks, idr_dim, kernel_size, modulation, kernel, rdam_channels, rdam_input, rdam_kernel_size,
            da_reduction: RDAN's, as the fields of :class:`~blindsr.nets.mrda.RDANOptions` (see there; "kernel" is
            the conv-kernel sense); ``modulation: da`` is Table V's S4, plus ``kernel: static`` S5.
        den_channels: the DEN's base width w (64).
        legacy_persistent_mln: reproduce the reference code's no-op MLN reset (docs/specs/mrda.md §6.1): the adapted
            weights carry over to the next batch (package text).
    """

    n_feats: int = 64
    n_blocks: int = 27
    idr_dim: int = 256
    den_channels: int = 64
    kernel_size: int = 3
    modulation: Modulation = "rdam"
    kernel: KernelSource = "dynamic"
    rdam_channels: int = 1
    rdam_input: RDAMInput = "F"
    rdam_kernel_size: int = 1
    da_reduction: int = 8
    legacy_persistent_mln: bool = False

    def rdan_options(self) -> RDANOptions:
        """RDAN's architecture (teacher and student alike); the DEN's width is :attr:`den_channels`."""
        return RDANOptions(
            n_feats=self.n_feats,
            n_blocks=self.n_blocks,
            idr_dim=self.idr_dim,
            kernel_size=self.kernel_size,
            modulation=self.modulation,
            kernel=self.kernel,
            rdam_channels=self.rdam_channels,
            rdam_input=self.rdam_input,
            rdam_kernel_size=self.rdam_kernel_size,
            da_reduction=self.da_reduction,
        )

    def release_kwargs(self, scale: Scale, **den: Any) -> dict[str, Any]:
        """A release file's flat ``arch_kwargs`` of MRDA_T / MRDA_S: scale, RDAN's fields, ``den_channels``, `den`.

        ``blindsr.archs.mrda.gather_rdan_options`` maps them back to the constructor's arguments.
        """
        return {"scale": scale, **asdict(self.rdan_options()), "den_channels": self.den_channels, **den}


@dataclass(frozen=True, slots=True)
class MRDATeacherOptions(SRNetOptions):
    """``method.options`` of ``mrda_teacher`` (stage 2, Alg. 2): see :class:`SRNetOptions`.

    Attributes:
        idr_source: "mln" (the paper's teacher MRDA_T2: DEN_T on the adapted MLN's D′) or "kernel" (Table V's
            MRDA_T3: DEN_T replaced by 5 FC layers on the batch's true blur kernel, ``nets.mrda.BlurKernelEncoder``;
            no MLN is built, loaded or adapted, so the ``mln_*`` and inner-loop options are unused and the stage
            needs no ``init:`` entry). The blur kernel side k is the degradation preset's ``kernel_size``.
    """

    idr_source: IDRSource = "mln"

    def __post_init__(self) -> None:
        AdaptationOptions.__post_init__(self)
        if self.idr_source not in ("mln", "kernel"):
            raise ValueError(f"idr_source must be 'mln' or 'kernel', got {self.idr_source!r}")
        if self.idr_source == "kernel" and self.legacy_persistent_mln:
            raise ValueError("legacy_persistent_mln needs an MLN; idr_source 'kernel' (MRDA_T3) uses none")


@dataclass(frozen=True, slots=True)
class MRDAStudentOptions(SRNetOptions):
    """``method.options`` of ``mrda_student`` (stage 3, Sec. III-D); the architecture as in :class:`SRNetOptions`.

    Attributes:
        teacher_den_channels: DEN_T's width w in the teacher run (0 = ``den_channels``).
        kd_kind: "paper" (Eq. 4-5: mean over the entries, tau = 1) or "reference" (sum / batch, tau = 0.15).
        kd_temperature: tau (1).
        lambda_kl: weight of L_kl (1).
        lambda_abs: weight of L_abs (0.01; the reference code: 0.1).
        kd_warmup_steps: the first optimiser steps train DEN_S on the KD terms alone, RDAN_S gets no gradient (the
            reference code: 100 of 500 epochs; the paper does not mention it). 100,000 = 100 epochs at the ~1,000
            iterations per epoch assumed in docs/specs/mrda.md §4.5; 0 disables.
    """

    teacher_den_channels: int = 0
    kd_kind: KDLossKind = "paper"
    kd_temperature: float = 1.0
    lambda_kl: float = 1.0
    lambda_abs: float = 0.01
    kd_warmup_steps: int = 100_000

    def __post_init__(self) -> None:
        AdaptationOptions.__post_init__(self)
        if self.lambda_kl < 0 or self.lambda_abs < 0:
            raise ValueError(f"lambda_kl and lambda_abs must be >= 0, got {self.lambda_kl}, {self.lambda_abs}")
        if self.kd_warmup_steps < 0:
            raise ValueError(f"kd_warmup_steps must be >= 0, got {self.kd_warmup_steps}")
        if self.kd_warmup_steps and not self.distills:
            raise ValueError("kd_warmup_steps > 0 needs a KD term (lambda_kl or lambda_abs > 0)")
        if self.teacher_den_channels < 0:
            raise ValueError(f"teacher_den_channels must be >= 0, got {self.teacher_den_channels}")

    @property
    def distills(self) -> bool:
        """Whether any KD term is on (False: Table V's S6, the student trained with L_rec alone)."""
        return self.lambda_kl > 0 or self.lambda_abs > 0
