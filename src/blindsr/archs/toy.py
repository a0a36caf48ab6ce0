"""The toy network as an architecture (``toy_sr``): a tiny residual CNN for tests and the toy method.

Its output at a pixel depends only on the input window, so it runs tiled with the default plain adapter. Its
MATLAB-bicubic skip computes its resize matrices from the input size, which the TorchScript exporter freezes at the
traced size (the parity check on other sizes fails); the ONNX export therefore switches the copy it traces to the
size-independent form of the same skip (:func:`use_traceable_skip`).
"""

from __future__ import annotations

from typing import Final

from torch import nn

from blindsr.archs.base import Architecture
from blindsr.nets.toy import ToySR

__all__ = ["TOY_SR", "use_traceable_skip"]


def use_traceable_skip(module: nn.Module) -> None:
    """Make every :class:`~blindsr.nets.toy.ToySR` in `module` compute its bicubic skip with
    ``blindsr.ops.resize_traceable.bicubic_upscale_traceable`` (phase filters on shifted slices, any input size)."""
    for net in module.modules():
        if isinstance(net, ToySR):
            net.traceable_skip = True


TOY_SR: Final = Architecture(
    id="toy_sr",
    constructor=ToySR,
    summary="ToySR: a small residual CNN with a bicubic skip (tests and the toy method; no paper)",
    tiny_kwargs={"scale": 2, "n_feats": 4, "n_blocks": 1},
    prepare_export=use_traceable_skip,
    onnx=True,
)
"""``toy_sr``: ``ToySR(**arch_kwargs)``, exported with its size-independent bicubic skip."""
