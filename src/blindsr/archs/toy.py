"""The toy network as an architecture (``toy_sr``): a tiny residual CNN for tests and the toy method.

Its output at a pixel depends only on the input window, so it runs tiled with the default plain adapter. It does not
export to ONNX: its MATLAB-bicubic skip computes its resize weights from the input size, which the TorchScript
exporter freezes at the traced size (the parity check on other sizes fails) and torch.export does not trace.
"""

from __future__ import annotations

from typing import Final

from blindsr.archs.base import Architecture
from blindsr.nets.toy import ToySR

__all__ = ["TOY_SR"]

TOY_SR: Final = Architecture(
    id="toy_sr",
    constructor=ToySR,
    summary="ToySR: a small residual CNN with a bicubic skip (tests and the toy method; no paper)",
    tiny_kwargs={"scale": 2, "n_feats": 4, "n_blocks": 1},
)
"""``toy_sr``: ``ToySR(**arch_kwargs)``."""
