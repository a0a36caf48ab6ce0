"""The experiment configuration: typed, frozen sections. YAML is loaded into these by :mod:`blindsr.config.loader`.

Every section is a frozen dataclass; an unknown key anywhere is an error that names the closest valid key. Values
are plain Python types (``int``, ``float``, ``str``, ``bool``, tuples, ``Literal`` choices, ``None`` where
optional). Method-specific options live in ``method.options`` and are validated by the method itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CheckpointConfig",
    "DataConfig",
    "DegradationConfig",
    "ExperimentConfig",
    "InitConfig",
    "LogConfig",
    "MethodConfig",
    "OptimizerConfig",
    "SchedulerConfig",
    "TrainConfig",
    "ValidationConfig",
]


@dataclass(frozen=True, slots=True)
class MethodConfig:
    """Which training method, at which scale, with its own options (validated by the method)."""

    name: str
    scale: int = 4
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataConfig:
    """HR training images; LR is synthesised on the fly by the degradation engine.

    Attributes:
        train: folders of HR images (PNG/JPEG/...). ``${data_root}/...`` (quoted in YAML flow lists) is under the
            data root that ``blindsr train`` resolves (``--data-root``, else ``$BLINDSR_DATA``, else
            ``../shared/data`` beside the checkout); other relative paths resolve against the config file's folder,
            then the working directory.
        patch_size: HR patch size (LR patches are ``patch_size / scale``).
        batch_size: patches per optimiser step per process (before gradient accumulation).
        augment: random flips and 90-degree rotations.
        on_device: keep the decoded HR set resident on the training device (GPU) and crop there.
        skip_small: drop images smaller than the patch (with a warning) instead of failing.
    """

    train: tuple[str, ...]
    patch_size: int = 96
    batch_size: int = 16
    augment: bool = True
    on_device: bool = False
    skip_small: bool = False


@dataclass(frozen=True, slots=True)
class DegradationConfig:
    """The training degradation: a named preset, optionally switched between per-image and per-batch sampling,
    optionally with a share of noise-free samples (``noise_free_prob``, see `DegradationSpec`) and optionally with
    another isotropic kernel-width range (``sigma``: ``[low, high]`` in pixels, for presets with iso kernels; e.g. a
    noise-free fine-tune that concentrates on sharp inputs)."""

    preset: str = "bicubic"
    per: Literal["image", "batch"] | None = None
    noise_free_prob: float | None = None
    sigma: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class OptimizerConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    momentum: float = 0.9


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Learning-rate schedule by optimiser step: constant, multi-step (x gamma at each milestone) or cosine."""

    name: Literal["constant", "multistep", "cosine"] = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    min_lr: float = 0.0
    warmup_steps: int = 0


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """The loop: length, precision, speed knobs.

    Attributes:
        total_steps: optimiser steps.
        device: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
        precision: ``fp32``; ``bf16`` (autocast, GPU or CPU); ``fp16`` (autocast + gradient scaling, GPU only).
        channels_last: use the channels-last memory format for the networks.
        grad_clip: clip the global gradient norm to this value (0 = off).
        accumulate: micro-batches per optimiser step.
        ema_decay: exponential moving average of the weights (0 = off); validation then uses the EMA weights.
        ema_warmup: ramp the EMA decay up as ``min(ema_decay, (1 + t) / (10 + t))`` so early EMA weights are usable.
        threads: CPU threads for torch (0 = leave torch's default).
    """

    total_steps: int = 1000
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    grad_clip: float = 0.0
    accumulate: int = 1
    ema_decay: float = 0.0
    ema_warmup: bool = True
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    threads: int = 0


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    """Validation on a named evaluation preset every ``every`` steps (0 = off); the best checkpoint is kept.

    ``data_root`` holds the ``datasets`` (``<Set>/HR``); it resolves like ``data.train`` (``${data_root}`` included).
    """

    every: int = 0
    preset: str = "dmsr-nf"
    data_root: str = ""
    datasets: tuple[str, ...] = ("Set5",)
    max_images: int = 0
    metric: Literal["psnr", "ssim"] = "psnr"


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    every: int = 500
    keep_last: int = 2


@dataclass(frozen=True, slots=True)
class LogConfig:
    every: int = 10
    tensorboard: bool = False
    progress: bool = True


@dataclass(frozen=True, slots=True)
class InitConfig:
    """Initialise a network from an earlier run: ``from_stage`` (a sibling stage of this experiment) or
    ``from_run`` (a run folder). ``key_map`` renames checkpoint keys by prefix (``{"old.": "new."}``).
    ``exclude`` lists key prefixes (after renaming) that are not loaded and keep their fresh initialisation, e.g.
    ``["upsampler."]`` to start a x2 model from x4 weights; every other key must still match exactly."""

    network: str
    from_stage: str = ""
    from_run: str = ""
    source_network: str = ""
    freeze: bool = False
    key_map: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    """One training run (one stage of an experiment)."""

    experiment: str
    method: MethodConfig
    data: DataConfig
    stage: str = "train"
    seed: int = 0
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    init: tuple[InitConfig, ...] = ()
    runs_root: str = "runs"
