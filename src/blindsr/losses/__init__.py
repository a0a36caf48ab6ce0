"""Losses shared by training methods (layer 1: torch only)."""

from blindsr.losses.distill import KDLossKind, idr_distillation_loss

__all__ = ["KDLossKind", "idr_distillation_loss"]
