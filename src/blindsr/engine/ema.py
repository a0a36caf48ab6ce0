"""Exponential moving average of network weights (BasicSR's ``params_ema``)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps ``ema = d * ema + (1 - d) * weights`` for every parameter; buffers are copied.

    With `warmup`, the decay at optimiser step t is ``d = min(decay, (1 + t) / (10 + t))``, so the average follows
    the weights closely at the start instead of keeping (decay)^t of the random initialisation (0.999^900 = 41 %):
    without it, validating EMA weights early in a short run reports nonsense. The decay is a function of the step,
    so there is no extra state to checkpoint.

    Args:
        networks: the trained networks (unwrapped, not DDP).
        decay: in [0, 1); typical 0.999.
        warmup: ramp the decay up with the step (default on).
    """

    def __init__(self, networks: nn.ModuleDict, *, decay: float, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.networks: nn.ModuleDict = copy.deepcopy(networks).requires_grad_(False).eval()

    def decay_at(self, step: int) -> float:
        """The decay used for the update after optimiser step `step` (0-based)."""
        return min(self.decay, (1.0 + step) / (10.0 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, networks: nn.ModuleDict, *, step: int) -> None:
        """One EMA step towards the current weights of `networks`, after optimiser step `step`."""
        weight = 1.0 - self.decay_at(step)
        ema_params = dict(self.networks.named_parameters())
        for name, p in networks.named_parameters():
            ema_params[name].lerp_(p.detach().to(ema_params[name].dtype), weight)
        ema_buffers = dict(self.networks.named_buffers())
        for name, b in networks.named_buffers():
            ema_buffers[name].copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.networks.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.networks.load_state_dict(state, strict=True)
