"""Network architectures: a literal registry from architecture id to constructor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from torch import nn

from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.mrda import MetaLearningNetwork, MRDAStudent, MRDATeacher
from blindsr.nets.toy import ToySR

ARCHS: Final[Mapping[str, Callable[..., nn.Module]]] = {
    "toy_sr": ToySR,
    "dmsr": DMSRNet,
    "mrda_s": MRDAStudent,  # the deployed MRDA model: lr -> MRDAOutput(sr, idr)
    "mrda_t": MRDATeacher,  # (lr, adapted-MLN features) -> MRDAOutput(sr, idr); training and oracle evaluation only
    "mrda_mln": MetaLearningNetwork,  # lr -> MLNOutput(sr, features)
}

__all__ = ["ARCHS", "DMSRNet", "MRDAStudent", "MRDATeacher", "MetaLearningNetwork", "ToySR"]
