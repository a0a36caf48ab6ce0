"""Exponential moving average of network weights (BasicSR's ``params_ema``)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps ``ema = decay * ema + (1 - decay) * weights`` for every parameter; buffers are copied.

    Args:
        networks: the trained networks (unwrapped, not DDP).
        decay: in [0, 1); typical 0.999.
    """

    def __init__(self, networks: nn.ModuleDict, *, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.networks: nn.ModuleDict = copy.deepcopy(networks).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, networks: nn.ModuleDict) -> None:
        """One EMA step towards the current weights of `networks`."""
        ema_params = dict(self.networks.named_parameters())
        for name, p in networks.named_parameters():
            ema_params[name].lerp_(p.detach().to(ema_params[name].dtype), 1.0 - self.decay)
        ema_buffers = dict(self.networks.named_buffers())
        for name, b in networks.named_buffers():
            ema_buffers[name].copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.networks.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.networks.load_state_dict(state, strict=True)
