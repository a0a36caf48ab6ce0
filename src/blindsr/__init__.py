"""blindsr: blind image super-resolution with exact degradation models, metrics and protocols.

The public API is small and loaded lazily (PEP 562), so ``import blindsr`` stays cheap:

>>> import blindsr
>>> blindsr.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "__version__": "blindsr.version",
    "degrade": "blindsr.degradations.apply",
    "synthesize_lr": "blindsr.degradations.apply",
    "sample_degradation": "blindsr.degradations.sample",
    "DegradationSpec": "blindsr.degradations.spec",
    "DegradationParams": "blindsr.degradations.spec",
    "imresize": "blindsr.ops.resize",
    "psnr": "blindsr.metrics.psnr_ssim",
    "ssim": "blindsr.metrics.psnr_ssim",
    "get_eval_preset": "blindsr.degradations.presets",
    "get_training_preset": "blindsr.degradations.presets",
    "load_model": "blindsr.zoo",
    "list_models": "blindsr.zoo",
    "Upscaler": "blindsr.inference",
}

__all__ = [
    "DegradationParams",
    "DegradationSpec",
    "Upscaler",
    "__version__",
    "degrade",
    "get_eval_preset",
    "get_training_preset",
    "imresize",
    "list_models",
    "load_model",
    "psnr",
    "sample_degradation",
    "ssim",
    "synthesize_lr",
]

if TYPE_CHECKING:  # pragma: no cover
    from blindsr.degradations.apply import degrade, synthesize_lr
    from blindsr.degradations.presets import get_eval_preset, get_training_preset
    from blindsr.degradations.sample import sample_degradation
    from blindsr.degradations.spec import DegradationParams, DegradationSpec
    from blindsr.inference import Upscaler
    from blindsr.metrics.psnr_ssim import psnr, ssim
    from blindsr.ops.resize import imresize
    from blindsr.version import __version__
    from blindsr.zoo import list_models, load_model


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'blindsr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
