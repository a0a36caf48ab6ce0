"""Stage 1a, ``mrda_pretrain`` (Alg. 1 l. 2, docs/specs/mrda.md §4.1): bicubic pretraining of the MLN."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from blindsr.degradations import DegradationSpec
from blindsr.methods.mrda.options import MRDAPretrainOptions
from blindsr.methods.mrda.shared import check_scale, l1, mln_inference, synthesize
from blindsr.nets.mrda import MetaLearningNetwork
from blindsr.types import Release, StepOutput, UpscaleFn

__all__ = ["MRDAPretrainMethod"]


class MRDAPretrainMethod:
    """Stage 1a (Alg. 1 l. 2, docs/specs/mrda.md §4.1): the whole MLN trained with L1 on the degradation (``bicubic``).

    Networks: ``{"mln": MetaLearningNetwork}``. Validation upscales with the MLN as it is.
    """

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: MRDAPretrainOptions) -> None:
        self.scale = check_scale(scale)
        self.degradation = degradation
        self.options = options
        self.networks = nn.ModuleDict({"mln": MetaLearningNetwork(**options.mln_kwargs(self.scale))})

    def training_step(
        self, hr: Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """L1(MLN(LR), HR) with LR synthesised from `hr` by the stage's degradation preset."""
        lr = synthesize(self.degradation, hr, self.scale, generator)
        loss = l1(nets["mln"](lr).sr, hr)
        return StepOutput(loss=loss, logs={"l1": loss.detach()})

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        """The MLN as a plain SR network (LR only)."""
        return mln_inference(nets, self.scale)

    def release(self) -> Release:
        """What ``blindsr export`` writes: the MLN (``mrda_mln``)."""
        return {"mln": ("mrda_mln", self.options.mln_kwargs(self.scale))}
