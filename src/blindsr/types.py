"""Types shared across layers: the `Method` protocol the training loop drives, and what a step returns.

The protocol lives here (outside ``methods/``) so that the engine knows *a* method without importing any method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["Method", "Release", "Scale", "StepOutput", "UpscaleFn"]

Scale = Literal[2, 3, 4]
UpscaleFn = Callable[[torch.Tensor, int], torch.Tensor]

Release = dict[str, tuple[str, dict[str, Any]]]
"""What :meth:`Method.release` returns: network name (a key of ``Method.networks``) → (``blindsr.archs`` id,
``arch_kwargs``), the latter as a release file stores them: a flat JSON object that rebuilds the network
(``blindsr.archs.constructor_kwargs`` turns it into the constructor's arguments)."""


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What a training step returns.

    Attributes:
        loss: the scalar to minimise (already weighted and summed).
        logs: named scalars to log (loss terms, statistics); converted with ``float()`` by the loop.
    """

    loss: torch.Tensor
    logs: Mapping[str, float | torch.Tensor] = field(default_factory=dict)


@runtime_checkable
class Method(Protocol):
    """A training method, driven by :func:`blindsr.engine.loop.fit`.

    The loop owns devices, precision, optimisers, schedulers, EMA, DDP, checkpoints, logging and validation. A
    method owns its networks and its losses. It never holds DDP wrappers or EMA copies: the loop passes the
    networks to use on each call (``nets``), keyed like :attr:`networks`.

    Attributes:
        networks: every trainable network, saved in checkpoints and loaded strictly. Frozen members (a teacher,
            a fixed extractor) are plain attributes, not in this dict.
    """

    networks: nn.ModuleDict

    def training_step(
        self, hr: torch.Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """One loss evaluation on a batch of HR patches (B, 3, P, P) on the training device.

        Args:
            hr: HR patches; the method synthesises its LR on the fly.
            step: the optimiser step (0-based).
            generator: the only source of randomness for this step, from the run's training batches (seeded from
                (seed, step, micro-batch, rank); see `blindsr.engine.loop.BatchSource`).
            nets: the networks to call (DDP-wrapped when distributed), keyed like :attr:`networks`.
        """
        ...

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        """An ``upscale(lr (1, 3, h, w), scale) -> sr`` function for validation, using `nets` (possibly EMA)."""
        ...

    def release(self) -> Release:
        """The networks ``blindsr export`` can write as release files, and how each is rebuilt (:data:`Release`)."""
        ...
