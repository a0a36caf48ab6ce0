"""Small helpers every MRDA stage uses (internal to ``methods.mrda``): scale check, L1, LR synthesis, device moves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
from torch import Tensor, nn

from blindsr.degradations import DegradationSpec, degrade, sample_degradation
from blindsr.types import Scale, UpscaleFn

__all__ = [
    "check_scale",
    "l1",
    "mln_inference",
    "on_device",
    "plain",
    "single_process",
    "synthesize",
    "synthesize_with_blur_kernels",
]


def check_scale(scale: int) -> Scale:
    """`scale` as a :data:`~blindsr.types.Scale` (2, 3 or 4); anything else is refused."""
    if scale not in (2, 3, 4):
        raise ValueError(f"MRDA supports scales 2, 3 and 4, got {scale}")
    return cast(Scale, scale)


def l1(sr: Tensor, hr: Tensor) -> Tensor:
    """Mean absolute error in float32 (Eq. 2's L_rec, and the MLN's inner and outer losses)."""
    return (sr.float() - hr.float()).abs().mean()


def plain(net: nn.Module, *, why: str) -> nn.Module:
    """`net` itself; a DDP wrapper is refused (functional calls bypass its gradient hooks)."""
    if isinstance(net, nn.parallel.DistributedDataParallel):
        raise RuntimeError(f"{why} cannot run under DDP (one process per stage: drop torchrun for it)")
    return net


def single_process(what: str) -> None:
    """Refuse several processes (``legacy_persistent_mln``: each rank would drift its own MLN copy)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise RuntimeError(f"{what} cannot run on several processes (each rank would drift its own MLN copy)")


def on_device(module: nn.Module, device: torch.device) -> None:
    """Move a frozen member to the batch's device (the loop moves only ``networks``)."""
    first = next(module.parameters(), None)
    if first is not None and first.device != device:
        module.to(device)


def synthesize(spec: DegradationSpec, hr: Tensor, scale: int, generator: torch.Generator) -> Tensor:
    """The LR batch of `hr`: one degradation draw per sample of `spec`, applied."""
    deg = sample_degradation(spec, hr.shape[0], generator)
    return degrade(hr, deg, scale=scale, generator=generator).lr


def synthesize_with_blur_kernels(
    spec: DegradationSpec, hr: Tensor, scale: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """As :func:`synthesize` (the same draws), and the batch's true blur kernels (B, k, k) on `hr`'s device."""
    deg = sample_degradation(spec, hr.shape[0], generator)
    lr = degrade(hr, deg, scale=scale, generator=generator).lr
    return lr, deg.kernels.to(device=lr.device, dtype=lr.dtype)


def mln_inference(nets: Mapping[str, nn.Module], scale: int) -> UpscaleFn:
    """The MLN ``nets["mln"]`` as a plain SR network: ``upscale(lr, scale) -> sr`` (the pretrain and meta stages)."""
    net = nets["mln"]

    def upscale(lr: Tensor, s: int) -> Tensor:
        if s != scale:
            raise ValueError(f"this MLN upscales x{scale}, asked for x{s}")
        out: Tensor = net(lr).sr
        return out

    return upscale
