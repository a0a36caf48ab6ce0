"""Network architectures: a literal registry from architecture id to constructor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from torch import nn

from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.toy import ToySR

ARCHS: Final[Mapping[str, Callable[..., nn.Module]]] = {"toy_sr": ToySR, "dmsr": DMSRNet}

__all__ = ["ARCHS", "DMSRNet", "ToySR"]
