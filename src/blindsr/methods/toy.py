"""The toy method: ToySR trained with L1 on LR synthesised on the fly by the degradation engine.

It exists to exercise the training engine end to end (CLI, logging, validation, resume, DDP) in seconds on a CPU,
and as the smallest example of the `Method` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from blindsr.degradations import DegradationSpec, degrade, sample_degradation
from blindsr.nets.toy import ToySR
from blindsr.types import Release, StepOutput, UpscaleFn

__all__ = ["ToyOptions", "ToySRMethod"]


@dataclass(frozen=True, slots=True)
class ToyOptions:
    """``method.options`` of the toy method."""

    n_feats: int = 32
    n_blocks: int = 4


class ToySRMethod:
    """L1 training of :class:`~blindsr.nets.toy.ToySR` on on-the-fly degradations."""

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: ToyOptions) -> None:
        self.scale = scale
        self.degradation = degradation
        self.networks = nn.ModuleDict({"sr": ToySR(scale=scale, n_feats=options.n_feats, n_blocks=options.n_blocks)})

    def training_step(
        self, hr: torch.Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        deg = sample_degradation(self.degradation, hr.shape[0], generator)
        lr = degrade(hr, deg, scale=self.scale, generator=generator).lr
        sr = nets["sr"](lr)
        loss = F.l1_loss(sr.float(), hr)
        return StepOutput(loss=loss, logs={"l1": loss.detach()})

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        net = nets["sr"]

        def upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
            if scale != self.scale:
                raise ValueError(f"this model upscales x{self.scale}, asked for x{scale}")
            return net(lr)

        return upscale

    def release(self) -> Release:
        """What ``blindsr export`` writes: network name → (``archs.ARCHITECTURES`` key, exact constructor kwargs)."""
        net = self.networks["sr"]
        assert isinstance(net, ToySR)
        return {"sr": ("toy_sr", {"scale": net.scale, "n_feats": net.head.out_channels, "n_blocks": len(net.body)})}
