"""The RDAM modulation maps of an MRDA network over an image (paper Fig. 10).

Every RDA conv computes ``M = sigmoid(Conv(F))`` (Eq. 9; ``RDAConv.modulation_map``) and uses it as ``F2 = M·F1 + F``
(Eq. 10). :func:`collect_rdam_maps` records M of every RDA conv during one ordinary forward pass, with forward hooks
on the convs that compute M (``RDAConv.rdam``): the hooks only read the conv's output, so the network's results are
exactly those without hooks, and the hooks are removed when the call returns (also on errors).

M has the LR image's size. With ``rdam_channels = C`` it has one map per channel; they are averaged here. The
paper shows one map per image; :class:`RDAMMaps` gives the mean over all RDA convs, the mean per RDA block (its two
convs), and every conv's map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from blindsr.nets.mrda import RDAN, MRDAStudent, MRDATeacher, RDAConv

__all__ = ["NoRDAMError", "RDAMMaps", "collect_rdam_maps", "rdam_convs", "rdam_network"]


class NoRDAMError(ValueError):
    """The network has no RDAM (built with ``modulation="none"`` or ``"da"``, or not an MRDA network)."""


def rdam_convs(rdan: RDAN, *, name: str = "the model") -> list[tuple[str, RDAConv]]:
    """The RDA convs with RDAM of `rdan`, in forward order: ``[("blocks.0.da_conv1", conv), ...]``.

    Raises:
        NoRDAMError: none has an RDAM (``modulation="none"`` or ``"da"``, Table V's S4/S5).
    """
    convs = []
    for i, block in enumerate(rdan.blocks):
        for attr in ("da_conv1", "da_conv2"):
            conv = getattr(block, attr)
            if isinstance(conv, RDAConv) and conv.rdam is not None:
                convs.append((f"blocks.{i}.{attr}", conv))
    if not convs:
        raise NoRDAMError(f"{name} has no RDAM modulation (built with modulation 'none' or 'da'): nothing to show")
    return convs


@dataclass(frozen=True, slots=True)
class RDAMMaps:
    """The modulation maps of one forward pass.

    Attributes:
        per_conv: (n_convs, B, h, w) M of every RDA conv (channel mean), in forward order, in (0, 1).
        names: the convs' module names (``blocks.0.da_conv1``, ...).
        sr: (B, 3, s·h, s·w) the network's SR output of the same pass.
    """

    per_conv: Tensor
    names: list[str]
    sr: Tensor

    @property
    def mean(self) -> Tensor:
        """(B, h, w) the mean over all RDA convs."""
        return self.per_conv.mean(dim=0)

    @property
    def per_block(self) -> Tensor:
        """(n_blocks, B, h, w) the mean of each RDA block's convs, in block order."""
        blocks: dict[str, list[Tensor]] = {}
        for name, m in zip(self.names, self.per_conv, strict=True):
            blocks.setdefault(name.rsplit(".", 1)[0], []).append(m)
        return torch.stack([torch.stack(ms).mean(dim=0) for ms in blocks.values()])


def rdam_network(model: nn.Module, *, arch: str = "", name: str = "the model") -> MRDAStudent:
    """`model` as an MRDA student with RDAM, or a one-line :class:`NoRDAMError` saying why not.

    Args:
        model: the loaded network.
        arch: its architecture id (``LoadedModel.arch``), for the message.
        name: how to call it in the message.
    """
    if isinstance(model, MRDATeacher):
        raise NoRDAMError(
            f"{name} is an MRDA teacher: it needs the MLN adapted on the HR image; use the student (mrda_s)"
        )
    if not isinstance(model, MRDAStudent):
        raise NoRDAMError(
            f"{name} ({arch or type(model).__name__}) is not an MRDA student: RDAM maps exist in MRDA students only"
        )
    rdam_convs(model.rdan, name=name)
    return model


def collect_rdam_maps(model: nn.Module, lr: Tensor, *, name: str = "the model") -> RDAMMaps:
    """Run an MRDA student on `lr` once and record every RDAM map (forward hooks; the output is unchanged).

    Args:
        model: an MRDA student (``MRDAStudent``); it runs under ``torch.no_grad``.
        lr: (B, 3, h, w) RGB in [0, 1].
        name: how to call the model in errors.

    Returns:
        :class:`RDAMMaps` with the maps and the SR output.

    Raises:
        NoRDAMError: not a student, or a network without RDAM.
    """
    student = rdam_network(model, name=name)
    convs = rdam_convs(student.rdan, name=name)
    maps: list[Tensor] = []
    handles = []

    def record(_module: nn.Module, _args: tuple[Tensor, ...], output: Tensor) -> None:
        maps.append(torch.sigmoid(output.detach()).mean(dim=1))

    try:
        for _, conv in convs:
            assert conv.rdam is not None
            handles.append(conv.rdam.register_forward_hook(record))
        with torch.no_grad():
            sr = student(lr).sr
    finally:
        for h in handles:
            h.remove()
    if len(maps) != len(convs):
        raise RuntimeError(f"recorded {len(maps)} RDAM maps for {len(convs)} RDA convs")
    return RDAMMaps(per_conv=torch.stack(maps), names=[n for n, _ in convs], sr=sr)
