"""Stage 2, ``mrda_teacher`` (Alg. 2, docs/specs/mrda.md §4.3): DEN_T + RDAN_T trained with L1, guided by the adapted
MLN; with ``idr_source: kernel`` Table V's MRDA_T3 (the true blur kernel through 5 FC layers instead of DEN_T and the
MLN)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from blindsr.degradations import DegradationSpec
from blindsr.methods.mrda.adaptation import AdaptingStage
from blindsr.methods.mrda.options import AdaptationOptions, MRDATeacherOptions
from blindsr.methods.mrda.oracle import OracleUpscaleFn, teacher_oracle
from blindsr.methods.mrda.shared import check_scale, l1, plain, synthesize, synthesize_with_blur_kernels
from blindsr.nets.mrda import MRDATeacher
from blindsr.types import Release, StepOutput, UpscaleFn

__all__ = ["MRDATeacherMethod"]


class MRDATeacherMethod(AdaptingStage):
    """Stage 2 (Alg. 2, docs/specs/mrda.md §4.3): DEN_T + RDAN_T trained with L1, guided by the per-batch adapted MLN.

    Networks: ``{"teacher": MRDATeacher}`` (plus the frozen ``"mln"`` with ``legacy_persistent_mln``). Member:
    :attr:`mln`, loaded by ``init: [{network: mln, from_stage: <meta stage>, freeze: true}]``.

    With ``idr_source: kernel`` (Table V, MRDA_T3) the teacher's IDR comes from the batch's true blur kernels through
    5 FC layers instead of DEN_T: no MLN member, no adaptation, no ``init:`` entry.
    """

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: MRDATeacherOptions) -> None:
        self.scale = check_scale(scale)
        self.degradation = degradation
        self.options = options
        self.networks = nn.ModuleDict({"teacher": MRDATeacher(**self._teacher_kwargs())})
        if options.idr_source == "mln":
            self._setup_mln(options)

    def _teacher_den_kwargs(self) -> dict[str, Any]:
        """MRDA_T's arguments besides scale and RDAN's: DEN_T's input width, and MRDA_T3's blur-kernel side."""
        o = self.options
        kwargs: dict[str, Any] = {"mln_channels": o.mln_feats}
        if o.idr_source == "kernel":  # only then: released MRDA_T2 files keep their arch_kwargs
            kwargs.update(idr_source="kernel", blur_kernel_size=self.degradation.kernel_size)
        return kwargs

    def _teacher_kwargs(self) -> dict[str, Any]:
        """The :class:`~blindsr.nets.mrda.MRDATeacher` constructor arguments."""
        o = self.options
        return {
            "scale": self.scale,
            "rdan_options": o.rdan_options(),
            "den_channels": o.den_channels,
            **self._teacher_den_kwargs(),
        }

    def training_step(
        self, hr: Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """One degradation for the batch, fresh MLN adaptation, D′_T → teacher → L1 (Alg. 2 l. 3-11).

        MRDA_T3: the batch's true blur kernels → teacher → L1 (the same degradation draws, no MLN).
        """
        if self.options.idr_source == "kernel":
            lr, blur_kernels = synthesize_with_blur_kernels(self.degradation, hr, self.scale, generator)
            loss = l1(nets["teacher"](lr, blur_kernels=blur_kernels).sr, hr)
            return StepOutput(loss=loss, logs={"l1": loss.detach()})
        lr = synthesize(self.degradation, hr, self.scale, generator)
        features, logs = self.teacher_features(lr, hr)
        out = nets["teacher"](lr, features)
        loss = l1(out.sr, hr)
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
        """The teacher as an oracle for evaluation: :func:`~blindsr.methods.mrda.oracle.teacher_oracle` with this
        stage's MLN.

        Args:
            nets: the networks (``{"teacher": ...}``).
            options: the adaptation (default: this stage's options, as in training); unused by MRDA_T3.
        """
        teacher = plain(nets["teacher"], why="oracle evaluation")
        assert isinstance(teacher, MRDATeacher)
        if self.options.idr_source == "kernel":
            return teacher_oracle(teacher, None)
        self._watch.require("mln", "meta")
        return teacher_oracle(teacher, self.mln, options or self.options)

    def release(self) -> Release:
        """What ``blindsr export`` writes: MRDA_T (``mrda_t``; the MLN is not part of it)."""
        return {"teacher": ("mrda_t", self.options.release_kwargs(self.scale, **self._teacher_den_kwargs()))}
