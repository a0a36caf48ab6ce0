"""Optimisers and learning-rate schedules by iteration (optimiser step), built from the typed config."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from blindsr.config.schema import OptimizerConfig, SchedulerConfig

__all__ = ["build_optimizer", "build_scheduler", "lr_factor"]


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD over the trainable parameters."""
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError("the method has no trainable parameters")
    if cfg.name == "adam":
        return torch.optim.Adam(trainable, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(trainable, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(trainable, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: SchedulerConfig, total_steps: int, base_lr: float) -> float:
    """Multiplier of the base learning rate at optimiser step `step` (0-based).

    >>> cfg = SchedulerConfig(name="multistep", milestones=(2, 4), gamma=0.5)
    >>> [lr_factor(s, cfg, 6, 1.0) for s in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    warm = 1.0
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        warm = (step + 1) / cfg.warmup_steps
    if cfg.name == "constant":
        return warm
    if cfg.name == "multistep":
        return warm * cfg.gamma ** sum(step >= m for m in cfg.milestones)
    # cosine from base_lr to min_lr over the steps after warm-up
    span = max(1, total_steps - cfg.warmup_steps)
    t = min(1.0, max(0.0, (step - cfg.warmup_steps) / span))
    floor = cfg.min_lr / base_lr if base_lr > 0 else 0.0
    return warm * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepped once per optimiser step."""
    base = float(optimizer.param_groups[0]["lr"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, total_steps, base))
