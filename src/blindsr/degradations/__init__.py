"""The degradation engine: ``y = (x * k) downarrow_s + n``, batched, differentiable, device-agnostic.

Sampling (:func:`sample_degradation`, the only random function) is separate from applying (:func:`degrade`,
:func:`synthesize_lr`, pure). Named training presets and the papers' evaluation presets live in
:mod:`blindsr.degradations.presets`.
"""

from blindsr.degradations.apply import DegradationResult, blur_downscale, degrade, synthesize_lr
from blindsr.degradations.kernels import anisotropic_gaussian_kernels, delta_kernels, isotropic_gaussian_kernels
from blindsr.degradations.presets import (
    EVAL_PRESETS,
    TRAINING_PRESETS,
    EvalPreset,
    EvalSetting,
    get_eval_preset,
    get_training_preset,
)
from blindsr.degradations.sample import sample_degradation
from blindsr.degradations.spec import DegradationParams, DegradationSpec, Pipeline

__all__ = [
    "EVAL_PRESETS",
    "TRAINING_PRESETS",
    "DegradationParams",
    "DegradationResult",
    "DegradationSpec",
    "EvalPreset",
    "EvalSetting",
    "Pipeline",
    "anisotropic_gaussian_kernels",
    "blur_downscale",
    "degrade",
    "delta_kernels",
    "get_eval_preset",
    "get_training_preset",
    "isotropic_gaussian_kernels",
    "sample_degradation",
    "synthesize_lr",
]
