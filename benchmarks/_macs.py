"""Multiply-accumulates (MACs) of one forward pass, counted with forward hooks on a meta-device copy (no compute).

What is counted, per forward of a (N, C, H, W) input:

* ``nn.Conv2d``: ``out.numel() · (in_channels / groups) · kh · kw`` (the bias add is not counted);
* ``nn.Linear``: ``out.numel() · in_features``;
* DMSR's per-pixel dynamic filter (inside each ``MetaDeblur``, a function call no hook sees): ``k² · C · H · W``
  on its (N, C, H, W) output, with ``k² = meta.out_channels`` (one k×k filter per pixel, shared by the C channels).

Not counted: element-wise work (activations, residual adds, the channel-attention scaling, softmax, padding and
pixel shuffles) and pooling. For convolutional SR networks these are a few percent of the total; the count is what
the matmul-bound kernels have to do, the number to compare with a measured matmul ceiling.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from blindsr.nets.dmsr import MetaDeblur

__all__ = ["MacCount", "count_macs"]


@dataclass(frozen=True)
class MacCount:
    """MACs of one forward.

    Attributes:
        total: all counted MACs.
        by_kind: ``{"conv": ..., "linear": ..., "dynamic_filter": ...}``.
        shape: the input shape the count is for.
    """

    total: int
    by_kind: dict[str, int] = field(default_factory=dict)
    shape: tuple[int, ...] = ()

    @property
    def gmac(self) -> float:
        """``total / 1e9``."""
        return self.total / 1e9


def _first_tensor(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    for item in value:
        if isinstance(item, Tensor):
            return item
    raise TypeError(f"no tensor in {type(value).__name__}")


def count_macs(model: nn.Module, shape: tuple[int, ...]) -> MacCount:
    """Count the MACs of ``model(torch.empty(shape))`` without computing anything.

    The model is deep-copied to the meta device (shapes only; the original is untouched) and run once with hooks.

    Args:
        model: the network (any device and dtype).
        shape: the input shape, e.g. (1, 3, 180, 320).

    Returns:
        The count, split by kind.
    """
    meta_model = copy.deepcopy(model).to("meta").eval()
    counts = {"conv": 0, "linear": 0, "dynamic_filter": 0}

    def conv_hook(module: nn.Module, args: Any, output: Any) -> None:
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        counts["conv"] += _first_tensor(output).numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Module, args: Any, output: Any) -> None:
        assert isinstance(module, nn.Linear)
        counts["linear"] += _first_tensor(output).numel() * module.in_features

    def dynamic_hook(module: nn.Module, args: Any, output: Any) -> None:
        assert isinstance(module, MetaDeblur)
        counts["dynamic_filter"] += _first_tensor(output).numel() * module.meta.out_channels

    handles = []
    for m in meta_model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, MetaDeblur):
            handles.append(m.register_forward_hook(dynamic_hook))
    try:
        with torch.no_grad():
            meta_model(torch.empty(*shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return MacCount(total=sum(counts.values()), by_kind=dict(counts), shape=tuple(shape))
