"""The public API: names that must not disappear, lazy imports, cheap `import blindsr`."""

from __future__ import annotations

import subprocess
import sys

import blindsr

PUBLIC = {
    "__version__",
    "degrade",
    "synthesize_lr",
    "sample_degradation",
    "DegradationSpec",
    "DegradationParams",
    "imresize",
    "psnr",
    "ssim",
    "get_eval_preset",
    "get_training_preset",
    "load_model",
    "list_models",
    "Upscaler",
}


def test_public_names_exist() -> None:
    assert set(dir(blindsr)) >= PUBLIC
    assert set(blindsr.__all__) == PUBLIC
    for name in PUBLIC - {"__version__"}:
        assert callable(getattr(blindsr, name)), name


def test_import_is_lazy_and_light() -> None:
    code = (
        "import sys, blindsr, blindsr.ops.resize, blindsr.ops.tiling, blindsr.degradations, blindsr.metrics;"
        "bad = [m for m in ('PIL', 'safetensors', 'skimage', 'torchvision', 'yaml') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_bare_import_does_not_import_torch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, blindsr; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
