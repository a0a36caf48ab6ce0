"""MRDA training stages on the shared engine: MLN pretraining, MAML, teacher, student (spec ``docs/specs/mrda.md``).

MRDA: "Meta-Learning based Degradation Representation for Blind Super-Resolution", Xia et al., IEEE TIP 2023,
arXiv 2207.13963. Reference code (no licence; read, not copied): Zj-BinXia/MRDA@36f9c65.

Paper -> code (method names are the ``method.name`` of a config):
    Alg. 1 l. 2   bicubic pretraining of the MLN (spec 4.1) ..................... ``mrda_pretrain``  MRDAPretrainMethod
    Alg. 1        MAML of the MLN, m tasks, n inner SGD steps with alpha, Adam beta  ``mrda_meta``      MRDAMetaMethod
      l. 4, 7     support (inner) / query (outer) HR sets, one degradation per task .. MRDAMetaMethod.sample_tasks
      l. 8-11     theta_i <- theta_M; n SGD steps on non-Upscaler params ........... methods.meta.inner_adapt
      l. 14       meta-update with the average query loss (the loop's Adam) ........ MRDAMetaMethod.training_step
    Alg. 2        teacher MRDA_T = DEN_T + RDAN_T, the MLN frozen ................. ``mrda_teacher``   MRDATeacherMethod
      l. 4-9      per-batch reset to theta_M + n SGD steps (non-Upscaler) .......... adapt_mln_features
      l. 10       D'_T from the adapted MLN (detached) ............................. adapt_mln_features
      l. 11, Eq. 2  L_rec = ||SR - HR||_1 ......................................... MRDATeacherMethod.training_step
      Table V T3  DEN_T -> 5 FC layers on the batch's true blur kernel, no MLN ..... ``idr_source: kernel``
      evaluation  the oracle: MLN adapted on each test (LR, HR) pair; T3: the kernel  teacher_oracle
    Sec. III-D    student MRDA_S = DEN_S + RDAN_S, RDAN_S <- RDAN_T ............... ``mrda_student``   MRDAStudentMethod
      Eq. 4-6     L = L_rec + lambda_kl L_kl + lambda_abs L_abs ................... losses.distill.idr_distillation_loss
    Table V       S1/S2 (one KD term), S4/S5 (DA module, static kernels), S6 (no KD) .. options; configs/mrda/ablation_*

Where this differs from the reference code (spec section 6) and why:
    * 6.1 the reference's per-batch MLN "reset" is a no-op (aliased state_dict), so its MLN drifts through stages 3
      and 4. Here adaptation is functional: every batch starts from the meta-weights, bit for bit. The reference's
      behaviour is ``legacy_persistent_mln: true``: the MLN is then registered in ``networks`` as ``"mln"``
      (frozen: no gradient, outside the optimiser) and the adapted weights are written back into it after each
      batch, so the drifted MLN is checkpointed with the run and a resumed run continues bit for bit.
    * 6.3 the Upscaler is frozen in every phase after bicubic pretraining (paper; ``adapt_upscaler: false``). In the
      meta stage its parameters get ``requires_grad = False`` at construction, so they receive no gradient and the
      optimiser (built from trainable parameters only) never sees them. The reference adapts them in stages 2-3.
    * 6.4 ``inner_lr`` is a float or one step size per inner step (the reference: 1e-2, 5e-3, 5e-3, 5e-3, 5e-3).
    * 6.5 first-order MAML by default (the reference's), ``order: second`` for full MAML; "support" = the inner
      set, "query" = the outer set (the reference swaps the names). The outer loss is the *mean* over tasks (Alg. 1
      l. 14 "average test loss"; the reference divides the meta-gradient by m too). With Adam the scale barely
      matters (``outer_reduction: sum`` is offered).
    * Task sampling: by default each task has its own HR patches (``task_split: disjoint``: the batch is cut into m
      chunks, each half support and half query; the batch must be a multiple of 2m). The reference degrades the
      *same* batch once per task (``task_split: shared``: support = first half, query = second half).
    * The reference monitors MAML by adapting on the test HR (an oracle). Not done here: the meta stage validates the
      un-adapted meta-init as a plain SR network, and logs the inner L1 before and after adaptation per step.

Teacher validation: MRDA_T needs the HR image to adapt its MLN (an oracle; MRDA_T3 the true kernel), and the engine
validates from LR alone, so ``MRDATeacherMethod.inference`` returns a function that raises; teacher configs keep
``validation.every: 0`` and the student stage is the one to validate. ``blindsr eval --teacher-run`` (or ``-m TEACHER
--mln MLN``) evaluates a teacher as the oracle it is, through :func:`teacher_oracle`: every test image gets a fresh
functional adaptation of the MLN on its own (LR, HR) pair, and T3 gets the cell's true kernel.

Distributed training: the pretrain, teacher and student stages run under DDP (frozen members stay outside DDP and
every rank adapts its own MLN copy on its own batch). The meta stage calls the MLN functionally with adapted weights,
which DDP's gradient hooks do not see, and the student's KD-only warm-up calls DEN_S alone; both refuse a DDP-wrapped
network with a clear error. ``legacy_persistent_mln`` refuses several processes too (each rank would drift its own
MLN).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, NamedTuple, cast

import torch
from torch import Tensor, nn
from torch.func import functional_call

from blindsr.degradations import DegradationParams, DegradationSpec, degrade, sample_degradation
from blindsr.losses.distill import KDLossKind, idr_distillation_loss
from blindsr.methods.meta import inner_adapt, meta_parameters
from blindsr.nets.layers.dynamic_depthwise import KernelSource
from blindsr.nets.mrda import (
    DegradationExtractionNetwork,
    IDRSource,
    MetaLearningNetwork,
    Modulation,
    MRDAStudent,
    MRDATeacher,
    RDAMInput,
)
from blindsr.ops.resize import Border
from blindsr.types import Scale, StepOutput, UpscaleFn

__all__ = [
    "AdaptationOptions",
    "MLNOptions",
    "MRDAMetaMethod",
    "MRDAMetaOptions",
    "MRDAPretrainMethod",
    "MRDAPretrainOptions",
    "MRDAStudentMethod",
    "MRDAStudentOptions",
    "MRDATeacherMethod",
    "MRDATeacherOptions",
    "MetaTask",
    "OracleUpscaleFn",
    "SRNetOptions",
    "adapt_mln_features",
    "teacher_oracle",
]

Release = dict[str, tuple[str, dict[str, Any]]]

OracleUpscaleFn = Callable[[Tensor, int, Tensor, Tensor], Tensor]
"""``upscale(lr, scale, hr, kernel) -> sr``: SR that is also given the HR image (B, 3, s·h, s·w) and the true blur
kernel (B, k, k); the shape of ``blindsr.eval.benchmark.OracleModel.upscale``."""


# ================================================================================================================
# Options (``method.options`` of each stage; paper values are the defaults)
# ================================================================================================================


@dataclass(frozen=True, slots=True)
class MLNOptions:
    """The MLN's architecture (spec 2.1), shared by every stage that builds or loads an MLN.

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
        """The :class:`~blindsr.nets.mrda.MetaLearningNetwork` constructor arguments."""
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
    """DEN + RDAN architecture (spec 2.2-2.3) and the MLN adaptation, shared by the teacher and student stages.

    Attributes:
        n_feats, n_blocks, idr_dim, kernel_size, modulation, kernel, rdam_channels, rdam_input, rdam_kernel_size,
            da_reduction: RDAN's (see :class:`~blindsr.nets.mrda.RDAN`); ``modulation: da`` is Table V's S4,
            plus ``kernel: static`` S5.
        den_channels: the DEN's base width w (64).
        legacy_persistent_mln: reproduce the reference code's no-op MLN reset (spec 6.1): the adapted weights carry
            over to the next batch (module text).
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

    def rdan_kwargs(self, scale: Scale) -> dict[str, Any]:
        """Constructor arguments common to :class:`MRDATeacher` and :class:`MRDAStudent`."""
        return {
            "scale": scale,
            "n_feats": self.n_feats,
            "n_blocks": self.n_blocks,
            "idr_dim": self.idr_dim,
            "den_channels": self.den_channels,
            "kernel_size": self.kernel_size,
            "modulation": self.modulation,
            "kernel": self.kernel,
            "rdam_channels": self.rdam_channels,
            "rdam_input": self.rdam_input,
            "rdam_kernel_size": self.rdam_kernel_size,
            "da_reduction": self.da_reduction,
        }


@dataclass(frozen=True, slots=True)
class MRDATeacherOptions(SRNetOptions):
    """``method.options`` of ``mrda_teacher`` (stage 2, Alg. 2): see :class:`SRNetOptions`.

    Attributes:
        idr_source: "mln" (the paper's teacher MRDA_T2: DEN_T on the adapted MLN's D′) or "kernel" (Table V's
            MRDA_T3: DEN_T replaced by 5 FC layers on the batch's true blur kernel, ``nets.mrda.KernelEncoder``; no
            MLN is built, loaded or adapted, so the ``mln_*`` and inner-loop options are unused and the stage needs
            no ``init:`` entry). The kernel side k is the degradation preset's ``kernel_size``.
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
            iterations per epoch assumed in spec 4.5; 0 disables.
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


# ================================================================================================================
# Shared pieces
# ================================================================================================================


def _scale(scale: int) -> Scale:
    if scale not in (2, 3, 4):
        raise ValueError(f"MRDA supports scales 2, 3 and 4, got {scale}")
    return cast(Scale, scale)


def _l1(sr: Tensor, hr: Tensor) -> Tensor:
    return (sr.float() - hr.float()).abs().mean()


def _plain(net: nn.Module, *, why: str) -> nn.Module:
    """`net` itself; a DDP wrapper is refused (functional calls bypass its gradient hooks)."""
    if isinstance(net, nn.parallel.DistributedDataParallel):
        raise RuntimeError(f"{why} cannot run under DDP (one process per stage: drop torchrun for it)")
    return net


def _single_process(what: str) -> None:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise RuntimeError(f"{what} cannot run on several processes (each rank would drift its own MLN copy)")


def _on_device(module: nn.Module, device: torch.device) -> None:
    """Move a frozen member to the batch's device (the loop moves only ``networks``)."""
    first = next(module.parameters(), None)
    if first is not None and first.device != device:
        module.to(device)


def _synthesize(spec: DegradationSpec, hr: Tensor, scale: int, generator: torch.Generator) -> Tensor:
    deg = sample_degradation(spec, hr.shape[0], generator)
    return degrade(hr, deg, scale=scale, generator=generator).lr


def _synthesize_with_kernels(
    spec: DegradationSpec, hr: Tensor, scale: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """As :func:`_synthesize` (the same draws), and the batch's true blur kernels (B, k, k) on `hr`'s device."""
    deg = sample_degradation(spec, hr.shape[0], generator)
    lr = degrade(hr, deg, scale=scale, generator=generator).lr
    return lr, deg.kernels.to(device=lr.device, dtype=lr.dtype)


def adapt_mln_features(
    mln: MetaLearningNetwork, lr: Tensor, hr: Tensor, options: AdaptationOptions, *, persist: bool = False
) -> tuple[Tensor, dict[str, float | Tensor]]:
    """Alg. 2 l. 4-10: adapt the MLN to one (LR, HR) batch from its current weights and return D′ (detached).

    Adaptation is functional (:func:`~blindsr.methods.meta.inner_adapt`, ``order="none"``): the MLN's own weights
    are the start of every call, so calling this once per batch *is* the per-batch reset to theta_M.

    Args:
        mln: the frozen MLN (meta-weights).
        lr: (B, 3, h, w) the batch's LR images.
        hr: (B, 3, s·h, s·w) their HR images (the teacher is an oracle).
        options: inner steps, step sizes, which parameters adapt, whether to log.
        persist: write the adapted weights back into `mln` (the reference code's drifting MLN, spec 6.1).

    Returns:
        ``(features, logs)``: D′ (B, C′, h, w) without gradient, and ``adapt_l1_pre`` / ``adapt_l1_post`` (the MLN's
        L1 before and after adaptation) when ``options.log_adaptation``.
    """
    record: dict[str, Tensor] = {}

    def inner_loss(out: Any) -> Tensor:
        loss = _l1(out.sr, hr)
        record.setdefault("pre", loss.detach())
        return loss

    adapted = inner_adapt(
        mln,
        meta_parameters(mln, detach=True),
        inner_loss,
        (lr,),
        steps=options.inner_steps,
        lr=options.step_sizes(),
        adapt=options.adapts,
        order="none",
    )
    logs: dict[str, float | Tensor] = {}
    with torch.no_grad():
        if options.log_adaptation:
            out = functional_call(mln, adapted, (lr,))
            features = out.features
            logs = {"adapt_l1_pre": record["pre"], "adapt_l1_post": _l1(out.sr, hr)}
        else:
            features = mln.degradation_features(lr, params=adapted)
        if persist:
            for name, p in mln.named_parameters():
                p.copy_(adapted[name])
    return features.detach(), logs


class _LoadWatch:
    """Remembers which frozen members were filled by ``load_state_dict`` (an ``init:`` entry or a test)."""

    def __init__(self) -> None:
        self.loaded: set[str] = set()

    def watch(self, name: str, module: nn.Module) -> None:
        def hook(_module: nn.Module, _incompatible: Any) -> None:
            self.loaded.add(name)

        module.register_load_state_dict_post_hook(hook)

    def require(self, name: str, from_stage: str) -> None:
        if name not in self.loaded:
            raise RuntimeError(
                f"the frozen member {name!r} was never loaded: add "
                f"`init: [{{network: {name}, from_stage: <{from_stage} stage>, freeze: true}}]` to the config"
            )


def _mln_inference(nets: Mapping[str, nn.Module], scale: int) -> UpscaleFn:
    net = nets["mln"]

    def upscale(lr: Tensor, s: int) -> Tensor:
        if s != scale:
            raise ValueError(f"this MLN upscales x{scale}, asked for x{s}")
        out: Tensor = net(lr).sr
        return out

    return upscale


# ================================================================================================================
# Stage 1a: bicubic pretraining of the MLN
# ================================================================================================================


class MRDAPretrainMethod:
    """Stage 1a (Alg. 1 l. 2, spec 4.1): L1 training of the whole MLN on the configured degradation (``bicubic``).

    Networks: ``{"mln": MetaLearningNetwork}``. Validation upscales with the MLN as it is.
    """

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: MRDAPretrainOptions) -> None:
        self.scale = _scale(scale)
        self.degradation = degradation
        self.options = options
        self.networks = nn.ModuleDict({"mln": MetaLearningNetwork(**options.mln_kwargs(self.scale))})

    def training_step(
        self, hr: Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """L1(MLN(LR), HR) with LR synthesised from `hr` by the stage's degradation preset."""
        lr = _synthesize(self.degradation, hr, self.scale, generator)
        loss = _l1(nets["mln"](lr).sr, hr)
        return StepOutput(loss=loss, logs={"l1": loss.detach()})

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        """The MLN as a plain SR network (LR only)."""
        return _mln_inference(nets, self.scale)

    def release(self) -> Release:
        """What ``blindsr export`` writes: the MLN (``mrda_mln``)."""
        return {"mln": ("mrda_mln", self.options.mln_kwargs(self.scale))}

    def describe(self) -> dict[str, Any]:
        """Options, for logs."""
        return {"stage": "pretrain", "options": asdict(self.options)}


# ================================================================================================================
# Stage 1b: MAML of the MLN (Alg. 1)
# ================================================================================================================


class MetaTask(NamedTuple):
    """One MAML task of a meta-step: a support (inner) and a query (outer) set sharing one degradation.

    Attributes:
        support_lr, support_hr: the inner set (Alg. 1 I_tr), LR (k, 3, h, w) and HR.
        query_lr, query_hr: the outer set (Alg. 1 I_te).
        degradation: the task's sampled parameters (one draw for the task with the per-batch MRDA presets).
    """

    support_lr: Tensor
    support_hr: Tensor
    query_lr: Tensor
    query_hr: Tensor
    degradation: DegradationParams


class MRDAMetaMethod:
    """Stage 1b (Alg. 1, spec 4.2): MAML of the MLN; the loop's optimiser (Adam, lr beta) applies the meta-update.

    Networks: ``{"mln": MetaLearningNetwork}``, initialised from the pretrain stage by an ``init:`` entry. With
    ``adapt_upscaler: false`` (default) the Upscaler's parameters are frozen at construction (no gradient, not in
    the optimiser). Validation upscales with the un-adapted meta-init.
    """

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: MRDAMetaOptions) -> None:
        self.scale = _scale(scale)
        self.degradation = degradation
        self.options = options
        mln = MetaLearningNetwork(**options.mln_kwargs(self.scale))
        if not options.adapt_upscaler:
            mln.upscaler.requires_grad_(False)
        self.networks = nn.ModuleDict({"mln": mln})

    def sample_tasks(self, hr: Tensor, generator: torch.Generator) -> list[MetaTask]:
        """Alg. 1 l. 4, 7: split the HR batch into tasks and degrade each task with its own draw.

        Raises:
            ValueError: a batch that the task split cannot divide.
        """
        o, B = self.options, hr.shape[0]
        tasks = []
        if o.task_split == "disjoint":
            if B % (2 * o.tasks):
                raise ValueError(
                    f"task_split 'disjoint' needs data.batch_size to be a multiple of 2 x tasks = {2 * o.tasks}, "
                    f"got {B}"
                )
            k = B // (2 * o.tasks)
            for i in range(o.tasks):
                chunk = hr[2 * i * k : 2 * (i + 1) * k]
                deg = sample_degradation(self.degradation, 2 * k, generator)
                lr = degrade(chunk, deg, scale=self.scale, generator=generator).lr
                tasks.append(MetaTask(lr[:k], chunk[:k], lr[k:], chunk[k:], deg))
        else:
            if B % 2:
                raise ValueError(f"task_split 'shared' needs an even data.batch_size, got {B}")
            k = B // 2
            for _ in range(o.tasks):
                deg = sample_degradation(self.degradation, B, generator)
                lr = degrade(hr, deg, scale=self.scale, generator=generator).lr
                tasks.append(MetaTask(lr[:k], hr[:k], lr[k:], hr[k:], deg))
        return tasks

    def training_step(
        self, hr: Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """One meta-step: per task, n inner SGD steps on the support L1, then the query L1 at the adapted weights.

        Returns the mean (or sum) of the query losses; its gradient reaches the meta-weights (first-order: through
        the identity theta_i = theta_M - alpha g, g a constant; second-order: through g as well).
        """
        o = self.options
        mln = _plain(nets["mln"], why="the MAML stage")
        theta = meta_parameters(mln)
        outer, pre, post = [], [], []
        for task in self.sample_tasks(hr, generator):
            record: dict[str, Tensor] = {}

            def inner_loss(out: Any, target: Tensor = task.support_hr, rec: dict[str, Tensor] = record) -> Tensor:
                loss = _l1(out.sr, target)
                rec.setdefault("pre", loss.detach())
                return loss

            adapted = inner_adapt(
                mln,
                theta,
                inner_loss,
                (task.support_lr,),
                steps=o.inner_steps,
                lr=o.step_sizes(),
                adapt=o.adapts,
                order=o.order,
            )
            outer.append(_l1(functional_call(mln, adapted, (task.query_lr,)).sr, task.query_hr))
            pre.append(record["pre"])
            if o.log_adaptation:
                with torch.no_grad():
                    post.append(_l1(functional_call(mln, adapted, (task.support_lr,)).sr, task.support_hr))
        stacked = torch.stack(outer)
        loss = stacked.mean() if o.outer_reduction == "mean" else stacked.sum()
        logs: dict[str, float | Tensor] = {"query_l1": stacked.detach().mean(), "inner_l1_pre": torch.stack(pre).mean()}
        if post:
            logs["inner_l1_post"] = torch.stack(post).mean()
        return StepOutput(loss=loss, logs=logs)

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        """The un-adapted meta-init as a plain SR network (monitoring only; the reference's oracle is not used)."""
        return _mln_inference(nets, self.scale)

    def release(self) -> Release:
        """What ``blindsr export`` writes: the meta-learned MLN (``mrda_mln``)."""
        return {"mln": ("mrda_mln", self.options.mln_kwargs(self.scale))}

    def describe(self) -> dict[str, Any]:
        """Options, for logs."""
        return {"stage": "meta", "options": asdict(self.options)}


# ================================================================================================================
# Stage 2: the teacher MRDA_T (Alg. 2)
# ================================================================================================================


class _AdaptingStage:
    """What the teacher and student stages share: the frozen meta-learned MLN and its per-batch adaptation."""

    scale: Scale
    networks: nn.ModuleDict
    _mln: MetaLearningNetwork | None = None  # None: a stage without MLN (MRDA_T3)
    _watch: _LoadWatch
    _adaptation: SRNetOptions

    def _setup_mln(self, options: SRNetOptions) -> None:
        self._adaptation = options
        self._watch = _LoadWatch()
        mln = MetaLearningNetwork(**options.mln_kwargs(self.scale)).requires_grad_(False)
        self._mln = mln
        self._watch.watch("mln", mln)
        if options.legacy_persistent_mln:
            self.networks["mln"] = mln  # checkpointed with the run: its drift resumes exactly

    @property
    def mln(self) -> MetaLearningNetwork:
        """The frozen MLN (meta-weights; drifting with ``legacy_persistent_mln``), filled by an ``init:`` entry.

        Raises:
            AttributeError: the stage has no MLN (``idr_source: kernel``), so an ``init:`` entry for it is refused.
        """
        if self._mln is None:
            raise AttributeError("this stage has no MLN (idr_source: kernel, MRDA_T3)")
        return self._mln

    def teacher_features(self, lr: Tensor, hr: Tensor) -> tuple[Tensor, dict[str, float | Tensor]]:
        """D′_T of the batch: a fresh adaptation of the MLN to (lr, hr) (Alg. 2 l. 4-10), detached."""
        mln = self.mln
        self._watch.require("mln", "meta")
        legacy = self._adaptation.legacy_persistent_mln
        if legacy:
            _single_process("legacy_persistent_mln")
        _on_device(mln, lr.device)
        return adapt_mln_features(mln, lr, hr, self._adaptation, persist=legacy)


def teacher_oracle(
    teacher: MRDATeacher, mln: MetaLearningNetwork | None, options: AdaptationOptions | None = None
) -> OracleUpscaleFn:
    """MRDA_T as the oracle it is, for evaluation: ``upscale(lr, scale, hr, kernel) -> sr``.

    The paper's teacher: every call adapts `mln` afresh on its own (lr, hr) pair, functionally from the MLN's own
    (meta) weights and never in place (:func:`adapt_mln_features`), then runs DEN_T + RDAN_T on the adapted D′; so the
    result for an image does not depend on the images before it. MRDA_T3 (``idr_source="kernel"``): the true kernel
    goes to its KernelEncoder, and `mln`, `options` and `hr` are not used.

    Tensors made under ``torch.inference_mode`` are copied first (the adaptation needs autograd); the teacher itself
    runs without gradients.

    Args:
        teacher: MRDA_T, in eval mode.
        mln: the frozen meta-learned MLN of the teacher's training (None for MRDA_T3).
        options: the adaptation: inner steps, step sizes, adapted parameters (the teacher stage's options); None:
            the paper's 5 steps of 1e-2 with the Upscaler fixed.

    Returns:
        ``upscale(lr (B, 3, h, w), scale, hr (B, 3, s·h, s·w), kernel (B, k, k)) -> sr (B, 3, s·h, s·w)``.

    Raises:
        ValueError: the paper's teacher without an MLN, or an MLN whose width is not DEN_T's input.
    """
    if teacher.kernel_encoder is None:
        if mln is None:
            raise ValueError("the MRDA teacher (idr_source 'mln') needs its meta-learned MLN")
        assert teacher.den is not None
        if mln.n_feats != teacher.den.in_channels or mln.scale != teacher.scale:
            raise ValueError(
                f"the MLN (x{mln.scale}, {mln.n_feats} channels) does not fit the teacher (x{teacher.scale}, DEN_T "
                f"reads {teacher.den.in_channels} channels)"
            )
    adaptation = replace(options or AdaptationOptions(), log_adaptation=False)

    def upscale(lr: Tensor, scale: int, hr: Tensor, kernel: Tensor) -> Tensor:
        if scale != teacher.scale:
            raise ValueError(f"this MRDA teacher upscales x{teacher.scale}, asked for x{scale}")
        with torch.inference_mode(False):
            lr, hr, kernel = (t.clone() if t.is_inference() else t for t in (lr, hr, kernel))
            if teacher.kernel_encoder is not None:
                with torch.no_grad():
                    out: Tensor = teacher(lr, kernel).sr
                return out
            assert mln is not None
            _on_device(mln, lr.device)
            features, _ = adapt_mln_features(mln, lr, hr, adaptation)
            with torch.no_grad():
                out = teacher(lr, features).sr
            return out

    return upscale


class MRDATeacherMethod(_AdaptingStage):
    """Stage 2 (Alg. 2, spec 4.3): DEN_T + RDAN_T trained with L1, guided by the per-batch adapted MLN.

    Networks: ``{"teacher": MRDATeacher}`` (plus the frozen ``"mln"`` with ``legacy_persistent_mln``). Member:
    :attr:`mln`, loaded by ``init: [{network: mln, from_stage: <meta stage>, freeze: true}]``.

    With ``idr_source: kernel`` (Table V, MRDA_T3) the teacher's IDR comes from the batch's true blur kernels through
    5 FC layers instead of DEN_T: no MLN member, no adaptation, no ``init:`` entry.
    """

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: MRDATeacherOptions) -> None:
        self.scale = _scale(scale)
        self.degradation = degradation
        self.options = options
        self.networks = nn.ModuleDict({"teacher": MRDATeacher(**self._teacher_kwargs())})
        if options.idr_source == "mln":
            self._setup_mln(options)

    def _teacher_kwargs(self) -> dict[str, Any]:
        kwargs = {**self.options.rdan_kwargs(self.scale), "mln_channels": self.options.mln_feats}
        if self.options.idr_source == "kernel":  # only then: released MRDA_T2 files keep their arch_kwargs
            kwargs.update(idr_source="kernel", blur_kernel_size=self.degradation.kernel_size)
        return kwargs

    def training_step(
        self, hr: Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """One degradation for the batch, fresh MLN adaptation, D′_T → teacher → L1 (Alg. 2 l. 3-11).

        MRDA_T3: the batch's true kernels → teacher → L1 (the same degradation draws, no MLN).
        """
        if self.options.idr_source == "kernel":
            lr, kernels = _synthesize_with_kernels(self.degradation, hr, self.scale, generator)
            loss = _l1(nets["teacher"](lr, kernels).sr, hr)
            return StepOutput(loss=loss, logs={"l1": loss.detach()})
        lr = _synthesize(self.degradation, hr, self.scale, generator)
        features, logs = self.teacher_features(lr, hr)
        out = nets["teacher"](lr, features)
        loss = _l1(out.sr, hr)
        return StepOutput(loss=loss, logs={"l1": loss.detach(), **logs})

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        """An upscale function that raises: the teacher needs the HR image (oracle); validate the student."""
        needs = "the true blur kernel" if self.options.idr_source == "kernel" else "HR"

        def upscale(lr: Tensor, scale: int) -> Tensor:
            raise NotImplementedError(
                f"the MRDA teacher needs {needs} (oracle); validate the student stage (set validation.every: 0 here); "
                "`blindsr eval --teacher-run RUN_DIR` evaluates it as an oracle"
            )

        return upscale

    def oracle(self, nets: Mapping[str, nn.Module], *, options: AdaptationOptions | None = None) -> OracleUpscaleFn:
        """The teacher as an oracle for evaluation: :func:`teacher_oracle` with this stage's MLN.

        Args:
            nets: the networks (``{"teacher": ...}``).
            options: the adaptation (default: this stage's options, as in training); unused by MRDA_T3.
        """
        teacher = _plain(nets["teacher"], why="oracle evaluation")
        assert isinstance(teacher, MRDATeacher)
        if self.options.idr_source == "kernel":
            return teacher_oracle(teacher, None)
        self._watch.require("mln", "meta")
        return teacher_oracle(teacher, self.mln, options or self.options)

    def release(self) -> Release:
        """What ``blindsr export`` writes: MRDA_T (``mrda_t``; the MLN is not part of it)."""
        return {"teacher": ("mrda_t", self._teacher_kwargs())}

    def describe(self) -> dict[str, Any]:
        """Options, for logs."""
        return {"stage": "teacher", "options": asdict(self.options)}


# ================================================================================================================
# Stage 3: the student MRDA_S (Sec. III-D, Eq. 4-6)
# ================================================================================================================


class MRDAStudentMethod(_AdaptingStage):
    """Stage 3 (spec 4.4): DEN_S + RDAN_S, with L_rec + lambda_kl L_kl + lambda_abs L_abs against the teacher's IDR.

    Networks: ``{"student": MRDAStudent}`` (plus the frozen ``"mln"`` with ``legacy_persistent_mln``). With KD on,
    the frozen members :attr:`mln` (from the meta stage) and :attr:`teacher_den` (DEN_T, from the teacher stage,
    ``source_network: teacher.den``) must be loaded by ``init:`` entries; RDAN_S comes from the teacher by
    ``{network: student, from_stage: <teacher>, source_network: teacher, exclude: ["den."]}`` (strict for every
    ``rdan.*`` key; DEN_S keeps its fresh initialisation). Table V's S6 (no KD) needs none of them.
    """

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: MRDAStudentOptions) -> None:
        self.scale = _scale(scale)
        self.degradation = degradation
        self.options = options
        self.networks = nn.ModuleDict({"student": MRDAStudent(**options.rdan_kwargs(self.scale))})
        self._setup_mln(options)
        self.teacher_den = DegradationExtractionNetwork(
            in_channels=options.mln_feats,
            channels=options.teacher_den_channels or options.den_channels,
            idr_dim=options.idr_dim,
        ).requires_grad_(False)
        self._watch.watch("teacher_den", self.teacher_den)

    def teacher_idr(self, lr: Tensor, hr: Tensor) -> tuple[Tensor, dict[str, float | Tensor]]:
        """D_T = DEN_T(D′_T) for the batch, without gradient."""
        self._watch.require("teacher_den", "teacher")
        features, logs = self.teacher_features(lr, hr)
        _on_device(self.teacher_den, lr.device)
        with torch.no_grad():
            idr: Tensor = self.teacher_den(features)
        return idr, logs

    def in_warmup(self, step: int) -> bool:
        """Whether optimiser step `step` (0-based) is in the KD-only warm-up."""
        return step < self.options.kd_warmup_steps

    def training_step(
        self, hr: Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """Eq. 6 (after the warm-up) or the KD terms alone on DEN_S (during it)."""
        o = self.options
        lr = _synthesize(self.degradation, hr, self.scale, generator)
        logs: dict[str, float | Tensor] = {}
        teacher: Tensor | None = None
        if o.distills:
            teacher, logs = self.teacher_idr(lr, hr)
        if self.in_warmup(step):
            student = _plain(nets["student"], why="the KD-only warm-up (kd_warmup_steps > 0)")
            assert isinstance(student, MRDAStudent)
            idr = student.den(lr)  # RDAN_S is not run: it gets no gradient (grad stays None)
            loss = torch.zeros((), device=hr.device)
        else:
            out = nets["student"](lr)
            idr = out.idr
            loss = _l1(out.sr, hr)
            logs["l1"] = loss.detach()
        if teacher is not None:
            l_kl, l_abs = idr_distillation_loss(idr, teacher, kind=o.kd_kind, temperature=o.kd_temperature)
            loss = loss + o.lambda_kl * l_kl + o.lambda_abs * l_abs
            logs.update(kd_kl=l_kl.detach(), kd_abs=l_abs.detach())
        return StepOutput(loss=loss, logs=logs)

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        """The student alone: blind SR from the LR image."""
        net = nets["student"]

        def upscale(lr: Tensor, scale: int) -> Tensor:
            if scale != self.scale:
                raise ValueError(f"this MRDA student upscales x{self.scale}, asked for x{scale}")
            out: Tensor = net(lr).sr
            return out

        return upscale

    def release(self) -> Release:
        """What ``blindsr export`` writes: MRDA_S (``mrda_s``), the deployed model."""
        return {"student": ("mrda_s", self.options.rdan_kwargs(self.scale))}

    def describe(self) -> dict[str, Any]:
        """Options, for logs."""
        return {"stage": "student", "options": asdict(self.options)}
