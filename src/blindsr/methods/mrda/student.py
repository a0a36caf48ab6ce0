"""Stage 3, ``mrda_student`` (Sec. III-D, Eq. 4-6, docs/specs/mrda.md §4.4): DEN_S + RDAN_S with IDR distillation."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from blindsr.degradations import DegradationSpec
from blindsr.losses.distill import idr_distillation_loss
from blindsr.methods.mrda.adaptation import AdaptingStage
from blindsr.methods.mrda.options import MRDAStudentOptions
from blindsr.methods.mrda.shared import check_scale, l1, on_device, plain, synthesize
from blindsr.nets.mrda import DegradationExtractionNetwork, MRDAStudent
from blindsr.types import Release, StepOutput, UpscaleFn

__all__ = ["MRDAStudentMethod"]


class MRDAStudentMethod(AdaptingStage):
    """Stage 3 (docs/specs/mrda.md §4.4): DEN_S + RDAN_S, L_rec + lambda_kl L_kl + lambda_abs L_abs on the teacher IDR.

    Networks: ``{"student": MRDAStudent}`` (plus the frozen ``"mln"`` with ``legacy_persistent_mln``). With KD on,
    the frozen members :attr:`mln` (from the meta stage) and :attr:`teacher_den` (DEN_T, from the teacher stage,
    ``source_network: teacher.den``) must be loaded by ``init:`` entries; RDAN_S comes from the teacher by
    ``{network: student, from_stage: <teacher>, source_network: teacher, exclude: ["den."]}`` (strict for every
    ``rdan.*`` key; DEN_S keeps its fresh initialisation). Table V's S6 (no KD) needs none of them.
    """

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: MRDAStudentOptions) -> None:
        self.scale = check_scale(scale)
        self.degradation = degradation
        self.options = options
        student = MRDAStudent(scale=self.scale, rdan_options=options.rdan_options(), den_channels=options.den_channels)
        self.networks = nn.ModuleDict({"student": student})
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
        on_device(self.teacher_den, lr.device)
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
        lr = synthesize(self.degradation, hr, self.scale, generator)
        logs: dict[str, float | Tensor] = {}
        teacher: Tensor | None = None
        if o.distills:
            teacher, logs = self.teacher_idr(lr, hr)
        if self.in_warmup(step):
            student = plain(nets["student"], why="the KD-only warm-up (kd_warmup_steps > 0)")
            assert isinstance(student, MRDAStudent)
            idr = student.den(lr)  # RDAN_S is not run: it gets no gradient (grad stays None)
            loss = torch.zeros((), device=hr.device)
        else:
            out = nets["student"](lr)
            idr = out.idr
            loss = l1(out.sr, hr)
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
        return {"student": ("mrda_s", self.options.release_kwargs(self.scale))}
