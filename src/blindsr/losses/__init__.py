"""Losses shared by training methods (layer 1: torch only).

- :mod:`~blindsr.losses.pixel`: L1 and squared L2 losses with a per-entry or a per-sample reduction.
- :mod:`~blindsr.losses.dmsr`: DMSR's L_RE, L_DR and L_DC (Eq. 6-8).
- :mod:`~blindsr.losses.distill`: MRDA's IDR distillation loss (Eq. 4-6).
"""

from blindsr.losses.distill import KDLossKind, idr_distillation_loss
from blindsr.losses.dmsr import (
    ConsistencyLoss,
    ConsistencyTerms,
    DegradationLoss,
    degradation_consistency_loss,
    degradation_reconstruction_loss,
    reconstruction_loss,
)
from blindsr.losses.pixel import Norm, Reduction, l1_loss, pixel_loss, squared_l2_loss

__all__ = [
    "ConsistencyLoss",
    "ConsistencyTerms",
    "DegradationLoss",
    "KDLossKind",
    "Norm",
    "Reduction",
    "degradation_consistency_loss",
    "degradation_reconstruction_loss",
    "idr_distillation_loss",
    "l1_loss",
    "pixel_loss",
    "reconstruction_loss",
    "squared_l2_loss",
]
